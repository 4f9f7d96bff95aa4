"""CoFRIDA: robot co-painting with a one-step, 4-bit quantized instruct-edit model.

Will own the edit model, text encoders and scorers, self-supervised data generation, training,
quantization hook-up, the co-painting `Session` and the `cofrida` command line.
"""

__version__ = "0.1.0"
