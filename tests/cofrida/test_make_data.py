"""`cofrida make-data`: records painted in sim, deterministic, resumable, loadable, honest.

Tiny settings throughout (64 px canvas, 12 strokes, 3 planner steps, one source per part file)
so the whole module runs in well under a minute on a busy machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cofrida.commands.make_data import main, parse_shard
from cofrida.data.painting import Painter
from cofrida.data.profiles import get_profile
from cofrida.data.scenes import SceneGenerator
from cofrida.data.shards import png_bytes, png_image, read_records
from sim import Strokes
from sim.palette import Palette

pa = pytest.importorskip("pyarrow")

NUM = 5
TINY = ["--px", "64", "--strokes", "12", "--coarse-steps", "3", "--chunk", "1"]
TINY += ["--partials", "3", "--threads", "1", "--quiet"]


def _args(out: Path, num: int = NUM, *extra: str) -> list[str]:
    return ["--num", str(num), "--out", str(out), *TINY, *extra]


def _tiny_painter() -> Painter:
    profile = get_profile("acrylic").with_overrides(
        canvas_px=64, strokes=12, planner={"coarse_steps": 3}
    )
    return Painter(profile)


def _parts(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private user data dir: no calibrated stroke model of the machine's user leaks in."""
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COFRIDA_HOME", str(path))
        torch.set_num_threads(1)
        torch.set_flush_denormal(True)
        yield path


@pytest.fixture(scope="module")
def dataset(home, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "run"
    assert main(_args(out)) == 0
    return out


def test_records_have_the_schema_and_manifest_counts(dataset):
    records = read_records(dataset)
    assert len(records) == NUM * 3
    assert {r["id"] for r in records} == {f"{i}-{k}" for i in range(NUM) for k in range(3)}
    columns = list(records[0])
    assert columns == [
        "id", "source_index", "partial", "full", "source", "caption", "strokes", "kept",
        "partial_kind", "source_id", "profile", "seed",
    ]  # fmt: skip
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert (manifest["records"], manifest["paintings"], manifest["skipped"]) == (NUM * 3, NUM, {})
    assert manifest["profile"]["name"] == "acrylic" and manifest["stroke_model"] == "analytic"


def test_same_seed_same_bytes(dataset, tmp_path):
    out = tmp_path / "again"
    assert main(_args(out, NUM)) == 0
    assert _parts(out) == _parts(dataset)


def test_resume_after_kill_gives_the_uninterrupted_dataset(dataset, home, tmp_path):
    out = tmp_path / "killed"
    code = "import sys; from cofrida.commands.make_data import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "COFRIDA_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", code, *_args(out)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "data").glob("*part-00001.parquet")):
            assert proc.poll() is None, "make-data ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    written = _parts(out)
    assert 2 <= len(written) < NUM  # killed partway: some part files, never all
    for name in written:  # every visible part is whole
        pa.parquet.read_table(out / "data" / name)
    assert main(_args(out)) == 0
    assert _parts(out) == _parts(dataset)
    assert not list((out / "data").glob(".*.tmp"))
    assert json.loads((out / "manifest.json").read_text())["records"] == NUM * 3


def test_shards_load_with_datasets(dataset, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    files = sorted(str(p) for p in (dataset / "data").glob("*.parquet"))
    ds = datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert len(ds) == NUM * 3
    row = ds[0]
    assert isinstance(row["partial"], bytes) and row["partial"].startswith(b"\x89PNG")
    assert png_image(row["full"]).shape == (64, 64, 3)


def test_removed_strokes_are_absent_from_the_partial(dataset):
    painter = _tiny_painter()
    checked_white = 0
    for r in read_records(dataset):
        strokes = Strokes.from_json(r["strokes"])
        kept = np.asarray(r["kept"], dtype=np.int64)
        # The partial is exactly the kept strokes re-rendered; the full painting all of them.
        assert png_bytes(painter.render(strokes, kept, r["seed"])) == r["partial"]
        assert png_bytes(painter.render(strokes, None, r["seed"])) == r["full"]
        removed = np.setdiff1d(np.arange(len(strokes)), kept)
        if len(removed) == 0:
            continue
        with torch.no_grad():
            _, cov_kept = painter.renderer.render(
                strokes, subset=torch.tensor(kept), return_coverage=True
            )
            _, cov_removed = painter.renderer.render(
                strokes, subset=torch.tensor(removed), return_coverage=True
            )
        only_removed = (cov_removed > 0.5) & (cov_kept == 0)
        if bool(only_removed.any()):
            partial = png_image(r["partial"])
            assert (partial[only_removed.numpy()] == 255).all()
            checked_white += 1
    assert checked_white > 0


def test_captions_match_the_generators_scenes(dataset):
    gen = SceneGenerator(Palette.preset("acrylic"), (64, 64), seed=0)
    for r in read_records(dataset, ["source_index", "caption", "source", "source_id"]):
        scene = gen.generate(r["source_index"])
        assert r["caption"] == scene.caption
        assert r["source_id"] == f"scene-0-{r['source_index']}"
        assert np.array_equal(png_image(r["source"]), scene.image)


def test_corrupt_and_grey_images_are_counted_and_skipped(home, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        img = np.full((80, 80, 3), 240, np.uint8)
        img[20:60, 10 + 10 * i : 50 + 10 * i] = rng.integers(0, 255, 3)
        Image.fromarray(img).save(folder / f"ok{i}.png")
        rows.append({"file": f"ok{i}.png", "caption": f"a square {i}"})
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    Image.new("RGB", (80, 80), (128, 128, 128)).save(folder / "grey.png")
    rows += [{"file": "broken.png", "caption": "x"}, {"file": "grey.png", "caption": "grey"}]
    (folder / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "out"
    assert main(["--source", f"folder:{folder}", "--out", str(out), *TINY]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["skipped"] == {"corrupt": 1, "flat": 1}
    assert manifest["paintings"] == 2 and manifest["records"] == 6
    assert {r["caption"] for r in read_records(out, ["caption"])} == {"a square 0", "a square 1"}


def test_other_settings_refuse_to_mix_into_a_folder(dataset, capsys):
    assert main(_args(dataset, NUM, "--seed", "1")) == 2
    assert "other settings" in capsys.readouterr().err


def test_unknown_profile_lists_the_profiles(tmp_path, capsys):
    assert main(["--profile", "oil", "--num", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "acrylic" in err and "sharpie" in err


def test_shard_from_flag_or_launcher_environment():
    assert parse_shard("3/16", {}) == (3, 16)
    assert parse_shard(None, {"RANK": "2", "WORLD_SIZE": "4"}) == (2, 4)
    assert parse_shard(None, {}) == (0, 1)
    with pytest.raises(ValueError, match="i/n"):
        parse_shard("3-16", {})
    with pytest.raises(ValueError):
        parse_shard("16/16", {})


def test_shards_partition_the_sources(home, tmp_path):
    out = tmp_path / "sharded"
    for i in range(2):
        assert main(_args(out, 3, "--shard", f"{i}/2")) == 0
    ids = sorted(r["source_index"] for r in read_records(out, ["source_index"]))
    assert ids == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert json.loads((out / "manifest.json").read_text())["paintings"] == 3
