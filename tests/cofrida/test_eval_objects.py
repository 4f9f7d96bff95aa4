"""Object figures of `cofrida eval --objects` (issue 14): recall, placement, damage, diversity.

Real held-out data: `cofrida make-data --kinds object` paints a few procedural scenes with one
object's strokes removed; the targets come from the scene generator's own label maps.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("datasets")

from cofrida.commands import eval as eval_cli
from cofrida.commands import make_data
from cofrida.data.scene_objects import KINDS
from cofrida.data.scenes import allowed_rows
from cofrida.evaluation import EvalSettings, evaluate, load_records
from cofrida.evaluation.candidates import (
    inpaint_candidate,
    reference_candidate,
    unchanged_candidate,
)
from cofrida.evaluation.objects import object_scores, object_target
from cofrida.model import tiny

SKY = (0.45, 0.65, 0.9)
GROUND = (0.2, 0.55, 0.2)
BIRD = (0.05, 0.05, 0.05)


@pytest.fixture(scope="module")
def object_dir(tmp_path_factory):
    """Six procedural scenes painted at 64 px, each with one named object's strokes removed."""
    folder = tmp_path_factory.mktemp("heldout-objects")
    argv = ["--profile", "acrylic", "--source-seed", "7", "--num", "6", "--partials", "1"]
    argv += ["--kinds", "object", "--px", "64", "--threads", "1", "--quiet", "--out", str(folder)]
    assert make_data.main(argv) == 0
    return folder


def test_reference_recalls_every_object_and_the_unchanged_canvas_none(object_dir):
    records, _ = load_records(object_dir, 6, 64, objects=True)
    assert len(records) >= 3 and all(r.target is not None for r in records)
    rows = [reference_candidate(), unchanged_candidate(), inpaint_candidate()]
    settings = EvalSettings(n=1, paint=None, examples=0, warm_up=False)
    result = evaluate(records, rows, None, settings)
    ref, unchanged, inpaint = result.rows
    assert ref["object_records"] == len(records)
    assert ref["object_recall"] >= 0.95 and ref["object_recall_best"] >= 0.95
    assert ref["placement"] == 1.0 and ref["damage"] < 0.01 and ref["hole_restore"] > 0.95
    assert unchanged["object_recall"] == 0.0 and unchanged["damage"] == 0.0
    assert unchanged["hole_restore"] == 0.0
    # inpainting fills the hole from its surroundings: it changes nothing outside it
    assert inpaint["damage"] == 0.0 and inpaint["object_recall"] < ref["object_recall"]


def meadow_scene(size: int = 64, horizon: int = 32):
    """A hand-made meadow scene with one black bird at rows 8..13 (scene image, label map)."""
    image = np.empty((size, size, 3), np.uint8)
    image[:horizon] = np.round(np.array(SKY) * 255)
    image[horizon:] = np.round(np.array(GROUND) * 255)
    label_map = np.zeros((size, size), np.int16)
    label_map[8:13, 10:22] = 1
    image[label_map == 1] = np.round(np.array(BIRD) * 255)
    bird = SimpleNamespace(id=1, kind="bird", colour="black", bbox=(10, 8, 22, 13))
    return image, label_map, bird


def with_bird(canvas: torch.Tensor, y: int, x: int) -> torch.Tensor:
    out = canvas.clone()
    out[:, y : y + 5, x : x + 12] = torch.tensor(BIRD).view(3, 1, 1)
    return out


def test_an_object_painted_back_in_its_zone_counts_and_in_a_wrong_zone_does_not():
    image, label_map, bird = meadow_scene()
    full = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    partial = full.clone()
    partial[:, 8:13, 10:22] = torch.tensor(SKY).view(3, 1, 1)  # the bird's strokes removed
    rows = allowed_rows(KINDS["bird"], "meadow", 64, 32, 5.0)
    target = object_target(partial, full, image, label_map, bird, image[9, 12], rows)
    assert target.area == 60 and bool(target.zone[5].all()) and not bool(target.zone[50].any())

    elsewhere_in_sky = with_bird(partial, 14, 40)
    in_the_grass = with_bird(partial, 48, 30)
    scores = object_scores(target, partial, full, torch.stack([elsewhere_in_sky, in_the_grass]))
    assert scores["object_painted"] == 1.0  # both painted a bird...
    assert scores["object_recall"] == 0.5  # ...only the one in the sky counts
    assert scores["placement"] == 0.5 and scores["object_recall_best"] == 1.0

    sky_only = object_scores(target, partial, full, elsewhere_in_sky[None])
    assert sky_only["object_recall"] == 1.0 and sky_only["placement"] == 1.0
    assert sky_only["damage"] == 0.0  # the bird painted back elsewhere in the sky is no damage

    grass_only = object_scores(target, partial, full, in_the_grass[None])
    assert grass_only["object_recall"] == 0.0 and grass_only["placement"] == 0.0
    assert grass_only["damage"] > 0.01  # a bird in the grass changes what was not removed


def test_distinct_placements_and_damage_see_what_the_proposals_do():
    image, label_map, bird = meadow_scene()
    full = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    partial = full.clone()
    partial[:, 8:13, 10:22] = torch.tensor(SKY).view(3, 1, 1)
    rows = allowed_rows(KINDS["bird"], "meadow", 64, 32, 5.0)
    target = object_target(partial, full, image, label_map, bird, image[9, 12], rows)
    same_place = torch.stack([with_bird(partial, 8, 10), with_bird(partial, 9, 11)])
    two_places = torch.stack([with_bird(partial, 8, 10), with_bird(partial, 16, 44)])
    assert object_scores(target, partial, full, same_place)["placements"] == 1
    assert object_scores(target, partial, full, two_places)["placements"] == 2
    washed = partial * 0.7 + 0.3  # a faded, blurry-looking canvas: everything changes
    assert object_scores(target, partial, full, washed[None])["damage"] > 0.5


def test_eval_objects_writes_the_object_table_with_baselines(object_dir, tmp_path, capsys):
    model = tiny.build_edit_model("tiny_clip", resolution=64, vae_blocks=(8, 8, 16, 16), seed=0)
    model.save_pretrained(tmp_path / "tiny")
    argv = ["--model", f"tiny={tmp_path / 'tiny'}", "--objects", "--data-dir", str(object_dir)]
    argv += ["--records", "4", "--n", "2", "--size", "64", "--teacher", "none", "--scorer"]
    argv += ["none", "--paint-proposals", "0", "--examples", "1", "--out", str(tmp_path / "out")]
    assert eval_cli.main(argv) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(last["rows"]) == [
        "tiny",
        "canvas unchanged",
        "OpenCV inpaint of the hole",
        "reference (sim painting)",
    ]
    assert last["rows"]["reference (sim painting)"]["object_recall"] >= 0.95
    assert 0.0 <= last["rows"]["tiny"]["object_recall"] <= 1.0
    assert last["rows"]["tiny"]["diversity"] is not None
    table = (tmp_path / "out" / "table.md").read_text()
    assert "Objects (" in table and "object recall (mean)" in table and "damage" in table
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert all("object_recall" in r for r in saved["per_record"]["tiny"])


def test_objects_on_data_without_object_partials_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "regions"
    argv = ["--profile", "acrylic", "--num", "2", "--partials", "1", "--kinds", "region"]
    argv += ["--px", "64", "--threads", "1", "--quiet", "--out", str(folder)]
    assert make_data.main(argv) == 0
    code = eval_cli.main(
        ["--model", "default", "--objects", "--data-dir", str(folder), "--out", str(tmp_path)]
    )
    assert code == 2
    assert "no 'object' partials" in capsys.readouterr().err


def test_a_kept_object_repainted_in_the_missing_colour_is_not_the_object():
    """A blurry model darkens a kept tree towards black: that is not the black bird back."""
    image, label_map, bird = meadow_scene()
    label_map[36:60, 30:50] = 2  # a green tree on the ground, kept on the canvas
    image[label_map == 2] = np.round(np.array((0.1, 0.4, 0.1)) * 255)
    full = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    partial = full.clone()
    partial[:, 8:13, 10:22] = torch.tensor(SKY).view(3, 1, 1)
    rows = (0.0, 64.0)  # anywhere: only the other object's paint may keep it from counting
    target = object_target(partial, full, image, label_map, bird, image[9, 12], rows)
    darkened = partial.clone()
    darkened[:, 36:60, 30:50] = torch.tensor(BIRD).view(3, 1, 1)
    scores = object_scores(target, partial, full, darkened[None])
    assert scores["object_painted"] == 0.0 and scores["object_recall"] == 0.0
    assert scores["damage"] > 0.05
