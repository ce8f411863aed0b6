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


FPGA_REPORT = "fpga-*.json"     # what `python -m simulator fpga` writes into results/<workload>/
FLOAT_BITS = 32                  # how the fpga command names float32 in its bits list


def fpga_reports(root: Union[str, Path]) -> list[Path]:
    return sorted(Path(root).glob(f"*/{FPGA_REPORT}"))


def from_fpga_report(path: Union[str, Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The throughput (Su et al.) and width (WRPN) documents of one ``fpga`` command report: one
    point per (width, precision) design with its held-out top-1 and frames/s on the device."""
    doc = json.loads(Path(path).read_text())
    rows = [r for r in doc.get("rows", []) if r.get("test_top1") is not None]
    if not rows:
        raise SimulatorError(f"{path}: no rows with a test accuracy (was it run with --no-accuracy?)")
    name = doc.get("workload", {}).get("name", Path(path).parent.name)
    device = doc.get("device", {}).get("name", "")
    throughput = {"workload": name, "device": device, "points": [
        {"weight_bits": r["weight_bits"], "act_bits": r["act_bits"], "top1": r["test_top1"],
         "throughput_fps": r["frames_per_s"], "label": f"{r['precision']} {r['width']:g}×"} for r in rows]}
    width = {"workload": name, "points": [{"width": r["width"], "bits": r["weight_bits"], "top1": r["test_top1"]}
                                          for r in rows]}
    return throughput, width


def _points(path: Union[Path, dict], keys: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(path, dict):           # a document built in memory (``from_fpga_report``)
        doc, path = path, Path(path.get("workload", "document"))
    else:
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


def data_for_throughput(path: Union[str, Path, dict]) -> dict[str, Any]:
    """Su et al.: per (weight bits, activation bits) design point, top-1 (%) and throughput
    (inputs per second) at the device's resource budget."""
    doc = _points(path if isinstance(path, dict) else Path(path), ("weight_bits", "act_bits", "top1", "throughput_fps"))
    pts = sorted(doc["points"], key=lambda p: p["throughput_fps"])
    return {"workload": doc.get("workload") or Path(path).stem, "device": doc.get("device", ""),
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
        # label only the Pareto front (no point both faster and more accurate): the rest crowd
        front, best = [], -np.inf
        for i in np.lexsort((-data["top1"], -data["throughput_fps"])):   # fastest first, best first at ties
            if data["top1"][i] > best:
                front.append(i)
                best = data["top1"][i]
        front.sort(key=lambda i: data["throughput_fps"][i])
        ax.plot(data["throughput_fps"][front], data["top1"][front], "k--", linewidth=0.8, label="Pareto front")
        for i in front:
            ax.annotate(data["labels"][i], (data["throughput_fps"][i], data["top1"][i]), textcoords="offset points",
                        xytext=(-4, 4), fontsize=6, ha="right")
        ax.set_xscale("log")
        ax.set_xlabel("throughput (inputs/s)")
        ax.set_ylabel("top-1 (%)")
        where = f" on {data['device']}" if data["device"] else ""
        ax.set_title(f"{data['workload']}{where}", loc="left")
        ax.legend(loc="best")
        return style.save(fig, out)


def data_for_width(path: Union[str, Path, dict]) -> dict[str, Any]:
    """WRPN: top-1 (%) against bits, one curve per width multiplier (1.0 = the original network)."""
    doc = _points(path if isinstance(path, dict) else Path(path), ("width", "bits", "top1"))
    curves: dict[float, list[tuple[float, float]]] = {}
    for p in doc["points"]:
        curves.setdefault(float(p["width"]), []).append((float(p["bits"]), 100 * float(p["top1"])))
    return {"workload": doc.get("workload") or Path(path).stem,
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
