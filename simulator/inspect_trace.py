"""Per-layer statistics of a trace: shapes, MACs, formats, value ranges, zeros, needed bits."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from .quantize import FixedPoint, needed_bits
from .traces import open_trace


def essential_bits(q: np.ndarray) -> np.ndarray:
    """Non-zero bits of each magnitude (what Bit-Pragmatic processes)."""
    mag = np.abs(np.asarray(q, dtype=np.int64))
    count = np.zeros(mag.shape, dtype=np.int64)
    while np.any(mag):
        count += mag & 1
        mag >>= 1
    return count


def _fmt(f: FixedPoint) -> str:
    return f"{'s' if f.signed else 'u'}{f.bits}.{f.frac}"


def trace_stats(path: Union[str, Path]) -> list[dict]:
    rows = []
    with open_trace(path) as trace:
        for layer in trace:
            a, w = layer.activations, layer.weights
            s = layer.spec
            rows.append({
                "layer": s.name, "kind": s.kind,
                "input": "x".join(map(str, a.shape)), "weights": "x".join(map(str, w.shape)),
                "groups": s.groups, "macs": s.macs * a.shape[0],
                "act_format": _fmt(layer.act_format), "weight_format": _fmt(layer.weight_format),
                "act_min": float(a.min()) * layer.act_format.scale, "act_max": float(a.max()) * layer.act_format.scale,
                "act_zeros": float(np.mean(a == 0)),
                "act_needed_bits": float(needed_bits(a, layer.act_format.signed).mean()),
                "act_essential_bits": float(essential_bits(a).mean()),
                "weight_zeros": float(np.mean(w == 0)),
            })
    return rows
