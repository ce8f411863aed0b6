"""``python -m simulator fpga``: width x precision on a FINN-style FPGA engine (Su et al., ARC 2018),
with its Python API, result files and figure.

``fpga_study(workload, device, widths, bits)`` -> per (width, weight bits, activation bits):
accuracy after WRPN training (``formats_study.trained_point``, cached under
``results/<workload>/qat/``), the FPGA engine's throughput and the template's energy; the Pareto
front of accuracy against frames/s. ``write_fpga`` writes ``results/<workload>/fpga-<device>.csv``
+ ``.json`` and ``plot_fpga`` draws the figure from the JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from tqdm import tqdm

from .errors import SimulatorError
from .format_costs import TEMPLATE_MEMORY
from .formats_study import (FLOAT_BITS, INPUT_BITS, TrainedPoint, _atomic_write_text, _costs, _digits_ready, _isnan,
                            _layers_of, _load, _point_precisions, _provenance, _write_rows, trained_point)
from .fpga import C0_LUTS_PER_LAYER, C1_LUT_FACTOR, FpgaDevice, float_lane_costs, fold, load_device

DEFAULT_WIDTHS = (0.5, 1.0, 2.0, 4.0)
DEFAULT_BITS = (1, 2, 4, 8, 32)
DEFAULT_TARGET = 0.99


# ---------------------------------------------------------------------------------------- FPGA width x precision

@dataclass
class FpgaStudy:
    workload: str
    device: FpgaDevice
    rows: list[dict[str, Any]]
    config: dict[str, Any]
    seconds: float = 0.0


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """Which (accuracy, throughput) points no other point beats on both (ties kept); NaN never is."""
    flags = []
    for i, (a, t) in enumerate(points):
        if _isnan(a) or _isnan(t):
            flags.append(False)
            continue
        dominated = any((a2 >= a and t2 >= t) and (a2 > a or t2 > t)
                        for j, (a2, t2) in enumerate(points) if j != i and not (_isnan(a2) or _isnan(t2)))
        flags.append(not dominated)
    return flags


def best_at_target(rows: list[dict[str, Any]], target: float) -> list[dict[str, Any]]:
    """Per precision, the fastest point whose test top-1 reaches ``target``: the answer to "at 99%
    accuracy, which precision gives the most frames per second?"."""
    best: dict[str, dict] = {}
    for r in rows:
        if _isnan(r["test_top1"]) or r["test_top1"] < target - 1e-9:
            continue
        key = r["precision"]
        if key not in best or r["frames_per_s"] > best[key]["frames_per_s"]:
            best[key] = r
    return sorted(({"precision": k, "width": v["width"], "test_top1": v["test_top1"],
                    "frames_per_s": v["frames_per_s"], "energy_uj": v["energy_uj"]} for k, v in best.items()),
                  key=lambda d: -d["frames_per_s"])


def fpga_study(workload, device: Union[str, FpgaDevice] = "zynq-7020", widths: Sequence[float] = DEFAULT_WIDTHS,
               bits: Sequence[int] = DEFAULT_BITS, act_bits: Optional[Sequence[int]] = None,
               seeds: Sequence[int] = (0,), epochs: Optional[int] = None, accuracy: bool = True,
               cache_dir: Union[str, Path, None] = None, target: float = DEFAULT_TARGET,
               memory=TEMPLATE_MEMORY, progress: bool = True,
               trainer: Optional[Callable[..., TrainedPoint]] = None) -> FpgaStudy:
    """Accuracy, FPGA throughput and template energy at every (width, weight bits, activation bits).

    ``bits`` are the weight widths; ``act_bits`` the activation widths (default: the same as the
    weights, one point per width); 32 means float32. Accuracy is the mean test top-1 over ``seeds``
    of WRPN-trained networks (``trainer``, default ``trained_point``), cached under ``cache_dir``."""
    from .workload import Workload, load_workload
    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    dev = device if isinstance(device, FpgaDevice) else load_device(device)
    for w in widths:
        if not w > 0:
            raise SimulatorError(f"--widths: {w!r} is not a positive width multiplier")
    for b in [*bits, *(act_bits or [])]:
        if b < 1 or (b > 16 and b != FLOAT_BITS):
            raise SimulatorError(f"--bits: {b!r} is not a width from 1 to 16, or 32 (float32)")
    pairs = [(b, b) for b in bits] if act_bits is None else [(a, w) for w in bits for a in act_bits]
    for a, w in pairs:
        if (a == FLOAT_BITS) != (w == FLOAT_BITS):
            raise SimulatorError(f"--bits: float32 (32) goes with float32 activations, not {a}-bit ones")
        if a != w:
            raise SimulatorError("--act-bits: WRPN training takes one width for weights and activations; "
                                 "give --bits only")
    why_not = _digits_ready(wl) if accuracy else "accuracy not requested"
    cache = Path(cache_dir) if cache_dir is not None else Path(wl.results_dir) / wl.name / "qat"
    train = trainer or trained_point
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    jobs = [(w, a, b) for w in widths for a, b in pairs]
    bar = tqdm(jobs, desc=f"fpga {dev.name}", unit="point", disable=None if progress else True)
    for width, a, b in bar:
        bar.set_postfix_str(f"width {width:g}, {'float32' if b == FLOAT_BITS else f'{a}/{b} bits'}")
        layers = _layers_of(wl, width)
        pr = _point_precisions(layers, a, b)
        r = fold(layers, pr, dev)
        cost = _costs(layers, pr, memory)
        accs, seconds, errors, cached = [], 0.0, [], 0
        if why_not is None:
            for seed in seeds:
                tp = train(wl.model.name, width, None if b == FLOAT_BITS else b, seed, epochs, cache)
                accs.append(tp.test_top1)
                seconds += tp.train_seconds
                cached += tp.cached
                if tp.error:
                    errors.append(tp.error)
        top1 = sum(accs) / len(accs) if accs else math.nan
        rows.append({"width": width, "weight_bits": b, "act_bits": a,
                     "precision": "float32" if b == FLOAT_BITS else f"w{b}a{a}",
                     "test_top1": top1, "seeds": len(accs), "train_seconds": round(seconds, 2),
                     "cached_seeds": cached, "train_error": "; ".join(dict.fromkeys(errors)),
                     "macs": r.macs, "params": sum(l.weight_count for l in layers),
                     "frames_per_s": r.frames_per_s, "gops": r.ops_per_s / 1e9,
                     "compute_frames_per_s": r.compute_frames_per_s, "memory_frames_per_s": r.memory_frames_per_s,
                     "bound": r.bound, "interval_cycles": r.interval_cycles,
                     "slowest_layer": max(r.layers, key=lambda x: x.cycles).layer,
                     "luts": r.luts, "dsps": r.dsps, "lut_util": r.luts / dev.luts, "dsp_util": r.dsps / dev.dsps,
                     "weight_bits_off_chip": r.weight_bits_off_chip, "energy_uj": cost["energy_uj"]["total"],
                     "footprint_bits": cost["footprint_weight_bits"] + cost["footprint_act_bits"]})
    front = pareto_front([(r["test_top1"], r["frames_per_s"]) for r in rows])
    for r, f in zip(rows, front):
        r["pareto"] = f
    config = {**_provenance(), "workload_file": wl.source_path, "workload": wl.model_dump(mode="json"),
              "device": asdict(dev), "widths": list(widths), "bits": list(bits),
              "act_bits": None if act_bits is None else list(act_bits), "seeds": list(seeds), "epochs": epochs,
              "accuracy": "mean test top-1 over seeds, WRPN quantization-aware training (simulator.search.wrpn)"
              if why_not is None else f"not measured: {why_not}",
              "input_bits": INPUT_BITS, "target": target, "best_at_target": best_at_target(rows, target),
              "finn_r": {"c0_luts_per_layer": C0_LUTS_PER_LAYER, "c1": C1_LUT_FACTOR,
                         "source": "Blott et al., FINN-R, ACM TRETS 2018; FINN compiler MVAU lut_estimation"},
              "float_lanes": {k: asdict(v) for k, v in float_lane_costs().items()},
              "memory": memory.model_dump(mode="json"), "cache_dir": str(cache)}
    return FpgaStudy(wl.name, dev, rows, config, time.perf_counter() - t0)


def write_fpga(study: FpgaStudy, out_dir: Union[str, Path]) -> tuple[Path, Path]:
    d = Path(out_dir)
    stem = f"fpga-{study.device.name}"
    csv_path = _write_rows(d / f"{stem}.csv", study.rows)
    json_path = _atomic_write_text(d / f"{stem}.json", json.dumps(
        {**study.config, "seconds": round(study.seconds, 2), "rows": study.rows}, indent=2, default=str) + "\n")
    return csv_path, json_path


def plot_fpga(json_path: Union[str, Path], out: Union[str, Path, None] = None) -> list[Path]:
    """Su et al.'s comparison from ``fpga-<device>.json``: test accuracy against frames/s, one colour
    per precision, one marker per width, the Pareto front joined. Writes ``.png`` and ``.pdf`` beside it."""
    from .figures.style import COLUMN_IN, MARKERS, figure, save, series_colour
    doc = json.loads(Path(json_path).read_text())
    rows = [r for r in doc["rows"] if not _isnan(r["test_top1"]) and r["test_top1"] is not None]
    precisions = list(dict.fromkeys(r["precision"] for r in doc["rows"]))
    widths = list(dict.fromkeys(r["width"] for r in doc["rows"]))
    with figure(COLUMN_IN + 0.6, 2.8) as (fig, axes):
        ax = axes[0][0]
        for r in rows:
            ax.scatter(r["frames_per_s"], 100 * r["test_top1"], color=series_colour(precisions.index(r["precision"])),
                       marker=MARKERS[widths.index(r["width"]) % len(MARKERS)], s=22, zorder=3,
                       edgecolors="black" if r["pareto"] else "none", linewidths=0.6)
        front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["frames_per_s"])
        ax.plot([r["frames_per_s"] for r in front], [100 * r["test_top1"] for r in front], color="black",
                linewidth=0.8, linestyle="--", zorder=2, label="Pareto front")
        if doc.get("target"):
            ax.axhline(100 * doc["target"], color="grey", linewidth=0.6, linestyle=":", zorder=1)
        ax.set_xscale("log")
        ax.set_xlabel(f"frames/s on {doc['device']['name']} ({doc['device']['clock_mhz']:g} MHz)")
        ax.set_ylabel("test top-1 (%)")
        lo = min((100 * r["test_top1"] for r in rows), default=90.0)
        ax.set_ylim(max(lo - 1.0, 0.0), 100.3)
        from matplotlib.lines import Line2D
        measured = {r["precision"] for r in rows}
        handles = [Line2D([], [], color=series_colour(i), marker="o", linestyle="",
                          label=p.replace("float32", "fp32") + ("" if p in measured else " (no accuracy)"))
                   for i, p in enumerate(precisions)]
        handles += [Line2D([], [], color="grey", marker=MARKERS[i % len(MARKERS)], linestyle="", label=f"{w:g}x wide")
                    for i, w in enumerate(widths)]
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=0.8, label="Pareto front"))
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=6)
        ax.set_title(f"{doc['workload']['name']}: accuracy vs throughput (WRPN widths x precision)")
        return save(fig, out or Path(json_path).with_suffix(""))


# ---------------------------------------------------------------------------------------- command line

def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SimulatorError(f"{flag}: '{text}' is not a comma-separated list of numbers") from None


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SimulatorError(f"{flag}: '{text}' is not a comma-separated list of integers") from None


def cmd_fpga(args: argparse.Namespace) -> int:
    from .table import render
    wl = _load(args.workload)
    t0 = time.perf_counter()
    study = fpga_study(wl, args.device, _floats(args.widths, "--widths"), _ints(args.bits, "--bits"),
                       _ints(args.act_bits, "--act-bits") if args.act_bits else None,
                       seeds=_ints(args.seeds, "--seeds"), epochs=args.epochs, accuracy=not args.no_accuracy,
                       target=args.target)
    out = Path(args.out) if args.out else Path(wl.results_dir) / wl.name
    csv_path, json_path = write_fpga(study, out)
    figs = plot_fpga(json_path) if not args.no_accuracy else []
    cols = ["width", "precision", "test_top1", "macs", "frames_per_s", "gops", "bound", "slowest_layer",
            "lut_util", "dsp_util", "energy_uj", "pareto"]
    rows = [{**r, "test_top1": 100 * r["test_top1"], "lut_util": 100 * r["lut_util"], "dsp_util": 100 * r["dsp_util"],
             "pareto": "*" if r["pareto"] else ""} for r in study.rows]
    print(f"== {wl.name} on {study.device.name}: width x precision ({study.config['accuracy']}) ==")
    print(render(rows, cols, ["width", "precision", "top-1 %", "MACs", "frames/s", "GOPS", "bound", "slowest layer",
                              "LUT %", "DSP %", "energy uJ", "Pareto"]))
    best = study.config["best_at_target"]
    if best:
        print(f"\nat test top-1 >= {100 * args.target:g}%: " + "; ".join(
            f"{b['precision']} {b['frames_per_s']:,.0f} frames/s (width {b['width']:g})" for b in best))
    elif not args.no_accuracy:
        print(f"\nno point reaches test top-1 {100 * args.target:g}%")
    fig_s = f", {figs[0]} (+ .pdf)" if figs else ""
    print(f"wrote {csv_path}, {json_path}{fig_s} in {time.perf_counter() - t0:.1f} s")
    return 0
