"""Placement-coded noise (`cofrida.model.placement`): training puts each record's bump on the
region its target changes; proposing puts each proposal's bump where its seed says."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("diffusers")

from cofrida.model import EditModel, tiny
from cofrida.model.placement import SIGMA_RANGE, change_bumps, random_bump, training_bumps
from cofrida.train import TrainConfig
from cofrida.train.adversarial import DiversityObjective, objective_step


def peak(image: torch.Tensor) -> tuple[int, int]:
    """(row, col) of the largest value of an (h, w) tensor."""
    i = int(image.argmax())
    return divmod(i, image.shape[-1])


def test_a_change_gets_a_bump_on_its_centre_and_no_change_none():
    change = torch.zeros(2, 1, 128, 128)
    change[0, :, 20:40, 80:100] = 1  # a 20 px object, upper right
    bumps, has = change_bumps(change, 32, 32)
    assert has.tolist() == [True, False]
    assert peak(bumps[0]) == (7, 22)  # 30 px / 4 and 90 px / 4, latent px
    assert float(bumps[0].max()) == pytest.approx(1.0, abs=0.05)
    assert float(bumps[0, 25, 5]) < 1e-3  # far from it: nothing
    assert float(bumps[1].abs().max()) == 0.0  # a record that changes nothing gets no bump


def test_a_wide_change_gets_its_bump_at_points_of_the_change_not_its_centroid():
    """A blank canvas the target paints all around a kept middle (a ring): the centroid lies in
    the kept middle, where nothing changes; the bumps land on the ring, in varied places."""
    change = torch.ones(64, 1, 64, 64)
    change[:, :, 16:48, 16:48] = 0  # kept middle
    bumps, has = change_bumps(change, 16, 16)
    assert bool(has.all())
    peaks = {peak(b) for b in bumps}
    for row, col in peaks:
        assert not (5 <= row <= 10 and 5 <= col <= 10), (row, col)  # never inside the middle
    assert len(peaks) >= 16  # spread over the ring, not one place


def test_training_bumps_mix_placed_distracting_and_none():
    change = torch.zeros(64, 1, 64, 64)
    change[:, :, 8:16, 8:16] = 1
    on_change, _ = change_bumps(change, 16, 16)
    torch.manual_seed(0)
    placed = training_bumps(change, 16, 16, placed=1.0, distractor=0.0)
    torch.testing.assert_close(placed, on_change)
    none = training_bumps(change, 16, 16, placed=0.0, distractor=0.0)
    assert float(none.abs().max()) == 0.0
    mixed = training_bumps(change, 16, 16, placed=0.5, distractor=0.0)
    share = float((mixed.amax((1, 2)) > 0.5).float().mean())
    assert 0.25 < share < 0.75  # about half the records carry their bump


def test_a_proposals_bump_is_a_function_of_its_seed():
    a = random_bump(32, 32, torch.Generator().manual_seed(3))
    b = random_bump(32, 32, torch.Generator().manual_seed(3))
    c = random_bump(32, 32, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert peak(a[0]) != peak(c[0])
    sigmas = []
    for s in range(50):  # sizes stay in range: above half height a bump covers 2 pi ln2 sigma^2
        bump = random_bump(64, 64, torch.Generator().manual_seed(s))[0]
        area = float((bump > 0.5).sum())  # px; a bump cut by the border covers less
        sigmas.append((area / (2 * math.pi * math.log(2))) ** 0.5 / 64)
    assert max(sigmas) < 1.2 * SIGMA_RANGE[1] and sorted(sigmas)[25] > 0.8 * SIGMA_RANGE[0]


def test_training_noise_carries_the_bump_where_the_target_changes():
    """objective_step adds strength x bump on the changed region to every draw's noise."""
    cfg0 = TrainConfig(perceptual_weight=0.0, diversity_samples=2, keep_weight=1.0)
    cfg2 = TrainConfig(perceptual_weight=0.0, diversity_samples=2, keep_weight=1.0,
                       placement_strength=2.0, placement_prob=1.0,
                       placement_distractor_prob=0.0)  # fmt: skip
    partial = torch.full((1, 3, 64, 64), 0.9)
    full = partial.clone()
    full[:, :, 40:56, 8:24] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)  # lower left
    batch = {"partial": partial, "full": full, "caption": ["a red box"]}
    text = SimpleNamespace(hidden_states=torch.zeros(1, 2, 4), mask=None, pooled=torch.zeros(1, 4))
    seen = []

    def trainable(partial, text, noise, t, draws=1):
        seen.append(noise.clone())
        return partial.repeat(draws, 1, 1, 1)

    model = SimpleNamespace(vae_scale_factor=4)
    for cfg in (cfg0, cfg2):
        torch.manual_seed(0)
        objective_step(DiversityObjective(cfg), trainable, model, batch, text, cfg, "cpu")
    added = (seen[1] - seen[0]).mean(1)  # (2, 16, 16): the same eps, plus the bumps
    assert seen[1].shape == (2, 4, 16, 16)
    for draw in added:
        row, col = peak(draw)
        assert 10 <= row <= 13 and 2 <= col <= 5  # 48 px / 4 and 16 px / 4, give or take
        assert 1.5 < float(draw.max()) <= 2.0  # the peak falls between latent px


def test_a_bundle_proposes_with_the_noise_it_was_trained_with(tmp_path):
    plain = tiny.build_edit_model("tiny_clip", resolution=64, vae_blocks=(8, 8, 16), seed=0)
    coded = tiny.build_edit_model("tiny_clip", resolution=64, vae_blocks=(8, 8, 16), seed=0,
                                  placement_strength=3.0)  # fmt: skip
    canvas = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))
    a = plain.propose(canvas, "a red sun", n=2, seed=5)
    b = coded.propose(canvas, "a red sun", n=2, seed=5)
    assert float((a - b).abs().max()) > 1e-3  # the bump changes the input noise
    torch.testing.assert_close(coded.propose(canvas, "a red sun", n=2, seed=5), b)
    coded.save_pretrained(tmp_path / "bundle")
    again = EditModel.from_pretrained(tmp_path / "bundle")
    assert again.config.placement_strength == 3.0
    torch.testing.assert_close(again.propose(canvas, "a red sun", n=2, seed=5), b)
    multi = coded.propose(canvas, "a red sun", n=1, seed=5, mode="multi_step",
                          num_inference_steps=2)  # fmt: skip
    plain_multi = plain.propose(canvas, "a red sun", n=1, seed=5, mode="multi_step",
                                num_inference_steps=2)  # fmt: skip
    torch.testing.assert_close(multi, plain_multi)  # the teacher samples from plain noise
    with pytest.raises(ValueError, match="placement_strength"):
        tiny.build_edit_model("tiny_clip", resolution=64, vae_blocks=(8, 8, 16),
                              placement_strength=-1.0)  # fmt: skip
    with pytest.raises(ValueError, match="placement_strength"):
        TrainConfig(placement_strength=1.0, mode="multi_step")


def test_the_proposals_of_one_call_spread_over_the_canvas():
    """Four proposals' bump centres never bunch up (uniform draws often do), each is a function
    of (seed, index) only, and over many calls the centres cover the canvas evenly."""
    from cofrida.model.placement import spread_centre

    def closest(points) -> float:
        return min(math.dist(p, q) for i, p in enumerate(points) for q in points[i + 1 :])

    spread = [closest([spread_centre(s, i) for i in range(4)]) for s in range(200)]
    g = torch.Generator().manual_seed(0)
    uniform = [closest(torch.rand(4, 2, generator=g).tolist()) for _ in range(200)]
    assert min(spread) > 0.15  # (a torus distance would be larger still)
    assert sorted(uniform)[20] < 0.15  # one uniform call in ten has two within 0.15
    assert spread_centre(3, 2) == spread_centre(3, 2) and spread_centre(3, 2) != spread_centre(4, 2)
    ys = torch.tensor([spread_centre(s, 0)[0] for s in range(400)])
    assert 0.4 < float((ys < 0.5).float().mean()) < 0.6  # no place is favoured
