"""CoFRIDA: robot co-painting with a one-step, 4-bit quantized instruct-edit model.

Will own the edit model, text encoders and scorers, self-supervised data generation, training,
quantization hook-up, the co-painting `Session` and the `cofrida` command line.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`cofrida.Session` and `cofrida.EditModel`, imported on first use (keeps the CLI fast)."""
    if name == "Session":
        from cofrida.session import Session

        return Session
    if name == "EditModel":
        from cofrida.model import EditModel

        return EditModel
    raise AttributeError(f"module 'cofrida' has no attribute {name!r}")
