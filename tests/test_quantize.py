"""The fixed-point quantizer: saturation, rounding, idempotence, format choice, storage, needed bits,
and the ``quantized`` context that runs a network with fixed-point activations and weights."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from simulator.layers import CONV, FC
from simulator.quantize import (
    FixedPoint,
    LayerPrecision,
    TensorPrecision,
    choose_format,
    dequantize,
    fake_quantize,
    magnitude_bits,
    needed_bits,
    quantize,
    quantized,
    storage_dtype,
)

# ------------------------------------------------------------------------------- strategies

formats = st.builds(
    lambda bits, frac, signed: FixedPoint(bits + int(signed), frac, signed),
    st.integers(1, 16), st.integers(-8, 20), st.booleans())

# float32 values of every scale the networks produce (and some), no NaN/inf
float32s = st.floats(-1e6, 1e6, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False)
arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=float32s)


def _exact_rounded(x: np.ndarray, fmt: FixedPoint) -> np.ndarray:
    """x * 2^frac rounded half to even, in float64 (exact for float32 inputs): the unsaturated integers."""
    return np.round(x.astype(np.float64) * 2.0 ** fmt.frac)


def _saturates(x: np.ndarray, fmt: FixedPoint) -> bool:
    r = _exact_rounded(x, fmt)
    return bool(np.any(r > fmt.qmax) or np.any(r < fmt.qmin))


# ------------------------------------------------------------------------------- FixedPoint

def test_format_ranges():
    assert (FixedPoint(8, 0, True).qmin, FixedPoint(8, 0, True).qmax) == (-128, 127)
    assert (FixedPoint(8, 3, False).qmin, FixedPoint(8, 3, False).qmax) == (0, 255)
    assert FixedPoint(8, 3, False).scale == 0.125
    assert FixedPoint(16, 11, True).integer_bits == 5
    with pytest.raises(ValueError):
        FixedPoint(1, 0, True)        # a sign bit and nothing else
    with pytest.raises(ValueError):
        FixedPoint(0, 0, False)


# ------------------------------------------------------------------------------- quantize

@settings(max_examples=200, deadline=None)
@given(arrays, formats)
def test_quantize_saturates_to_the_bounds(x, fmt):
    q = quantize(torch.from_numpy(x), fmt).numpy()
    assert q.dtype == (np.int32 if fmt.bits <= 31 else np.int64)
    assert q.min(initial=fmt.qmin) >= fmt.qmin and q.max(initial=fmt.qmax) <= fmt.qmax
    r = _exact_rounded(x, fmt)
    np.testing.assert_array_equal(q[r > fmt.qmax], fmt.qmax)
    np.testing.assert_array_equal(q[r < fmt.qmin], fmt.qmin)
    inside = (r >= fmt.qmin) & (r <= fmt.qmax)
    np.testing.assert_array_equal(q[inside], r[inside].astype(np.int64))


@settings(max_examples=200, deadline=None)
@given(arrays, formats)
def test_rounding_error_is_at_most_half_an_lsb_inside_the_range(x, fmt):
    x64 = x.astype(np.float64)
    inside = (x64 >= fmt.qmin * fmt.scale) & (x64 <= fmt.qmax * fmt.scale)
    q = quantize(torch.from_numpy(x), fmt).numpy()
    err = np.abs(q.astype(np.float64) * fmt.scale - x64)
    assert np.all(err[inside] <= fmt.scale / 2)
    # and dequantize gives back exactly integer * 2^-frac
    np.testing.assert_array_equal(dequantize(torch.from_numpy(q), fmt, torch.float64).numpy(),
                                  q.astype(np.float64) * fmt.scale)


@settings(max_examples=200, deadline=None)
@given(arrays, formats)
def test_fake_quantize_is_idempotent(x, fmt):
    once = fake_quantize(torch.from_numpy(x), fmt)
    assert once.dtype == torch.float32
    assert torch.equal(fake_quantize(once, fmt), once)


def test_rounding_ties_to_even():
    fmt = FixedPoint(8, 1, True)     # LSB 0.5: 0.25 and 0.75 are ties
    q = quantize(torch.tensor([0.25, 0.75, -0.25, -0.75, 1.25]), fmt)
    assert q.tolist() == [0, 2, 0, -2, 2]


def test_wide_and_extreme_formats_use_double_precision():
    x = torch.tensor([1.0 + 2.0 ** -20, -3.0], dtype=torch.float32)
    fmt = FixedPoint(32, 28, True)   # wider than float32's mantissa
    assert quantize(x, fmt).tolist() == [2 ** 28 + 2 ** 8, -3 * 2 ** 28]
    tiny = torch.tensor([3.0 * 2.0 ** -110])
    assert quantize(tiny, FixedPoint(8, 110, False)).tolist() == [3]


# ------------------------------------------------------------------------------- choose_format

@settings(max_examples=300, deadline=None)
@given(arrays, st.integers(2, 16))
def test_choose_format_fewest_integer_bits_without_saturation(x, bits):
    fmt = choose_format(torch.from_numpy(x), TensorPrecision(bits))
    assert fmt.bits == bits
    assert fmt.signed == bool(x.min() < 0)
    if not np.any(x):
        return                        # all zeros: any format holds them
    assert not _saturates(x, fmt), fmt
    # minimal: one more fraction bit (one fewer integer bit) would saturate
    assert _saturates(x, FixedPoint(bits, fmt.frac + 1, fmt.signed)), fmt


@pytest.mark.parametrize("values, bits, want", [
    ([4.0], 8, FixedPoint(8, 5, False)),            # 4.0 needs 3 integer bits (Judd et al.)
    ([3.99], 8, FixedPoint(8, 6, False)),           # 3.99 -> 255.36 -> 255: 2 integer bits hold it
    ([3.999], 8, FixedPoint(8, 5, False)),          # 3.999 -> 255.94 rounds to 256: needs a third bit
    ([-4.0, 1.0], 8, FixedPoint(8, 5, True)),       # -4.0 is exactly -128 * 2^-5
    ([0.3], 8, FixedPoint(8, 9, False)),            # below 0.5: fraction bits beyond the width
    ([0.0, 0.0], 8, FixedPoint(8, 8, False)),
])
def test_choose_format_examples(values, bits, want):
    assert choose_format(torch.tensor(values), TensorPrecision(bits)) == want


def test_choose_format_fixed_frac_and_sign():
    x = torch.tensor([0.5, 100.0])
    assert choose_format(x, TensorPrecision(8, frac=2)) == FixedPoint(8, 2, False)
    assert choose_format(x, TensorPrecision(8, signed=True)) == FixedPoint(8, 0, True)
    assert choose_format(-x, TensorPrecision(8, signed=False)).signed is False
    assert choose_format(-x, TensorPrecision(8, frac=3, signed=True)) == FixedPoint(8, 3, True)


def test_magnitude_bits():
    assert [magnitude_bits(v) for v in (4.0, 3.9, 1.0, 0.5, 0.3, 0.0)] == [3, 2, 1, 0, -1, 0]


# ------------------------------------------------------------------------------- storage and needed bits

@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bits", range(2, 64))
def test_storage_dtype_is_the_smallest_that_holds_the_format(bits, signed):
    fmt = FixedPoint(bits, 0, signed)
    dt = storage_dtype(fmt)
    info = np.iinfo(dt)
    assert info.min <= fmt.qmin and fmt.qmax <= info.max
    for smaller in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32):
        if np.dtype(smaller).itemsize < dt.itemsize:
            s = np.iinfo(smaller)
            assert not (s.min <= fmt.qmin and fmt.qmax <= s.max), (dt, smaller)


def test_storage_dtype_examples():
    assert storage_dtype(FixedPoint(8, 0, True)) == np.int8
    assert storage_dtype(FixedPoint(8, 0, False)) == np.uint8
    assert storage_dtype(FixedPoint(9, 0, False)) == np.int16
    assert storage_dtype(FixedPoint(16, 0, False)) == np.uint16
    with pytest.raises(ValueError):
        storage_dtype(FixedPoint(64, 0, False))


def _needed_bits_twin(v: int, signed: bool) -> int:
    mag = ~v if v < 0 else v
    return mag.bit_length() + int(signed)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2 ** 62), 2 ** 62), min_size=1, max_size=30), st.booleans())
def test_needed_bits_matches_plain_python(values, signed):
    got = needed_bits(np.array(values, dtype=np.int64), signed)
    assert got.tolist() == [_needed_bits_twin(v, signed) for v in values]


def test_needed_bits_examples():
    assert needed_bits(np.array([0, 1, 5, 255]), False).tolist() == [0, 1, 3, 8]
    assert needed_bits(np.array([0, -1, -128, 127, -129]), True).tolist() == [1, 1, 8, 8, 9]


# ------------------------------------------------------------------------------- the quantized context

def _tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(2, 3, 3, padding=1)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(3, 4, 3, stride=2)), ("relu2", nn.ReLU()),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(4 * 3 * 3, 5)),
    ]))
    return net.eval()


def _uniform(net: nn.Module, bits: int) -> dict[str, LayerPrecision]:
    return {n: LayerPrecision(TensorPrecision(bits), TensorPrecision(bits))
            for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


@pytest.fixture
def net_and_input():
    return _tiny_net(), torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(3))


def test_weights_restored_exactly_after_the_context(net_and_input):
    net, x = net_and_input
    before = {k: v.clone() for k, v in net.state_dict().items()}
    params = {n: m.weight for n, m in net.named_modules() if hasattr(m, "weight")}
    with quantized(net, _uniform(net, 4)) as q:
        q(x)
        assert not torch.equal(net.conv1.weight, before["conv1.weight"])   # really quantized inside
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    for n, m in net.named_modules():
        if n in params:
            assert m.weight is params[n]
        assert not m._forward_pre_hooks and not m._forward_hooks


def test_weights_restored_after_an_exception(net_and_input):
    net, x = net_and_input
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(RuntimeError, match="boom"):
        with quantized(net, _uniform(net, 4)) as q:
            q(x)
            raise RuntimeError("boom")
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in net.modules())
    # the float model still works as before
    torch.testing.assert_close(net(x), _tiny_net()(x), rtol=0, atol=0)


def test_outputs_converge_to_float_as_bits_grow(net_and_input):
    net, x = net_and_input
    ref = net(x).detach()
    errors = []
    for bits in (4, 8, 12, 16):
        with quantized(net, _uniform(net, bits)) as q:
            errors.append(float((q(x).detach() - ref).abs().max()))
    assert errors[0] > 0
    assert errors == sorted(errors, reverse=True), errors
    assert errors[-1] < 1e-3 * float(ref.abs().max()), errors


def test_callback_sees_integers_within_the_formats(net_and_input):
    net, x = net_and_input
    seen = []

    def on_layer(index, spec, act_q, act_fmt, w_q, w_fmt):
        seen.append((index, spec, act_q, act_fmt, w_q, w_fmt))

    with quantized(net, _uniform(net, 6), on_layer=on_layer) as q:
        q(x)
    assert [s[0] for s in seen] == [0, 1, 2]
    assert [(s[1].name, s[1].kind) for s in seen] == [("conv1", CONV), ("conv2", CONV), ("fc", FC)]
    for index, spec, act_q, act_fmt, w_q, w_fmt in seen:
        for t, f in ((act_q, act_fmt), (w_q, w_fmt)):
            assert t.dtype == torch.int32 and f.bits == 6
            assert int(t.min()) >= f.qmin and int(t.max()) <= f.qmax
        assert act_q.shape[0] == 2
        # the weight integers are those of the float weights (restored after the context)
        w = dict(net.named_modules())[spec.name].weight
        assert torch.equal(w_q, quantize(w, w_fmt))
    assert seen[0][3].signed and not seen[1][3].signed      # noise in, ReLU outputs after


def test_quantized_activations_feed_the_next_layer(net_and_input):
    net, x = net_and_input
    seen = {}

    def on_layer(index, spec, act_q, act_fmt, w_q, w_fmt):
        seen[spec.name] = (act_q, act_fmt, w_q, w_fmt)

    with quantized(net, _uniform(net, 5), on_layer=on_layer) as q:
        q(x)
    a1, f1, w1, fw1 = seen["conv1"]
    y1 = torch.relu(nn.functional.conv2d(dequantize(a1, f1), dequantize(w1, fw1), net.conv1.bias, padding=1))
    a2, f2, _, _ = seen["conv2"]
    assert torch.equal(a2, quantize(y1, f2))
    # with 5 bits the quantized path really differs from the float one
    assert not torch.equal(a2, quantize(torch.relu(net.conv1(x)), f2))


def test_formats_are_recorded_and_reused(net_and_input):
    net, x = net_and_input
    formats: dict = {}
    with quantized(net, _uniform(net, 8), formats=formats) as q:
        q(x)
    assert set(formats) == {"conv1", "conv2", "fc"}
    fixed = dict(formats)
    used = {}
    with quantized(net, _uniform(net, 8), formats=formats,
                   on_layer=lambda i, s, a, af, w, wf: used.setdefault(s.name, (af, wf))) as q:
        q(100 * x)                  # a much larger input keeps the calibrated formats
    assert used == fixed


def test_layers_missing_from_the_precisions_stay_float(net_and_input):
    net, x = net_and_input
    names = []
    only_fc = {"fc": _uniform(net, 8)["fc"]}
    with quantized(net, only_fc, on_layer=lambda i, s, *rest: names.append((i, s.name))) as q:
        q(x)
        assert torch.equal(net.conv1.weight, _tiny_net().conv1.weight)
    assert names == [(2, "fc")]
