"""Sources of (image, caption): folders (JSONL, CSV), HF datasets, procedural scenes.

Bad records (corrupt, truncated, missing, tiny, flat images, empty captions, broken lines)
are skipped and counted by reason; they never stop the iteration.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from cofrida.data import (
    FolderSource,
    HFDatasetSource,
    ProceduralSource,
    SceneGenerator,
    SkippedImage,
    Source,
    check_image,
    fit_image,
)
from sim.palette import Palette

SIZE = (64, 80)


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


RECORDS = [  # (file, caption); the good ones first
    ("good.png", "a red boat"),
    ("sub/rgba.png", "  a blue sun  "),
    ("grey_l.png", "a grey cat"),
    ("palette_p.png", "three fish"),
    ("corrupt.png", "not an image"),
    ("truncated.jpg", "half a file"),
    ("tiny.png", "too small"),
    ("flat.png", "a grey frame"),
    ("missing.png", "never saved"),
    ("good.png", ""),
    ("../outside.png", "escapes the folder"),
]
GOOD = 4
EXPECTED_SKIPS = {"corrupt": 2, "tiny": 1, "flat": 1, "missing": 1, "no caption": 1}


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.fromarray(_noise(120, 90)).save(tmp_path / "good.png")
    rgba = np.dstack([_noise(100, 100, 1), np.full((100, 100), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "sub" / "rgba.png")
    Image.fromarray(_noise(96, 96, 2)[..., 0], "L").save(tmp_path / "grey_l.png")
    Image.fromarray(_noise(96, 96, 3)).quantize(16).save(tmp_path / "palette_p.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    jpg = _png_bytes(Image.fromarray(_noise(128, 128, 4)), "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(jpg[: len(jpg) // 3])
    Image.fromarray(_noise(32, 200, 5)).save(tmp_path / "tiny.png")
    Image.new("RGB", (128, 128), (128, 128, 128)).save(tmp_path / "flat.png")
    return tmp_path


def _check_folder_source(src: FolderSource) -> None:
    assert isinstance(src, Source)
    items = list(src)
    assert [i.source_id for i in items] == [f for f, _ in RECORDS[:GOOD]]
    assert items[1].caption == "a blue sun"
    for item in items:
        assert item.image.shape == (*SIZE, 3) and item.image.dtype == np.uint8
    assert src.skipped == {**EXPECTED_SKIPS, "bad record": src.skipped["bad record"]}
    assert src.skipped["bad record"] >= 1  # the path outside the folder


def test_folder_source_jsonl_skips_and_counts_bad_records(folder):
    lines = [json.dumps({"file": f, "caption": c}) for f, c in RECORDS]
    lines.insert(3, "{not json")
    lines.insert(5, json.dumps({"caption": "no file field"}))
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n\n")
    src = FolderSource(folder, size=SIZE)
    assert len(src) == len(RECORDS) - 1
    _check_folder_source(src)
    assert src.skipped["bad record"] == 3
    with pytest.raises(SkippedImage) as err:
        src[4]
    assert err.value.reason == "corrupt" and err.value.source_id == "corrupt.png"


def test_folder_source_csv(folder):
    rows = ["file,caption"] + [f'{f},"{c}"' for f, c in RECORDS]
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    src = FolderSource(folder, size=SIZE)
    _check_folder_source(src)
    assert src.skipped["bad record"] == 1


def test_folder_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"captions\.jsonl"):
        FolderSource(tmp_path)
    (tmp_path / "captions.csv").write_text("image,text\na.png,x\n")
    with pytest.raises(ValueError, match="'file' and 'caption'"):
        FolderSource(tmp_path)


def test_folder_source_keeps_original_size_without_size(folder):
    (folder / "captions.jsonl").write_text(json.dumps({"file": "good.png", "caption": "x"}))
    assert FolderSource(folder)[0].image.shape == (120, 90, 3)


# ---- images -------------------------------------------------------------------------------------
def test_check_image_reasons():
    assert check_image(_noise(64, 64)) is None
    assert check_image(_noise(63, 300)) == "tiny"
    assert check_image(np.full((100, 100, 3), 200, np.uint8)) == "flat"
    almost_flat = np.full((100, 100, 3), 128, np.uint8)
    almost_flat[::2] += 2
    assert check_image(almost_flat) == "flat"
    assert check_image(Image.new("RGB", (80, 80), "red")) == "flat"
    assert check_image(Image.fromarray(_noise(80, 80)).convert("P")) is None


def test_fit_image_converts_modes_and_centre_crops():
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 255  # a white middle third
    out = fit_image(Image.fromarray(wide), (50, 50))
    assert out.shape == (50, 50, 3) and out.min() > 200  # only the middle is left
    for mode in ("L", "P", "RGBA", "LA", "I;16", "1"):
        img = Image.fromarray(_noise(70, 90)).convert(mode if mode != "I;16" else "L")
        if mode == "I;16":
            img = Image.fromarray(np.asarray(img).astype(np.uint16) * 200)  # mode I;16
        out = fit_image(img, (64, 64))
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8, mode
        assert out.std() > 10, mode


# ---- procedural ---------------------------------------------------------------------------------
def test_procedural_source_is_deterministic():
    gen = SceneGenerator(Palette.preset("markers"), size=(96, 96), seed=4)
    src = ProceduralSource(gen, num=5, start=10)
    assert isinstance(src, Source) and len(src) == 5
    items = list(src)
    assert len(items) == 5 and not src.skipped
    again = ProceduralSource(
        SceneGenerator(Palette.preset("markers"), size=(96, 96), seed=4), 5, start=10
    )
    assert items[2].image.tobytes() == again[2].image.tobytes()
    assert items[2].source_id == "scene-4-12" and items[2].caption == gen.generate(12).caption
    assert items[2].meta["objects"] and items[2].meta["label_map"].shape == (96, 96)
    json.dumps({k: v for k, v in items[2].meta.items() if k != "label_map"})
    assert src[-1].source_id == "scene-4-14"
    with pytest.raises(IndexError):
        src[5]


# ---- Hugging Face datasets ----------------------------------------------------------------------
def test_hf_source_reads_a_dataset_and_skips_bad_rows():
    datasets = pytest.importorskip("datasets")
    images = [
        Image.fromarray(_noise(80, 100)),
        Image.new("RGB", (96, 96), (90, 90, 90)),  # flat
        Image.fromarray(_noise(20, 20)),  # tiny
        Image.fromarray(_noise(70, 70, 1)).convert("L"),
    ]
    texts = ["a red boat", "grey", "tiny", ["", "a cat"]]
    ds = datasets.Dataset.from_dict({"picture": images, "caption": [*texts[:3], "a cat"]})
    src = HFDatasetSource(ds, image_column="picture", text_column="caption", size=SIZE)
    items = list(src)
    assert [i.caption for i in items] == ["a red boat", "a cat"]
    assert all(i.image.shape == (*SIZE, 3) for i in items)
    assert src.skipped == {"flat": 1, "tiny": 1}
    assert items[1].meta["row"] == 3

    raw = datasets.Dataset.from_dict(
        {"image": [_png_bytes(images[0]), b"garbage bytes"], "text": texts[:2]}
    )
    src = HFDatasetSource(datasets.DatasetDict({"train": raw}), size=SIZE)
    assert [i.caption for i in src] == ["a red boat"] and src.skipped == {"corrupt": 1}
    with pytest.raises(ValueError, match="text_column='words'"):
        HFDatasetSource(raw, text_column="words")


def test_hf_source_by_name_without_datasets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(ImportError, match=r"cofrida\[train\]"):
        HFDatasetSource("someone/some-dataset")
