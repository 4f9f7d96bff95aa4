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
"""

from cofrida.data.colour_words import colour_word, colour_words
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
    "FolderSource",
    "HFDatasetSource",
    "ObjectKind",
    "ProceduralSource",
    "SceneGenerator",
    "SceneObject",
    "SceneSample",
    "SkippedImage",
    "Source",
    "SourceItem",
    "check_image",
    "colour_word",
    "colour_words",
    "fit_image",
]
