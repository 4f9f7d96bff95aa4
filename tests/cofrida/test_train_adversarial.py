"""Issue 14's training terms on tiny models: the conditional multi-scale discriminator, best of
K draws and the diversity hinge (`cofrida.train.adversarial`)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("datasets")

from cofrida.model import EditModel
from cofrida.model.diversity import proposal_diversity
from cofrida.train import TrainConfig, train
from cofrida.train.adversarial import (
    ConditionalPatchDiscriminator,
    DiversityObjective,
    discriminator_loss,
)
from tests.cofrida.test_train import config, data_dir, init_model, log_of  # noqa: F401


def test_conditional_discriminator_sees_canvas_prompt_and_several_scales():
    torch.manual_seed(0)
    disc = ConditionalPatchDiscriminator(text_dim=16, width=8, scales=3)
    canvas, image = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    text = torch.randn(2, 16)
    logits = disc(canvas, image, text)
    assert [tuple(x.shape) for x in logits] == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 2, 2)]
    other_text = [x - y for x, y in zip(disc(canvas, image, -text), logits, strict=True)]
    other_canvas = [x - y for x, y in zip(disc(image, image, text), logits, strict=True)]
    assert all(float(d.detach().abs().max()) > 1e-4 for d in other_text)  # the prompt matters
    assert all(float(d.detach().abs().max()) > 1e-4 for d in other_canvas)  # the canvas matters


def test_discriminator_learns_that_a_painting_must_fit_its_prompt():
    """Real paintings with their own prompt above real paintings with another record's."""
    torch.manual_seed(0)
    disc = ConditionalPatchDiscriminator(text_dim=8, width=8, scales=2)
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3)
    colours = torch.eye(3)  # prompt k asks for a painting in colour k
    canvas = torch.full((3, 3, 32, 32), 0.9)
    real = colours[:, :, None, None].expand(3, 3, 32, 32).clone()
    text = torch.nn.functional.pad(colours, (0, 5))  # (3, 8)
    fake = torch.full_like(real, 0.5)

    def margin() -> float:
        with torch.no_grad():
            right = torch.stack([x.mean() for x in disc(canvas, real, text)]).mean()
            wrong = torch.stack([x.mean() for x in disc(canvas, real, text.roll(1, 0))]).mean()
        return float(right - wrong)

    before = margin()
    for _ in range(60):
        loss = discriminator_loss(disc, canvas, real, fake, text)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert margin() > before + 0.5 and margin() > 0.5


def test_best_of_k_counts_only_the_closest_draw():
    cfg = TrainConfig(reconstruction="l1", perceptual_weight=0.0, diversity_samples=2)
    objective = DiversityObjective(cfg)
    target = torch.zeros(1, 3, 8, 8)
    near, far = torch.full((1, 3, 8, 8), 0.1), torch.full((1, 3, 8, 8), 0.9)
    loss, parts = objective(torch.cat([near, far]), target, target, torch.zeros(1, 4))
    assert parts["best_of_k"] == pytest.approx(0.1)  # the far draw costs nothing
    assert parts["pair_difference"] == pytest.approx(0.8)
    assert float(loss) == pytest.approx(0.1)


def test_bad_issue14_options_are_refused_clearly():
    with pytest.raises(ValueError, match="discriminator"):
        TrainConfig(discriminator="huge")
    with pytest.raises(ValueError, match="diversity_samples >= 2"):
        TrainConfig(diversity_weight=1.0)
    with pytest.raises(ValueError, match="diversity_target"):
        TrainConfig(diversity_samples=2, diversity_target=0.0)


def draws_differ(bundle, data) -> float:
    """Mean diversity of 4 one-step proposals on a few training canvases."""
    from cofrida.train.data import ShardDataset

    model = EditModel.from_pretrained(bundle)
    items = [ShardDataset(data, 32)[i] for i in range(3)]
    return sum(
        proposal_diversity(model.propose(it["partial"], it["caption"], n=4, seed=i))
        for i, it in enumerate(items)
    ) / len(items)


def test_conditional_gan_and_diversity_terms_train_and_keep_the_noise_meaningful(
    data_dir,  # noqa: F811
    init_model,  # noqa: F811
    tmp_path,
):
    common = dict(max_steps=8, learning_rate=2e-3, checkpoint_every=0, reconstruction="l1")
    plain = config(data_dir, init_model, tmp_path / "plain", **common)
    train(plain)
    varied = config(
        data_dir, init_model, tmp_path / "varied", **common,
        discriminator="conditional", adversarial_weight=0.5, discriminator_width=8,
        diversity_samples=2, diversity_weight=2.0, diversity_target=0.2,
    )  # fmt: skip
    train(varied)
    log = log_of(tmp_path / "varied")
    for key in ("best_of_k", "adversarial", "discriminator", "diversity", "pair_difference"):
        assert all(torch.isfinite(torch.tensor(r[key])) for r in log), key
    # a few steps change the output
    start = EditModel.from_pretrained(init_model)
    end = EditModel.from_pretrained(tmp_path / "varied" / "final")
    canvas = torch.full((3, 32, 32), 0.9)
    a = start.propose(canvas, "a red sun", n=1, seed=0)
    b = end.propose(canvas, "a red sun", n=1, seed=0)
    assert float((a - b).abs().mean()) > 0.01
    # the noise changes the output more with the diversity terms than without
    with_terms = draws_differ(tmp_path / "varied" / "final", data_dir)
    without = draws_differ(tmp_path / "plain" / "final", data_dir)
    assert with_terms > 1.5 * without, (with_terms, without)


def test_discriminator_update_uses_its_own_loss_only(data_dir, init_model, tmp_path, monkeypatch):  # noqa: F811
    """The generator's adversarial loss also puts gradients on the discriminator; they must be
    cleared before its own update, or it is pushed the generator's way."""
    from cofrida.train import loop

    seen = []
    real = loop.discriminator_step_loss

    def spy(discriminator, *args):
        seen.append([p.grad is None for p in discriminator.parameters()])
        return real(discriminator, *args)

    monkeypatch.setattr(loop, "discriminator_step_loss", spy)
    for kind in ("patch", "conditional"):
        cfg = config(data_dir, init_model, tmp_path / kind, max_steps=2, checkpoint_every=0,
                     adversarial_weight=0.5, discriminator=kind, discriminator_width=8)  # fmt: skip
        train(cfg)
    assert len(seen) == 4 and all(all(flags) for flags in seen)


def left_kept_right_changed():
    """(canvas, target): the target keeps the left half and paints the right half red."""
    canvas = torch.full((1, 3, 16, 16), 0.9)
    target = canvas.clone()
    target[:, :, :, 8:] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)
    return canvas, target


def test_keep_pulls_every_draw_to_the_canvas_where_the_target_keeps_it():
    cfg = TrainConfig(perceptual_weight=0.0, diversity_samples=2, keep_weight=1.0)
    objective = DiversityObjective(cfg)
    canvas, target = left_kept_right_changed()
    clean = target.clone()
    noisy = target.clone()
    noisy[:, :, :, :8] += 0.2  # the second draw smears the kept half
    _, both_clean = objective(torch.cat([clean, clean]), target, canvas, torch.zeros(1, 4))
    _, one_noisy = objective(torch.cat([clean, noisy]), target, canvas, torch.zeros(1, 4))
    assert both_clean["keep"] == pytest.approx(0.0)
    assert one_noisy["keep"] == pytest.approx(0.1)  # half the draws are 0.2 off on kept pixels
    assert one_noisy["best_of_k"] == pytest.approx(0.0)  # best of K alone would not see it


def test_diversity_counts_only_where_the_target_changes_the_canvas():
    cfg = TrainConfig(perceptual_weight=0.0, diversity_samples=2, diversity_weight=1.0,
                      diversity_target=0.1)  # fmt: skip
    objective = DiversityObjective(cfg)
    canvas, target = left_kept_right_changed()
    a = target.clone()
    noise_in_kept = target.clone()
    noise_in_kept[:, :, :, :2] += 0.5  # differs only far inside the kept half
    varied_paint = target.clone()
    varied_paint[:, :, :, 8:] = torch.tensor([0.6, 0.1, 0.3]).view(1, 3, 1, 1)
    _, kept_noise = objective(torch.cat([a, noise_in_kept]), target, canvas, torch.zeros(1, 4))
    _, new_paint = objective(torch.cat([a, varied_paint]), target, canvas, torch.zeros(1, 4))
    assert kept_noise["pair_difference"] > 0.05  # the images differ...
    assert kept_noise["diversity"] == pytest.approx(1.0)  # ...but not where paint goes: no credit
    assert new_paint["diversity"] < 0.5


def test_a_conditional_gan_run_resumes_exactly(data_dir, init_model, tmp_path):  # noqa: F811
    """A long issue-14 run spans sessions: its checkpoints (trainable weights only) must hold the
    discriminator too, so a resumed run gives the loss curve of an uninterrupted one."""
    terms = dict(
        discriminator="conditional", adversarial_weight=0.5, discriminator_width=8,
        diversity_samples=2, diversity_weight=1.0, diversity_target=0.2,
    )  # fmt: skip
    out = tmp_path / "run"
    train(config(data_dir, init_model, out, max_steps=2, checkpoint_every=2, **terms))
    train(
        config(data_dir, init_model, out, max_steps=4, checkpoint_every=2, **terms), resume="latest"
    )
    straight = tmp_path / "straight"
    train(config(data_dir, init_model, straight, max_steps=4, checkpoint_every=0, **terms))
    resumed, uninterrupted = log_of(out), log_of(straight)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    for key in ("loss", "discriminator"):
        assert [r[key] for r in resumed] == pytest.approx([r[key] for r in uninterrupted], rel=1e-4)


def small_object_scene() -> tuple[torch.Tensor, torch.Tensor]:
    """(canvas, target) 1 x 3 x 32 x 32: the target adds a 4 x 4 red object on blank paper."""
    canvas = torch.full((1, 3, 32, 32), 0.9)
    target = canvas.clone()
    target[:, :, 4:8, 20:24] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)
    return canvas, target


def test_change_weight_makes_the_draw_that_painted_the_object_the_closest():
    """Whole-image L1 picks a draw with no object but a clean canvas over one that painted the
    object and speckled the rest a little; with change_weight the object decides."""
    canvas, target = small_object_scene()
    painted = target.clone()
    painted[:, :, 16:, :] += 0.03  # the object, and faint speckle over half the canvas
    empty = canvas.clone()  # nothing painted, kept canvas perfect
    draws = torch.cat([empty, painted])  # draw 0 = empty, draw 1 = painted
    plain = DiversityObjective(TrainConfig(reconstruction="l1", perceptual_weight=0.0,
                                           diversity_samples=2))  # fmt: skip
    weighted = DiversityObjective(TrainConfig(reconstruction="l1", perceptual_weight=0.0,
                                              diversity_samples=2, change_weight=1.0))  # fmt: skip
    regression = plain.per_sample(draws, target.repeat(2, 1, 1, 1), canvas.repeat(2, 1, 1, 1))
    assert int(regression.argmin()) == 0  # without it the empty draw wins
    regression = weighted.per_sample(draws, target.repeat(2, 1, 1, 1), canvas.repeat(2, 1, 1, 1))
    assert int(regression.argmin()) == 1
    _, parts = weighted(draws, target, canvas, torch.zeros(1, 4))
    assert parts["best_of_k"] == pytest.approx(float(regression[1]))


def test_k_draws_share_one_encoding_of_their_canvas(init_model):  # noqa: F811
    """OneStepGenerator(draws=K) encodes each canvas once and repeats its latents and VAE skip
    activations: the same paintings as encoding the canvas K times."""
    from cofrida.model.text_encoder import TextEmbeddings
    from cofrida.train.objectives import OneStepGenerator, encode_captions

    model = EditModel.from_pretrained(init_model)
    model.add_skip_connections()
    for conv in model.vae_skips.convs:  # non-zero skips, so that they matter
        torch.nn.init.normal_(conv.weight, std=0.1)
    generator = OneStepGenerator(model).eval()
    torch.manual_seed(0)
    partial = torch.rand(2, 3, 32, 32)
    text = encode_captions(model, ["a red house", "a blue boat"], "cpu")
    noise = torch.randn(6, 4, 4, 4)  # K = 3 draws of 2 canvases
    mask = None if text.mask is None else text.mask.repeat(3, 1)
    text = TextEmbeddings(text.hidden_states.repeat(3, 1, 1), text.pooled.repeat(3, 1), mask)
    with torch.no_grad():
        shared = generator(partial, text, noise, draws=3)
        repeated = generator(partial.repeat(3, 1, 1, 1), text, noise)
    assert shared.shape == (6, 3, 32, 32)
    torch.testing.assert_close(shared, repeated, atol=1e-5, rtol=1e-4)
    assert float((shared[0] - shared[2]).abs().max()) > 1e-3  # the draws do differ
