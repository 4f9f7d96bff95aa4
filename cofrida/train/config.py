"""`TrainConfig`: every setting of `cofrida train`, one field each, with its reasoning."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("one_step", "multi_step")
TARGETS = ("full", "source")
FINETUNES = ("full", "lora")
PRECISIONS = ("no", "fp16", "bf16")
WEIGHT_DTYPES = ("fp32", "bf16")
RECONSTRUCTIONS = ("l2", "l1")
PERCEPTUALS = ("edges", "scorer")
DISCRIMINATORS = ("patch", "conditional")


@dataclass
class TrainConfig:
    """How `cofrida.train.train` fine-tunes the edit model; written as ``train_config.json``.

    Batch sizes are per process: under ``accelerate launch`` on G GPUs one optimizer step sees
    ``batch_size * grad_accumulation * G`` records.
    """

    # --- data and output
    data_dir: str = ""  # folder of shards: <data_dir>/data/*.parquet (the make-data layout)
    output_dir: str = "out/train"  # checkpoints, validation grids, log.jsonl, final/
    resolution: int = 128  # px of the square training crop (shorter side resized to it)
    random_crop: bool = False  # off: paintings have a layout the caption describes
    random_flip: bool = False  # off: a flip turns "on the left" into a false caption
    num_workers: int = 0  # DataLoader workers per process (PNG decoding)

    # --- model
    init_model: str = "tiny:minilm"  # bundle folder / hub id, or tiny:minilm | tiny:tiny_clip
    init_vae: str = ""  # an AutoencoderKL folder replacing the model's VAE (train-autoencoder)
    target: str = "full"  # full (the sim painting, CoFRIDA) | source (unpainted image: ablation)
    mode: str = "one_step"  # one_step (pix2pix-Turbo style) | multi_step (InstructPix2Pix)
    finetune: str = "full"  # full UNet | lora (peft adapters only)
    lora_rank: int = 8  # LoRA rank r (alpha = r)
    lora_conv: bool = False  # LoRA also on the resnet convolutions
    # the pooled prompt also reaches every ResNet block, through the time embedding (added
    # zero-initialised when the initial model lacks it; `EditModel.add_pooled_text`)
    pooled_text: bool = False
    skip_connections: bool = False  # one-step: train VAE encoder->decoder skips (pix2pix-Turbo)
    train_decoder: bool = False  # one-step: also train the VAE decoder (needed from scratch)
    gradient_checkpointing: bool = False  # trade ~30% compute for activation memory

    # --- optimisation
    learning_rate: float = 1e-4  # AdamW; LoRA usually wants 10x the full fine-tune rate
    adam_weight_decay: float = 1e-2
    max_grad_norm: float = 1.0  # gradient clipping (0 = off)
    batch_size: int = 4  # records per process per micro-batch
    grad_accumulation: int = 1  # micro-batches per optimizer step
    max_steps: int = 1000  # optimizer steps in all (a resumed run stops at the same step)
    lr_warmup_steps: int = 0  # linear warm-up, then constant
    mixed_precision: str = "no"  # no | fp16 | bf16 (accelerate autocast; weights stay fp32)
    # fp32 | bf16: bf16 stores every weight, gradient and AdamW state in bfloat16 (LoRA: the
    # adapters and conv_in stay fp32); half the memory of a full fine-tune, the updates kept by
    # stochastic rounding (cofrida.train.optim). Needs mixed_precision bf16 and bf16 hardware
    weights_dtype: str = "fp32"
    seed: int = 0  # weights, data order, noise and dropout are functions of it

    # --- checkpoints and validation
    checkpoint_every: int = 500  # optimizer steps between accelerate checkpoints (0 = never)
    keep_checkpoints: int = 3  # keep the last m checkpoint-<step>/ folders (0 = keep all)
    validate_every: int = 500  # steps between validation grids (0 = only at the end)
    validation_records: int = 4  # the first n records of the data, fixed for the whole run
    validation_prompts: list[str] = field(default_factory=list)  # extra prompts on record 0
    log_every: int = 10  # steps between progress lines (every step goes to log.jsonl)

    # --- multi-step: classifier-free guidance dropout, as InstructPix2Pix trains
    drop_text_prob: float = 0.05  # prompt replaced by "" only
    drop_image_prob: float = 0.05  # canvas latents zeroed only
    drop_both_prob: float = 0.05  # both dropped

    # --- one-step losses (weights; 0 turns a term off)
    reconstruction: str = "l2"  # l2 | l1 in pixel space, after decoding the one-step x0
    reconstruction_weight: float = 1.0
    perceptual: str = "edges"  # edges (multi-scale gradients + local statistics) | scorer
    perceptual_weight: float = 0.5
    adversarial_weight: float = 0.0  # hinge GAN with a small patch discriminator
    # issue 14 (cofrida.train.adversarial): "patch" = the small unconditional PatchGAN;
    # "conditional" = sees canvas + painting + prompt (projection), multi-scale, matching-aware
    discriminator: str = "patch"
    discriminator_scales: int = 2  # conditional: resolutions judged (full, 1/2, ...)
    discriminator_width: int = 32  # conditional: first layer's channels
    discriminator_lr: float = 0.0  # its AdamW rate (0 = learning_rate)
    # K noise draws per record; the regression terms count the closest draw only (best of K),
    # so the mean of all completions stops being the optimum and the noise keeps meaning
    diversity_samples: int = 1
    diversity_weight: float = 0.0  # hinge pushing two draws' mean |difference| up to the target
    diversity_target: float = 0.08  # mean |difference| (0..1) where the target changes
    keep_weight: float = 0.0  # every draw pulled (L1) to the canvas where the target keeps it
    # best of K: each draw's regression adds this times its L1 over the region the target
    # changes (dilated), as a mean over that region: a removed object is 1-5 % of the image,
    # so in a whole-image mean it weighs next to nothing and the closest draw is chosen by
    # speckle in the kept canvas rather than by where it painted the object
    change_weight: float = 0.0
    # placement-coded noise (cofrida.model.placement): one-step inputs carry a Gaussian bump of
    # this height on the region the target changes, so the model learns to paint new things
    # where its noise says; the final bundle proposes with a random bump per seed. 0 = off
    placement_strength: float = 0.0
    placement_prob: float = 0.8  # share of records whose bump sits on their change
    placement_distractor_prob: float = 0.3  # share that also get a bump where nothing changes
    text_alignment_weight: float = 0.0  # -scorer(decoded, caption)
    scorer: str = ""  # scorer folder (SceneScorer or CLIP) for text alignment / perceptual
    # one-step: half the records start from their target noised to a timestep drawn from
    # [finish_from_timestep, model timestep) instead of pure noise, so the model learns to
    # finish a teacher's first steps (EditModel structure_steps); 0 = pure noise only. With a
    # 20-step schedule, structure_steps k <= 5 lands at timesteps >= 736.
    finish_from_timestep: int = 0
    # what the UNet learns to predict ("" keeps the init model's schedule): epsilon |
    # v_prediction | sample. A multi-step teacher whose first steps set a one-step model's
    # structure wants v_prediction: epsilon turns its small errors at t ~ 999 into large
    # errors of the clean image it implies (x 1 / sqrt(alpha_bar) ~ 15)
    prediction_type: str = ""
    teacher: str = ""  # one-step: a multi-step bundle the final bundle carries as teacher_unet
    structure_steps: int = 0  # one-step: teacher steps per proposal in the final bundle

    def __post_init__(self) -> None:
        checks = [
            (self.mode in MODES, f"mode must be one of {MODES}"),
            (self.finetune in FINETUNES, f"finetune must be one of {FINETUNES}"),
            (self.mixed_precision in PRECISIONS, f"mixed_precision must be one of {PRECISIONS}"),
            (self.weights_dtype in WEIGHT_DTYPES, f"weights_dtype must be one of {WEIGHT_DTYPES}"),
            (
                self.weights_dtype == "fp32" or self.mixed_precision == "bf16",
                "weights_dtype bf16 needs mixed_precision bf16 (autocast feeds the bf16 layers)",
            ),
            (self.reconstruction in RECONSTRUCTIONS, f"reconstruction: one of {RECONSTRUCTIONS}"),
            (self.perceptual in PERCEPTUALS, f"perceptual must be one of {PERCEPTUALS}"),
            (self.target in TARGETS, f"target must be one of {TARGETS}"),
            (self.resolution >= 16, "resolution must be >= 16"),
            (self.batch_size >= 1 and self.grad_accumulation >= 1, "batch sizes must be >= 1"),
            (self.max_steps >= 1, "max_steps must be >= 1"),
            (self.lora_rank >= 1, "lora_rank must be >= 1"),
            (self.discriminator in DISCRIMINATORS, f"discriminator: one of {DISCRIMINATORS}"),
            (
                self.discriminator_scales >= 1 and self.discriminator_width >= 1,
                "discriminator_scales and discriminator_width must be >= 1",
            ),
            (self.diversity_samples >= 1, "diversity_samples must be >= 1"),
            (
                self.diversity_weight == 0 or self.diversity_samples >= 2,
                "diversity_weight > 0 needs diversity_samples >= 2 (two draws to compare)",
            ),
            (0 < self.diversity_target <= 1, "diversity_target must lie in (0, 1]"),
            (self.keep_weight >= 0, "keep_weight must be >= 0"),
            (self.change_weight >= 0, "change_weight must be >= 0"),
            (0 <= self.placement_strength <= 10, "placement_strength must lie in [0, 10]"),
            (
                0 <= self.placement_prob <= 1 and 0 <= self.placement_distractor_prob <= 1,
                "placement_prob and placement_distractor_prob must lie in [0, 1]",
            ),
            (
                self.placement_strength == 0 or self.mode == "one_step",
                "placement_strength is for one-step training",
            ),
            (
                self.perceptual != "scorer"
                or (
                    self.discriminator == "patch"
                    and self.diversity_samples == 1
                    and self.diversity_weight == 0
                ),
                "the conditional discriminator / diversity options use perceptual='edges'",
            ),
            (0 <= self.finish_from_timestep < 1000, "finish_from_timestep must lie in [0, 1000)"),
            (
                self.prediction_type in ("", "epsilon", "v_prediction", "sample"),
                "prediction_type must be '', epsilon, v_prediction or sample",
            ),
            (
                not self.teacher or self.mode == "one_step",
                "teacher is for one-step training (the multi-step model is the teacher)",
            ),
            (
                self.structure_steps == 0 or bool(self.teacher),
                "structure_steps > 0 needs --teacher (the multi-step model that takes them)",
            ),
            (
                min(self.drop_text_prob, self.drop_image_prob, self.drop_both_prob) >= 0
                and self.drop_text_prob + self.drop_image_prob + self.drop_both_prob <= 1,
                "dropout probabilities must be >= 0 and sum to <= 1",
            ),
            (
                not (self.text_alignment_weight > 0 or self.perceptual == "scorer")
                or bool(self.scorer),
                "text_alignment_weight > 0 or perceptual='scorer' needs --scorer",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")

    def to_json(self) -> str:
        """The config as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def save(self, folder: str | Path) -> None:
        """Write ``train_config.json`` into ``folder``."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "train_config.json").write_text(self.to_json())
