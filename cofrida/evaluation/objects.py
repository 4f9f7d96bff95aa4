"""Object-level figures on held-out `object` partials: was the removed, named object painted back?

An ``object`` partial (`cofrida.data.partials`) is a finished sim painting with the strokes of one
scene object removed ('a red house' is gone from 'a red house under a yellow sun'). The scene
generator knows that object exactly (label map, paints, kind, zone), so these figures need no
learned judge. Images are sRGB float tensors in 0..1, (3, H, W); colour distances are CIE76
Delta-E (`planner.copaint.color_difference`).

Definitions (the README's evaluation section repeats them):

* **object colour**: the median colour of the reference (the record's finished sim painting)
  over the object's main part (the pixels of the scene drawn in its naming paint).
* **new paint** of a proposal: pixels within ``COLOUR_DELTA_E`` (15) of the object colour where the
  partial canvas is not (paint that was added, not kept), and not on another object of the
  scene (dilated by 1 px): a kept tree darkened towards black is not a black cat painted back.
* **area** A: the reference's own new paint over the object's pixels (dilated by 2 px): what the
  robot painted of that object. Records whose A is below ``MIN_AREA_PX`` are not scored.
* **zone**: the rows where the generator could have placed an object of that kind and size on
  that scene (`cofrida.data.scenes.allowed_rows`: a bird in the sky, a boat on the water), plus
  ``ZONE_SLACK`` of the height either side.
* **painted**: the proposal's new paint covers at least ``RECALL_SHARE`` (half) of A anywhere.
  **recalled**: it does so inside the zone. ``object_recall`` is the mean over proposals,
  ``object_recall_best`` the share of records where at least one of the n proposals recalls.
* **placement**: of the proposals that painted the object, the share that recalled it (their
  paint lies in an allowed zone).
* **damage**: the share of the canvas outside the removed region (the object's pixels and where
  the partial differs from the reference, dilated) and outside the painted-back object (its new
  paint in the zone, dilated) that the proposal changes by more than ``DAMAGE_DELTA_E``.
* **hole restore**: the share of the removed region's pixels (where partial and reference
  differ) that the proposal brings within ``DAMAGE_DELTA_E`` of the reference.
* **placements**: the number of distinct places the n proposals recall the object at: centres
  of their in-zone new paint, greedily grouped; two places are distinct when their centres are
  more than half the object's size apart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from planner.copaint import color_difference

COLOUR_DELTA_E = 15.0  # new paint this near the object colour counts (objects differ 25 from under)
DAMAGE_DELTA_E = 10.0  # a pixel changes (damage) / is restored beyond / within this
RECALL_SHARE = 0.5  # new paint over this share of the object's area recalls it
MIN_AREA_PX = 12  # objects the reference painted less of are not scored (at 128 px: 0.07%)
ZONE_SLACK = 0.05  # of the image height, either side of the allowed rows
DILATE_PX = 2


@dataclass
class ObjectTarget:
    """The removed object of one held-out record, at the record's pixel size.

    Attributes:
        kind: `cofrida.data.KINDS` name, e.g. 'house'; noun and colour word as the caption says.
        colour: (3,) sRGB of the object in the reference painting.
        mask: (H, W) bool, the object's pixels in the scene (label map).
        removed: (H, W) bool, the removed region: the object's pixels and where the partial
            lacks the reference's paint, dilated by `DILATE_PX`.
        zone: (H, W) bool, where an object of this kind and size may lie on this scene.
        free: (H, W) bool, pixels not on another object of the scene (dilated by 1 px): where
            new paint can be this object.
        area: px of the reference's new paint of the object colour on the object (A).
        size_px: the larger side of the object's box.
        centre: (x, y) px of the object in the reference.
    """

    kind: str
    noun: str
    colour_word: str
    colour: torch.Tensor
    mask: torch.Tensor
    removed: torch.Tensor
    zone: torch.Tensor
    free: torch.Tensor
    area: int
    size_px: float
    centre: tuple[float, float]

    def describe(self) -> dict:
        """JSON-ready identity (no masks)."""
        return {
            "kind": self.kind,
            "noun": self.noun,
            "colour": self.colour_word,
            "area_px": self.area,
            "size_px": round(self.size_px, 1),
            "centre": [round(c, 1) for c in self.centre],
        }


def dilate(mask: torch.Tensor, px: int = DILATE_PX) -> torch.Tensor:
    """(H, W) bool grown by `px` pixels (square neighbourhood)."""
    if px <= 0:
        return mask.clone()
    k = 2 * px + 1
    return F.max_pool2d(mask[None, None].float(), k, 1, px)[0, 0] > 0


def near_colour(image: torch.Tensor, colour: torch.Tensor, delta_e: float) -> torch.Tensor:
    """(H, W) bool: pixels of (3, H, W) `image` within `delta_e` (CIE76) of the (3,) colour."""
    flat = colour.to(image).view(3, 1, 1).expand_as(image)
    return color_difference(image, flat) <= delta_e


def object_target(
    partial: torch.Tensor,
    full: torch.Tensor,
    scene_image: np.ndarray,
    label_map: np.ndarray,
    obj,
    main_rgb,
    zone_rows: tuple[float, float],
    colour_delta_e: float | None = None,
) -> ObjectTarget:
    """The `ObjectTarget` of a removed scene object.

    Args:
        partial, full: (3, H, W) the record's canvas and reference painting.
        scene_image: (H, W, 3) uint8 the generated scene (flat paints), same size.
        label_map: (H, W) int object ids of the scene.
        obj: the removed `cofrida.data.SceneObject` (id, kind, colour word, bbox).
        main_rgb: (3,) uint8 the scene's colour of its naming paint (its main part).
        zone_rows: (top, bottom) rows allowed for its kind (`cofrida.data.scenes.allowed_rows`).
        colour_delta_e: tolerance of "the object's colour"; None: `COLOUR_DELTA_E`.
    """
    colour_delta_e = COLOUR_DELTA_E if colour_delta_e is None else colour_delta_e
    h, w = label_map.shape
    if tuple(partial.shape[1:]) != (h, w) or tuple(full.shape[1:]) != (h, w):
        raise ValueError(
            f"object_target: images {tuple(partial.shape)} / {tuple(full.shape)} and the label "
            f"map {(h, w)} differ in size"
        )
    mask = torch.from_numpy(label_map == obj.id)
    main = torch.from_numpy((scene_image == np.asarray(main_rgb, np.uint8)).all(-1)) & mask
    if not bool(main.any()):  # covered main part: the whole object
        main = mask
    colour = full[:, main].median(dim=1).values  # (3,)
    painted_ref = near_colour(full, colour, colour_delta_e) & ~near_colour(
        partial, colour, colour_delta_e
    )
    area = int((painted_ref & dilate(mask)).sum())
    differs = color_difference(partial, full) > DAMAGE_DELTA_E
    removed = dilate(mask | (differs & dilate(mask, 6)))
    top, bottom = zone_rows
    slack = ZONE_SLACK * h
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    zone = (rows >= top - slack) & (rows < bottom + slack)
    others = torch.from_numpy((label_map != 0) & (label_map != obj.id))
    x0, y0, x1, y1 = obj.bbox
    return ObjectTarget(
        obj.kind,
        obj.kind.replace("_", " "),
        obj.colour,
        colour,
        mask,
        removed,
        zone,
        ~dilate(others, 1),
        area,
        float(max(x1 - x0, y1 - y0)),
        ((x0 + x1) / 2, (y0 + y1) / 2),
    )


def _distinct(centres: list[tuple[float, float]], radius: float) -> int:
    """How many groups greedy clustering makes of the centres (within `radius` = same)."""
    groups: list[tuple[float, float]] = []
    for c in centres:
        if all(np.hypot(c[0] - g[0], c[1] - g[1]) > radius for g in groups):
            groups.append(c)
    return len(groups)


def object_scores(
    target: ObjectTarget,
    partial: torch.Tensor,
    full: torch.Tensor,
    proposals: torch.Tensor,
    colour_delta_e: float | None = None,
) -> dict | None:
    """The object figures of n proposals (n, 3, H, W) for one record (definitions above).

    Returns:
        {object_recall, object_recall_best, object_painted, placement (None when nothing was
        painted), damage, hole_restore, placements}, or None when the reference painted too
        little of the object to score it (area < `MIN_AREA_PX`).
    """
    if target.area < MIN_AREA_PX:
        return None
    colour_delta_e = COLOUR_DELTA_E if colour_delta_e is None else colour_delta_e
    had = near_colour(partial, target.colour, colour_delta_e)
    holes = target.removed & (color_difference(partial, full) > DAMAGE_DELTA_E)
    outside = ~target.removed
    need = RECALL_SHARE * target.area
    recalled, painted, damage, restore, centres = [], [], [], [], []
    ys, xs = torch.meshgrid(
        torch.arange(partial.shape[1], dtype=torch.float32),
        torch.arange(partial.shape[2], dtype=torch.float32),
        indexing="ij",
    )
    for p in proposals:
        new = near_colour(p, target.colour, colour_delta_e) & ~had & target.free
        in_zone = new & target.zone
        is_painted = float(new.sum()) >= need
        is_recalled = float(in_zone.sum()) >= need
        painted.append(is_painted)
        recalled.append(is_recalled)
        if is_recalled:
            centres.append((float(xs[in_zone].mean()), float(ys[in_zone].mean())))
        changed = color_difference(partial, p) > DAMAGE_DELTA_E
        region = outside & ~dilate(in_zone) if is_recalled else outside
        damage.append(float((changed & region).sum()) / max(int(region.sum()), 1))
        if bool(holes.any()):
            restored = color_difference(p, full) <= DAMAGE_DELTA_E
            restore.append(float((restored & holes).sum()) / int(holes.sum()))
    n_painted = sum(painted)
    return {
        "object_recall": sum(recalled) / len(recalled),
        "object_recall_best": float(any(recalled)),
        "object_painted": n_painted / len(painted),
        "placement": sum(recalled) / n_painted if n_painted else None,
        "damage": sum(damage) / len(damage),
        "hole_restore": sum(restore) / len(restore) if restore else None,
        "placements": _distinct(centres, 0.5 * target.size_px),
    }


# ---- held-out records -> targets ------------------------------------------------------------
def _owners(points_px: np.ndarray, label_map: np.ndarray, share: float = 0.5) -> np.ndarray:
    """(N,) the object id each stroke mostly lies on (0: none), as `keep_without_object`."""
    h, w = label_map.shape
    xi = np.clip(np.floor(points_px[..., 0]).astype(np.int64), 0, w - 1)
    yi = np.clip(np.floor(points_px[..., 1]).astype(np.int64), 0, h - 1)
    labels = label_map[yi, xi]
    owner = np.zeros(len(points_px), dtype=np.int64)
    for j in (int(i) for i in np.unique(labels) if i != 0):
        owner[(labels == j).mean(1) > share] = j
    return owner


def removed_object_id(strokes, kept, canvas, label_map: np.ndarray) -> int | None:
    """The scene object whose strokes an ``object`` partial removed (None: none found)."""
    from cofrida.data.partials import path_points_px

    owner = _owners(path_points_px(strokes, canvas), label_map)
    removed = np.ones(len(owner), bool)
    removed[np.asarray(kept, dtype=np.int64)] = False
    ids = owner[removed]
    ids = ids[ids != 0]
    return int(np.bincount(ids).argmax()) if ids.size else None


def _fit(mask: np.ndarray, size: int) -> np.ndarray:
    """A (H, W) mask resized (nearest) and centre-cropped like `ShardDataset` reads images."""
    h, w = mask.shape
    if (h, w) == (size, size):
        return mask
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    t = F.interpolate(t, size=(nh, nw), mode="nearest")[0, 0].numpy()
    y0, x0 = (nh - size) // 2, (nw - size) // 2
    return t[y0 : y0 + size, x0 : x0 + size].astype(mask.dtype)


class SceneObjects:
    """Object targets of the ``object`` partials of a procedural `cofrida make-data` folder.

    The folder's manifest names the robot profile and the scene generator's seed; a record's
    scene is generated again from its ``source_index`` and the removed object found from its
    ``strokes`` and ``kept`` columns (the strokes that mostly lay on one object).

    Args:
        data_dir: the folder (``manifest.json``, ``data/*.parquet``).

    Raises:
        FileNotFoundError: no manifest. ValueError: not procedural data, or columns missing.
    """

    COLUMNS = ("partial_kind", "source_index", "strokes", "kept")

    def __init__(self, data_dir) -> None:
        import json
        from pathlib import Path

        import datasets

        from cofrida.train.data import shard_files

        manifest = Path(data_dir) / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{data_dir} has no manifest.json (cofrida make-data)")
        run = json.loads(manifest.read_text())
        if run.get("source") != "procedural" or run.get("source_seed") is None:
            raise ValueError(
                f"object figures need procedural data (scenes with label maps); {data_dir} "
                f"was made from {run.get('source')!r}"
            )
        table = datasets.load_dataset("parquet", data_files=shard_files(data_dir), split="train")
        missing = [c for c in self.COLUMNS if c not in table.column_names]
        if missing:
            raise ValueError(f"shards in {data_dir} lack the columns {missing}")
        self.table = table.select_columns(list(self.COLUMNS))
        self.kinds = list(self.table["partial_kind"])
        self.profile = run["profile"]
        self.seed = int(run["source_seed"])

    def object_indices(self) -> list[int]:
        """Rows whose partial is the ``object`` kind."""
        return [i for i, k in enumerate(self.kinds) if k == "object"]

    def target(self, index: int, partial: torch.Tensor, full: torch.Tensor):
        """The `ObjectTarget` of row `index` at the images' size, None for other kinds."""
        if self.kinds[index] != "object":
            return None
        row = self.table[int(index)]
        return scene_target(
            self.profile, self.seed, row["source_index"], row["strokes"], row["kept"], partial, full
        )


def scene_target(
    profile: dict,
    source_seed: int,
    source_index: int,
    strokes_json: str,
    kept,
    partial: torch.Tensor,
    full: torch.Tensor,
) -> ObjectTarget | None:
    """The removed object of an ``object`` partial of procedural data, at the images' size.

    Args:
        profile: the robot profile as the manifest records it (`RobotProfile.to_dict`).
        source_seed: the scene generator's seed; source_index: the scene.
        strokes_json: the full painting's strokes; kept: the partial's kept stroke indices.
        partial, full: (3, S, S) the record's images as evaluated (square crops).

    Returns:
        The target, or None when no removed stroke lay on an object.
    """
    from cofrida.data.scene_objects import KINDS
    from cofrida.data.scenes import SceneGenerator, allowed_rows
    from sim import Canvas, Strokes
    from sim.palette import Palette

    w_m, h_m = (float(v) for v in profile["canvas_m"])
    canvas = Canvas(w_m, h_m, int(profile["canvas_px"]))
    palette = Palette.preset(profile["scene_palette"])
    scene = SceneGenerator(palette, canvas.size_px, seed=int(source_seed)).generate(
        int(source_index)
    )
    strokes = Strokes.from_json(strokes_json)
    oid = removed_object_id(strokes, kept, canvas, scene.label_map)
    if oid is None:
        return None
    obj = next(o for o in scene.objects if o.id == oid)
    size = int(partial.shape[-1])
    label_map = _fit(scene.label_map, size)
    image = np.stack([_fit(scene.image[..., c], size) for c in range(3)], -1)
    scale = size / min(canvas.size_px)
    box_h = (obj.bbox[3] - obj.bbox[1]) * scale
    rows = allowed_rows(KINDS[obj.kind], scene.background, size, scene.horizon * scale, box_h)
    main_rgb = np.round(palette.colors[obj.paint].numpy() * 255).astype(np.uint8)
    scaled = type(obj)(**{**obj.to_dict(), "bbox": tuple(v * scale for v in obj.bbox)})
    return object_target(partial, full, image, label_map, scaled, main_rgb, rows)


@functools.lru_cache(maxsize=4)
def generated_records(
    count: int, size: int, seed: int = 7, profile: str = "acrylic", max_tries: int | None = None
) -> tuple:
    """`count` scorable held-out ``object`` records painted here, deterministically.

    What `cofrida make-data --source-seed SEED --kinds object --partials 1` would write for
    scenes 0, 1, ... (painted with `profile` at ``max(size, 64)`` px, read at `size`), kept in
    memory: a small fixed set for `cofrida bench model` (about 1 s per scene at 128 px).

    Returns:
        `EvalRecord`s with their `target`, fewer than `count` only when `max_tries` (default
        3 * count) scenes gave too few scorable objects. Cached per process (read-only).
    """
    from cofrida.data import DataConfig, Painter, ProceduralSource, SceneGenerator, get_profile
    from cofrida.data.generate import make_records
    from cofrida.evaluation.candidates import EvalRecord
    from cofrida.train.data import decode_png

    robot = get_profile(profile).with_overrides(canvas_px=max(size, 64))
    painter = Painter(robot)
    from sim.palette import Palette

    gen = SceneGenerator(Palette.preset(robot.scene_palette), painter.canvas.size_px, seed=seed)
    source = ProceduralSource(gen, max_tries or 3 * count)
    config = DataConfig(partials=1, kinds=("object",))
    out = []
    for index in range(len(source)):
        rows, _ = make_records(painter, source[index], index, 0, config)
        row = rows[0]
        if row["partial_kind"] != "object":
            continue
        partial, full = decode_png(row["partial"], size), decode_png(row["full"], size)
        target = scene_target(
            robot.to_dict(), seed, index, row["strokes"], row["kept"], partial, full
        )
        if target is None or target.area < MIN_AREA_PX:
            continue
        out.append(EvalRecord(index, partial, full, row["caption"], target))
        if len(out) == count:
            break
    return tuple(out)
