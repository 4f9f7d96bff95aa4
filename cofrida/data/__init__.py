"""Sources of (image, caption) pairs for self-supervised data generation.

Data generation paints source images in the simulator within the robot's limits; this package
provides the sources:

- `SceneGenerator` (`scenes.py`): procedural, child-like scenes drawn with flat colours from the
  robot's own palette (suns, trees, houses, boats, ... on paper, a meadow, the sea or a night
  sky), with a caption that is true to the picture and a per-object label map. Works offline.
- `ProceduralSource`, `FolderSource`, `HFDatasetSource` (`sources.py`): one `Source` protocol
  over the generator, a folder of the user's images with a `captions.jsonl` / `captions.csv`,
  and any Hugging Face `datasets` dataset with an image and a text column. Bad images (corrupt,
  tiny, flat) are skipped and counted per reason, never fatal.

and the generation itself (`cofrida make-data`):

- `RobotProfile` / `get_profile` (`profiles.py`): named robot set-ups (brush, paints, stroke
  budget, canvas, style, fast planner schedule, calibrated stroke model when saved).
- `Painter` (`painting.py`): paints a source within a profile's limits; renders stroke subsets.
- `keep_strokes` (`partials.py`): partial paintings by removing strokes (random, region,
  object, first k, blank).
- `generate_shard` / `DataConfig` (`generate.py`) and `shards.py`: deterministic, resumable
  Parquet shards and the manifest; `contact_sheet` (`contact_sheet.py`) to look at them.
"""

from cofrida.data.colour_words import colour_word, colour_words
from cofrida.data.contact_sheet import contact_sheet
from cofrida.data.generate import DataConfig, generate_shard, make_records
from cofrida.data.painting import Painter, Painting
from cofrida.data.partials import keep_strokes
from cofrida.data.profiles import PROFILES, RobotProfile, get_profile
from cofrida.data.scene_objects import KINDS, ObjectKind
from cofrida.data.scenes import SceneGenerator, SceneObject, SceneSample
from cofrida.data.sources import (
    FolderSource,
    HFDatasetSource,
    ProceduralSource,
    SkippedImage,
    Source,
    SourceItem,
    check_image,
    fit_image,
)

__all__ = [
    "KINDS",
    "PROFILES",
    "DataConfig",
    "FolderSource",
    "HFDatasetSource",
    "ObjectKind",
    "Painter",
    "Painting",
    "ProceduralSource",
    "RobotProfile",
    "SceneGenerator",
    "SceneObject",
    "SceneSample",
    "SkippedImage",
    "Source",
    "SourceItem",
    "check_image",
    "colour_word",
    "colour_words",
    "contact_sheet",
    "fit_image",
    "generate_shard",
    "get_profile",
    "keep_strokes",
    "make_records",
]
