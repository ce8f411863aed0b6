"""Figure 6: accuracy against throughput on reconfigurable logic (Su et al., ARC 2018) and accuracy
against precision for widened networks (WRPN, Mishra et al., ICLR 2018), drawn from
``results/fpga/<workload>.json`` and ``results/wrpn/<workload>.json`` (schemas in
``docs/figures.md``), which the FPGA and number-format work will write.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

import numpy as np
from matplotlib.ticker import NullLocator

from ..errors import SimulatorError
from . import style


def _points(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SimulatorError(f"{path}: cannot read JSON ({e})") from None
    if "points" not in doc or not doc["points"]:
        raise SimulatorError(f"{path}: missing or empty key 'points' (schema: docs/figures.md)")
    for i, p in enumerate(doc["points"]):
        missing = [k for k in keys if k not in p]
        if missing:
            raise SimulatorError(f"{path}: points[{i}]: missing key(s) {', '.join(missing)}")
    return doc


def data_for_throughput(path: Union[str, Path]) -> dict[str, Any]:
    """Su et al.: per (weight bits, activation bits) design point, top-1 (%) and throughput
    (inputs per second) at the device's resource budget."""
    doc = _points(Path(path), ("weight_bits", "act_bits", "top1", "throughput_fps"))
    pts = sorted(doc["points"], key=lambda p: p["throughput_fps"])
    return {"workload": doc.get("workload", Path(path).stem), "device": doc.get("device", ""),
            "labels": [p.get("label", f"w{p['weight_bits']}a{p['act_bits']}") for p in pts],
            "weight_bits": np.array([p["weight_bits"] for p in pts]),
            "act_bits": np.array([p["act_bits"] for p in pts]),
            "top1": np.array([100 * p["top1"] for p in pts]),
            "throughput_fps": np.array([p["throughput_fps"] for p in pts], dtype=float)}


def draw_throughput(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    with style.figure(height=2.6) as (fig, axes):
        ax = axes[0, 0]
        widths = sorted(set(data["weight_bits"].tolist()))
        for i, w in enumerate(widths):
            sel = data["weight_bits"] == w
            ax.scatter(data["throughput_fps"][sel], data["top1"][sel], color=style.series_colour(i),
                       marker=style.MARKERS[i % 8], s=16, label=f"{w}-bit weights")
        for x, y, label in zip(data["throughput_fps"], data["top1"], data["labels"]):
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel("throughput (inputs/s)")
        ax.set_ylabel("top-1 (%)")
        where = f" on {data['device']}" if data["device"] else ""
        ax.set_title(f"{data['workload']}{where}", loc="left")
        ax.legend(loc="best")
        return style.save(fig, out)


def data_for_width(path: Union[str, Path]) -> dict[str, Any]:
    """WRPN: top-1 (%) against bits, one curve per width multiplier (1.0 = the original network)."""
    doc = _points(Path(path), ("width", "bits", "top1"))
    curves: dict[float, list[tuple[float, float]]] = {}
    for p in doc["points"]:
        curves.setdefault(float(p["width"]), []).append((float(p["bits"]), 100 * float(p["top1"])))
    return {"workload": doc.get("workload", Path(path).stem),
            "float_top1": None if doc.get("float_top1") is None else 100 * float(doc["float_top1"]),
            "curves": {w: {"bits": np.array([b for b, _ in sorted(c)]), "top1": np.array([t for _, t in sorted(c)])}
                       for w, c in sorted(curves.items())}}


def draw_width(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    with style.figure(height=2.6) as (fig, axes):
        ax = axes[0, 0]
        for i, (w, c) in enumerate(data["curves"].items()):
            ax.plot(c["bits"], c["top1"], marker=style.MARKERS[i % 8], color=style.series_colour(i),
                    label=f"{w:g}× wide")
        if data["float_top1"] is not None:
            ax.axhline(data["float_top1"], color="black", linestyle="--", linewidth=0.8, label="float, 1× wide")
        ax.set_xscale("log", base=2)
        bits = sorted({b for c in data["curves"].values() for b in c["bits"].tolist()})
        ax.set_xticks(bits, [f"{b:g}" for b in bits])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("bits (weights and activations)")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(f"{data['workload']}: width against precision", loc="left")
        ax.legend(loc="lower right")
        return style.save(fig, out)
