"""Fine-tuning the edit model on simulator-painted data (``cofrida train``), with accelerate.

- `TrainConfig` (`config.py`): every setting, one commented field each.
- `ShardDataset`, `collate` (`data.py`): Parquet shards -> (partial, caption, full) batches.
- losses (`losses.py`): pixel reconstruction, the offline perceptual loss, the patch
  discriminator and hinge losses; `objectives.py`: the one-step generator and the multi-step
  denoising loss with conditioning dropout.
- `train` (`loop.py`): the accelerate loop with checkpoints, resume and validation grids.
"""

from cofrida.train.config import TrainConfig
from cofrida.train.data import REQUIRED_COLUMNS, ShardDataset, collate, shard_files
from cofrida.train.loop import list_checkpoints, load_init_model, train

__all__ = [
    "REQUIRED_COLUMNS",
    "ShardDataset",
    "TrainConfig",
    "collate",
    "list_checkpoints",
    "load_init_model",
    "shard_files",
    "train",
]
