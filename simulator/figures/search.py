"""Figures of the precision-profile searches, drawn from the JSON files the searches write
(schemas in ``docs/figures.md``):

- figure 2: the per-layer profile each search method found (activations and weights);
- figure 3: accuracy against the precision of each layer swept alone, and uniform (Judd et al. 2015);
- figure 4: footprint reduction against accuracy for each method (Judd et al.'s bounded-memory view).

``results/search/<workload>/<method>.json`` holds one method's profiles; ``sweeps.json`` beside
them holds the sweep curves.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..errors import SimulatorError
from . import style

SWEEPS_FILE = "sweeps.json"
TENSORS = ("activations", "weights")
BITS_KEY = {"activations": "act_bits", "weights": "weight_bits"}    # per-layer keys of a profile


def _read(path: Path, required: Sequence[str]) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SimulatorError(f"{path}: cannot read JSON ({e})") from None
    missing = [k for k in required if k not in doc]
    if missing:
        raise SimulatorError(f"{path}: missing key(s) {', '.join(missing)} (schema: docs/figures.md)")
    return doc


def method_files(folder: Union[str, Path]) -> list[Path]:
    """The method files of one workload's search folder (every *.json but the sweeps)."""
    return sorted(p for p in Path(folder).glob("*.json") if p.name != SWEEPS_FILE)


SEARCH_REPORT = "search-*.json"      # what `python -m simulator search` writes into results/<workload>/


def search_reports(root: Union[str, Path]) -> dict[str, list[Path]]:
    """The search reports under ``root``: results/<workload>/search-<method>.json, per workload."""
    out: dict[str, list[Path]] = {}
    for p in sorted(Path(root).glob(f"*/{SEARCH_REPORT}")):
        out.setdefault(p.parent.name, []).append(p)
    return out


def _is_report(doc: dict[str, Any]) -> bool:
    return "float_test" in doc and all("precisions" in p for p in doc.get("profiles", []))


def _report_workload(doc: dict[str, Any]) -> str:
    """A report names its workload by file (``workloads/lenet5.yaml``): the figures use its stem."""
    w = str(doc["workload"])
    return Path(w).stem if w.endswith(".yaml") else w


def _from_report(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    """A search report (``SearchReport.as_dict``) in this module's schema: held-out (test) top-1,
    the footprint reduction the simulator reported, bits per layer."""
    profiles = []
    for i, p in enumerate(doc["profiles"]):
        if not p.get("test") or not (p.get("cost") or {}).get("rows"):
            raise SimulatorError(f"{path}: profiles[{i}]: no test accuracy or cost (rerun search without --no-cost)")
        profiles.append({
            "target": p["target"], "top1": p["test"]["top1"],
            "footprint_reduction_vs_fp32": p["cost"]["rows"][0]["footprint_reduction_vs_fp32"],
            "layers": [{"name": n, "act_bits": v["activations"]["bits"], "weight_bits": v["weights"]["bits"]}
                       for n, v in p["precisions"].items()]})
    return {"workload": _report_workload(doc), "method": doc["method"], "float_top1": doc["float_test"]["top1"],
            "profiles": profiles}


def sweeps_from_reports(paths: Sequence[Union[str, Path]]) -> Optional[dict[str, Any]]:
    """Figure 3's document built from the Judd et al. report's per-layer sweeps (integer and
    fraction bits, validation split) and the uniform report's table, or None without a Judd report."""
    docs = {d["method"]: d for d in (json.loads(Path(p).read_text()) for p in paths)}
    judd = docs.get("judd")
    sens = (judd or {}).get("details", {}).get("sensitivity")
    if not sens:
        return None
    layers = []
    for key, parts in sens.items():
        layer, tensor = key.rsplit(".", 1)
        for part, table in parts.items():
            if not isinstance(table, dict):        # e.g. range_integer_bits: not a sweep
                continue
            bits = sorted(table, key=int)
            layers.append({"layer": layer, "tensor": tensor, "part": part, "bits": [int(b) for b in bits],
                           "top1": [table[b] for b in bits]})
    out = {"workload": _report_workload(judd), "float_top1": judd["float_val"]["top1"], "layers": layers}
    table = docs.get("uniform", {}).get("details", {}).get("table")
    if table:
        bits = sorted(table, key=int)
        out["uniform"] = {"bits": [int(b) for b in bits], "top1": [table[b] for b in bits]}
    return out


def _methods(paths: Sequence[Union[str, Path]]) -> list[dict[str, Any]]:
    docs = []
    for p in paths:
        raw = _read(Path(p), ("workload", "method", "profiles"))
        doc = _from_report(raw, Path(p)) if _is_report(raw) else _read(Path(p), ("float_top1",))
        for i, prof in enumerate(doc["profiles"]):
            missing = [k for k in ("target", "top1", "footprint_reduction_vs_fp32", "layers") if k not in prof]
            if missing:
                raise SimulatorError(f"{p}: profiles[{i}]: missing key(s) {', '.join(missing)}")
        docs.append(doc)
    if not docs:
        raise SimulatorError("no search result files")
    return docs


def data_for_profiles(paths: Sequence[Union[str, Path]], target: Optional[float] = None) -> dict[str, Any]:
    """Figure 2: per method, the activation and weight bits of every layer at ``target`` (default:
    each method's highest target), layers in network order."""
    docs = _methods(paths)
    layers: list[str] = []
    methods: dict[str, dict[str, Any]] = {}
    for doc in docs:
        profs = doc["profiles"]
        chosen = [p for p in profs if target is None or abs(p["target"] - target) < 1e-9]
        if not chosen:
            continue
        prof = max(chosen, key=lambda p: p["target"])
        for layer in prof["layers"]:
            if layer["name"] not in layers:
                layers.append(layer["name"])
        by_name = {layer["name"]: layer for layer in prof["layers"]}
        methods[doc["method"]] = {"target": prof["target"], "by_name": by_name}
    out = {"workload": docs[0]["workload"], "layers": layers, "methods": {}}
    for m, v in methods.items():
        out["methods"][m] = {"target": v["target"], **{
            t: np.array([v["by_name"][n][BITS_KEY[t]] if n in v["by_name"] else np.nan for n in layers],
                        dtype=float) for t in TENSORS}}
    return out


def draw_profiles(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    x = np.arange(len(data["layers"]))
    with style.figure(height=3.4, nrows=2, sharex=True) as (fig, axes):
        for ax, t in zip(axes[:, 0], TENSORS):
            targets = {v["target"] for v in data["methods"].values()}
            for i, (m, v) in enumerate(data["methods"].items()):
                # one target for all: it goes into the title, the labels stay short enough to fit
                label = m if len(targets) == 1 else f"{m} ({v['target']:.0%} target)"
                ax.step(x, v[t], where="mid", color=style.series_colour(i), marker=style.MARKERS[i % 8],
                        markersize=3, label=label)
            ax.set_ylabel(f"{t} bits")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(t, loc="left")
        axes[-1, 0].set_xticks(x, data["layers"])
        style.rotate_ticks(axes[-1, 0], 45)
        axes[-1, 0].set_xlabel("layer")
        targets = sorted({v["target"] for v in data["methods"].values()})
        at = f" at {targets[0]:.0%} of float top-1" if len(targets) == 1 else ""
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center",
                   ncols=2 if len(data["methods"]) <= 4 else 1 + (len(data["methods"]) > 6),
                   fontsize=6, title=f"{data['workload']}: bits per layer{at}", title_fontsize=7)
        return style.save(fig, out)


def data_for_sweeps(path: Union[str, Path, dict]) -> dict[str, Any]:
    """Figure 3: relative top-1 (quantized / float) against bits for every layer's tensor swept
    alone, per (tensor, part) panel, and for the uniform profile. ``path`` may also be the document
    itself (``sweeps_from_reports``)."""
    doc = path if isinstance(path, dict) else _read(Path(path), ("workload", "float_top1", "layers"))
    ref = float(doc["float_top1"])
    panels: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for i, c in enumerate(doc["layers"]):
        missing = [k for k in ("layer", "tensor", "bits", "top1") if k not in c]
        if missing:
            raise SimulatorError(f"{path}: layers[{i}]: missing key(s) {', '.join(missing)}")
        key = c["tensor"] + ("" if c.get("part", "bits") == "bits" else f", {c['part']} bits")
        panels.setdefault(key, {})[c["layer"]] = {"bits": np.asarray(c["bits"], dtype=float),
                                                  "relative": np.asarray(c["top1"], dtype=float) / ref}
    uniform = doc.get("uniform")
    return {"workload": doc["workload"], "float_top1": ref, "panels": panels,
            "uniform": None if not uniform else {"bits": np.asarray(uniform["bits"], dtype=float),
                                                 "relative": np.asarray(uniform["top1"], dtype=float) / ref}}


MAX_LAYER_LEGEND = 8    # more layers than this get a colour bar instead of a legend entry each


def draw_sweeps(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    panels = list(data["panels"])
    cmap = matplotlib.colormaps["viridis"]    # ordered layers: a perceptually uniform, CVD-safe map
    with style.figure(height=0.9 + 1.5 * len(panels), nrows=len(panels), sharey=True) as (fig, axes):
        for ax, key in zip(axes[:, 0], panels):
            curves = data["panels"][key]
            n = len(curves)
            for i, (layer, c) in enumerate(curves.items()):
                ax.plot(c["bits"], 100 * c["relative"], color=cmap(i / max(1, n - 1)), linewidth=0.9,
                        label=layer if n <= MAX_LAYER_LEGEND else None)
            part_sweep = "," in key           # integer / fraction bits: the uniform curve is in total bits
            if data["uniform"] is not None and not part_sweep:
                ax.plot(data["uniform"]["bits"], 100 * data["uniform"]["relative"], "k--", linewidth=1.4,
                        label="uniform (all layers)")
            ax.axhline(99, color=style.GREY, linewidth=0.5, linestyle=":")
            ax.set_title(key, loc="left")
            ax.set_ylabel("top-1 (% of float)")
            ax.set_xlabel("bits" if not part_sweep else key.split(", ")[1])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if n > MAX_LAYER_LEGEND:
                bar = fig.colorbar(ScalarMappable(Normalize(1, n), cmap), ax=ax, pad=0.01, aspect=15)
                bar.set_label("layer (first to last)")
            ax.legend(ncols=2, loc="lower right", fontsize=6)
        fig.suptitle(f"{data['workload']}: each layer swept alone, the others at full precision", fontsize=8)
        return style.save(fig, out)


def data_for_tradeoff(paths: Sequence[Union[str, Path]]) -> dict[str, Any]:
    """Figure 4: per method, (relative top-1 %, footprint reduction vs fp32 %) of each profile,
    sorted by accuracy."""
    docs = _methods(paths)
    methods = {}
    for doc in docs:
        pts = sorted((100 * p["top1"] / doc["float_top1"], 100 * p["footprint_reduction_vs_fp32"], p["target"])
                     for p in doc["profiles"])
        methods[doc["method"]] = {"relative_top1": np.array([p[0] for p in pts]),
                                  "footprint_reduction": np.array([p[1] for p in pts]),
                                  "targets": [p[2] for p in pts]}
    return {"workload": docs[0]["workload"], "methods": methods}


def draw_tradeoff(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    with style.figure(height=2.6) as (fig, axes):
        ax = axes[0, 0]
        for i, (m, v) in enumerate(data["methods"].items()):
            ax.plot(v["relative_top1"], v["footprint_reduction"], marker=style.MARKERS[i % 8],
                    color=style.series_colour(i), label=m)
        ax.set_xlabel("top-1 (% of float)")
        ax.set_ylabel("footprint reduction vs fp32 (%)")
        ax.set_title(f"{data['workload']}: better is up and to the right", loc="left")
        ax.legend(title="search method", loc="best")
        return style.save(fig, out)
