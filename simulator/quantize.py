"""Fixed-point quantization as Judd et al. and Stripes use it: per tensor, ``bits`` in total of which
``frac`` are fraction bits (I = bits - frac integer bits, sign included when signed).

Values are rounded to the nearest multiple of 2^-frac (ties to even, as ``torch.round``) and
saturated to the representable range. When only ``bits`` is given, the integer bits come from the
observed range: the fewest that hold the largest magnitude (Judd et al. 2015).

This module is the one quantizer: trace export and accuracy evaluation both call ``quantized``.
Fixed point is implemented here; the other number formats a profile may name (float16, bfloat16,
powers of two, binary, ternary, WRPN; ``TensorPrecision.format``) live in ``simulator.formats`` and
are applied by the same ``quantized`` context. Traces hold fixed-point integers only.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch import nn

from .errors import SimulatorError
from .layers import LayerSpec, compute_layers, spec_of


# Part of every trace's content key: bump it when quantized values change for the same inputs.
QUANTIZER_VERSION = 2


@dataclass(frozen=True)
class FixedPoint:
    """A concrete fixed-point format: value = integer * 2^-frac."""

    bits: int
    frac: int
    signed: bool

    def __post_init__(self) -> None:
        if self.bits < 1 or (self.signed and self.bits < 2):
            raise ValueError(f"a {'signed' if self.signed else 'unsigned'} fixed-point format needs more than {self.bits} bit(s)")

    @property
    def scale(self) -> float:
        return 2.0 ** -self.frac

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def integer_bits(self) -> int:
        return self.bits - self.frac

    def as_dict(self) -> dict:
        return {"bits": self.bits, "frac": self.frac, "signed": self.signed}


@dataclass(frozen=True)
class TensorPrecision:
    """What a profile asks of one tensor: total bits, and optionally fraction bits and signedness
    (derived from the observed values when left out). ``format`` names the number format
    (``simulator.formats.FORMATS``); frac and signed apply to fixed point only."""

    bits: int
    frac: Optional[int] = None
    signed: Optional[bool] = None
    format: str = "fixed"

    def as_dict(self) -> dict:
        d = {"bits": self.bits, "frac": self.frac, "signed": self.signed}
        if self.format != "fixed":   # fixed-point entries keep their old form (and trace keys)
            d["format"] = self.format
        return d


@dataclass(frozen=True)
class LayerPrecision:
    activations: TensorPrecision
    weights: TensorPrecision


def magnitude_bits(max_abs: float) -> int:
    """Integer bits (sign excluded) that hold ``max_abs``: floor(log2 m) + 1, so 4.0 needs 3 bits; may be
    negative for values below 0.5, which buys fraction bits."""
    if max_abs <= 0 or not math.isfinite(max_abs):
        return 0
    return math.floor(math.log2(max_abs)) + 1


def _fits(hi: float, lo: float, fmt: FixedPoint) -> bool:
    """Whether the extremes ``hi`` and ``lo`` round (ties to even, as ``quantize``) inside ``fmt``."""
    s = 2.0 ** fmt.frac
    return round(hi * s) <= fmt.qmax and round(lo * s) >= fmt.qmin


def choose_format(x: torch.Tensor, want: TensorPrecision) -> FixedPoint:
    """The format a profile entry gives tensor ``x``: frac from the observed range unless fixed.

    The integer bits are the fewest with which neither extreme saturates."""
    x = x.detach()
    signed = bool(x.numel() and x.min() < 0) if want.signed is None else want.signed
    if want.frac is not None:
        return FixedPoint(want.bits, want.frac, signed)
    hi = max(float(x.max()), 0.0) if x.numel() else 0.0
    lo = min(float(x.min()), 0.0) if x.numel() and signed else 0.0   # unsigned clamps negatives to 0 by design
    max_abs = max(hi, -lo)
    frac = want.bits - int(signed) - magnitude_bits(max_abs)
    if max_abs > 0 and math.isfinite(max_abs):
        # magnitude_bits is a one-off guess: rounding can carry a value just below 2^I up to 2^I
        # (saturating), and a signed format holds -2^I exactly (one integer bit to spare)
        while not _fits(hi, lo, FixedPoint(want.bits, frac, signed)):
            frac -= 1
        while _fits(hi, lo, FixedPoint(want.bits, frac + 1, signed)):
            frac += 1
    return FixedPoint(want.bits, frac, signed)


def quantize(x: torch.Tensor, fmt: FixedPoint) -> torch.Tensor:
    """The integers that represent ``x`` in ``fmt``: round to nearest, then saturate. int32 up to
    31 bits (half the memory of int64 on a VGG-sized layer), int64 beyond."""
    # scaling by a power of two is exact in binary floating point, so x's own dtype suffices
    # (float64 only where 2^frac itself or the result would leave float32's range)
    if x.dtype != torch.float64 and (abs(fmt.frac) > 100 or fmt.bits > 24):
        x = x.double()
    q = torch.round(x * (2.0 ** fmt.frac))
    return q.clamp_(fmt.qmin, fmt.qmax).to(torch.int32 if fmt.bits <= 31 else torch.int64)


def dequantize(q: torch.Tensor, fmt: FixedPoint, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    if fmt.bits > 24 or abs(fmt.frac) > 100:
        return (q.double() * fmt.scale).to(dtype)
    return q.to(dtype) * fmt.scale


def fake_quantize(x: torch.Tensor, fmt: FixedPoint) -> torch.Tensor:
    """``x`` rounded onto the grid of ``fmt`` and saturated, in x's dtype."""
    return dequantize(quantize(x, fmt), fmt, x.dtype)


def storage_dtype(fmt: FixedPoint) -> np.dtype:
    """The smallest NumPy integer dtype that holds every integer of ``fmt``."""
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64):
        info = np.iinfo(dt)
        if info.min <= fmt.qmin and fmt.qmax <= info.max:
            return np.dtype(dt)
    raise ValueError(f"no integer dtype holds a {fmt.bits}-bit format")


def needed_bits(q: np.ndarray, signed: bool) -> np.ndarray:
    """Bits each integer needs on its own: position of the highest set bit, plus a sign bit where the
    layer is signed (negatives by their one's complement, as Dynamic Stripes detects them)."""
    q = np.asarray(q, dtype=np.int64)
    mag = np.where(q < 0, ~q, q)
    nb = np.zeros(q.shape, dtype=np.int64)
    m = mag.copy()
    while np.any(m):
        nz = m > 0
        nb[nz] += 1
        m >>= 1
    return nb + int(signed)


LayerCallback = Callable[[int, LayerSpec, torch.Tensor, FixedPoint, torch.Tensor, FixedPoint], None]


def _choose_any(x: torch.Tensor, want: TensorPrecision, role: str):
    """The concrete format of one tensor: a ``FixedPoint`` or one of ``simulator.formats``'."""
    if want.format == "fixed":
        return choose_format(x, want)
    from .formats import choose_concrete     # formats imports this module: resolved at call time
    return choose_concrete(x, want, role)


def _fake_any(x: torch.Tensor, fmt) -> torch.Tensor:
    return fake_quantize(x, fmt) if isinstance(fmt, FixedPoint) else fmt.fake_quantize(x)


@contextmanager
def quantized(model: nn.Module, precisions: dict[str, LayerPrecision],
              on_layer: Optional[LayerCallback] = None,
              formats: Optional[dict[str, tuple[Optional[FixedPoint], Optional[FixedPoint]]]] = None) -> Iterator[nn.Module]:
    """Run ``model`` with each compute layer's input activations and weights in fixed point.

    Inside the context, every forward pass quantizes a layer's input before the layer uses it, so the
    error of one layer propagates into the next, as in the papers. ``on_layer(index, spec, act_q,
    act_fmt, weight_q, weight_fmt)`` sees the integers of each layer as they are produced.
    ``formats`` fixes (activation, weight) formats per layer; formats derived from observed ranges
    are stored into it, so a first (calibration) pass can fix them for later batches.
    Layers missing from ``precisions`` stay in float. Formats other than fixed point are applied
    the same way (their concrete formats are stored into ``formats`` too) but have no integer
    trace: asking for ``on_layer`` with one is an error.
    """
    formats = {} if formats is None else formats
    if on_layer is not None:
        for n, p in precisions.items():
            for role, t in (("activations", p.activations), ("weights", p.weights)):
                if t.format != "fixed":
                    raise SimulatorError(f"layer {n}: {role} format '{t.format}' has no integer trace "
                                         f"(traces hold fixed point); evaluate it with `python -m simulator formats`")
    layers = [(i, n, m) for i, (n, m) in enumerate(compute_layers(model)) if n in precisions]
    saved: dict[str, nn.Parameter] = {}
    handles = []
    pending: dict[str, tuple[torch.Tensor, FixedPoint]] = {}

    def pre_hook(name: str):
        def hook(module: nn.Module, args: tuple) -> tuple:
            x = args[0]
            a_fmt = formats.get(name, (None, None))[0]
            if a_fmt is None:
                a_fmt = _choose_any(x, precisions[name].activations, "activations")
                formats[name] = (a_fmt, formats[name][1])
            if not isinstance(a_fmt, FixedPoint):
                return (a_fmt.fake_quantize(x), *args[1:])
            q = quantize(x, a_fmt)
            pending[name] = (q, a_fmt)
            return (dequantize(q, a_fmt, x.dtype), *args[1:])
        return hook

    def post_hook(index: int, name: str):
        def hook(module: nn.Module, args: tuple, y: torch.Tensor) -> None:
            if name not in pending:          # a format without integers: nothing to report
                return
            q, a_fmt = pending.pop(name)
            if on_layer is not None:
                w_fmt = formats[name][1]
                on_layer(index, spec_of(name, module, args[0], y), q, a_fmt, quantize(module.weight, w_fmt), w_fmt)
        return hook

    try:
        with torch.no_grad():
            for index, name, module in layers:
                w = module.weight.detach()
                w_fmt = formats.get(name, (None, None))[1] or _choose_any(w, precisions[name].weights, "weights")
                formats[name] = (formats.get(name, (None, None))[0], w_fmt)
                # swap in a quantized copy (not in place) so the float weights come back untouched
                saved[name] = module.weight
                module.weight = nn.Parameter(_fake_any(w, w_fmt), requires_grad=False)
                handles.append(module.register_forward_pre_hook(pre_hook(name)))
                handles.append(module.register_forward_hook(post_hook(index, name)))
        yield model
    finally:
        for h in handles:
            h.remove()
        for _, name, module in layers:
            if name in saved:
                module.weight = saved[name]
