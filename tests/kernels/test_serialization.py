"""Save / load of quantized models: exact round trip, and no full-precision weight on load."""

import json

import pytest
import torch
from safetensors import safe_open
from torch.utils._python_dispatch import TorchDispatchMode

from kernels import (
    SVDQuantConfig,
    SVDQuantConv1x1,
    SVDQuantConv2d,
    add_lora,
    load_quantized,
    quantize_,
    quantized_layers,
    read_metadata,
    save_quantized,
)
from kernels.unet_standin import UNetStandIn

CFG = SVDQuantConfig(rank=8, min_features=32)  # bfloat16 factors and scales


def make_unet() -> UNetStandIn:
    torch.manual_seed(0)
    return UNetStandIn(channels=(32, 64, 128), context_dim=64)


def inputs():
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(1, 4, 8, 8, generator=g),
        torch.tensor([3.0]),
        torch.randn(1, 5, 64, generator=g),
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = make_unet()
    quantize_(model, CFG, calibration=[inputs()])
    add_lora(model.mid_attn.attn1.to_q, "style", torch.randn(4, 128), torch.randn(128, 4))
    path = tmp_path_factory.mktemp("q") / "unet.safetensors"
    save_quantized(model, path, CFG, float_dtype=None)  # every tensor as it is: exact
    return model, path


class _Allocations(TorchDispatchMode):
    """Records the shape and dtype of every non-meta tensor an aten op creates."""

    def __init__(self):
        super().__init__()
        self.made: list[tuple[tuple[int, ...], torch.dtype]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and not t.is_meta:
                self.made.append((tuple(t.shape), t.dtype))
        return out


def test_round_trip_is_exact_including_lora(saved):
    model, path = saved
    loaded = load_quantized(make_unet, path)
    before, after = model.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys()
    assert all(
        torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before
    )
    assert loaded.mid_attn.attn1.to_q.adapters == {"style": (8, 12)}
    assert isinstance(loaded.down[1].conv_shortcut, SVDQuantConv1x1)
    with torch.no_grad():
        assert torch.equal(loaded(*inputs()), model(*inputs()))


def test_default_storage_is_16_bit_outside_the_int4_weights(saved, tmp_path):
    model, exact = saved
    path = tmp_path / "16bit.safetensors"
    save_quantized(model, path, CFG)
    with safe_open(str(path), framework="pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
    quantized = {n for n, _ in quantized_layers(model)}
    for key, dtype in dtypes.items():
        layer, _, field = key.rpartition(".")
        if layer in quantized:
            expected = {"qweight": "I8", "smooth": "F32"}.get(field, "BF16")  # CFG: bfloat16
        else:
            expected = "F16"  # norms, conv_in/out, layers too narrow to quantize
        assert dtype == expected, key
    assert path.stat().st_size < exact.stat().st_size
    loaded = load_quantized(make_unet, path)  # computed in float32 on the CPU
    assert loaded.conv_in.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.conv_in.weight, model.conv_in.weight.half().float())


def test_file_holds_packed_int4_and_metadata_not_pickle(saved):
    _, path = saved
    meta = read_metadata(path)
    assert meta["config"] == json.loads(json.dumps(CFG.to_dict()))
    assert meta["layers"]["mid_attn.ff_proj"]["rank"] == 8
    with safe_open(str(path), framework="pt") as f:
        q = f.get_tensor("mid_attn.ff_proj.qweight")
        assert q.dtype == torch.int8 and q.shape == (1024, 64)  # (N, K/2)
        assert "mid_attn.ff_proj.weight" not in set(f.keys())
    assert path.read_bytes()[8:9] == b"{"  # safetensors header, not a pickle


def test_load_never_allocates_a_full_precision_quantized_weight(saved):
    _, path = saved
    float_shapes = {
        (layer.out_features, layer.in_features) for _, layer in quantized_layers(saved[0])
    }
    float_shapes |= {(n, k, 1, 1) for n, k in float_shapes}
    float_shapes |= {  # k x k convolutions: their (N, C, kh, kw) weights
        (layer.out_features, layer.in_channels, *layer.kernel_size)
        for _, layer in quantized_layers(saved[0])
        if isinstance(layer, SVDQuantConv2d)
    }
    assert any(len(s) == 4 and s[2] == 3 for s in float_shapes)  # there are 3x3 ones
    with _Allocations() as seen:
        loaded = load_quantized(make_unet, path)
    full = [s for s, dt in seen.made if s in float_shapes and dt.is_floating_point]
    assert not full, full
    assert not any(t.is_meta for t in loaded.state_dict().values())


def test_loading_a_non_svdquant_file_fails_clearly(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(ValueError, match="not an SVDQuant file"):
        load_quantized(make_unet, p)


def test_format_versions_one_and_two_load_a_newer_one_is_refused(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    model, path = saved
    assert read_metadata(path)["version"] == "2"
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    old = tmp_path / "v1.safetensors"  # what files written before 3x3 convs said
    save_file(tensors, str(old), metadata={**meta, "version": "1"})
    with torch.no_grad():
        assert torch.equal(load_quantized(make_unet, old)(*inputs()), model(*inputs()))
    newer = tmp_path / "v3.safetensors"
    save_file(tensors, str(newer), metadata={**meta, "version": "3"})
    with pytest.raises(ValueError, match="format version '3'"):
        load_quantized(make_unet, newer)
