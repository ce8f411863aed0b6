"""``python -m simulator formats`` and ``python -m simulator fpga``: number formats on the core's
template accelerator (Hashemi et al., DATE 2017) and width x precision on a FINN-style FPGA engine
(Su et al., ARC 2018), with their Python API, result files and figures.

* ``formats_study(workload, points)`` -> per format point: accuracy (the trained network through the
  one quantizer; WRPN points through WRPN quantization-aware training), energy, footprint and area,
  normalised to float32; ``write_formats`` writes ``results/<workload>/formats.csv`` + ``.json`` and
  ``plot_formats`` draws the figure from the JSON.
* ``fpga_study(workload, device, widths, bits)`` -> per (width, weight bits, activation bits):
  accuracy after WRPN training (``simulator.search.wrpn.train_wrpn``, cached under
  ``results/<workload>/qat/``), the FPGA engine's throughput and the template's energy; the Pareto
  front of accuracy against frames/s; ``write_fpga`` and ``plot_fpga`` as above.

The lead wires ``add_parser`` into ``simulator/cli.py``; it registers both subcommands.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from tqdm import tqdm

from . import __version__
from .errors import SimulatorError
from .formats import (AREA_PARTS, DEFAULT_POINTS, ENERGY_PARTS, TEMPLATE, TEMPLATE_MEMORY, FormatPoint,
                      format_point, layer_costs, load_cost_table, precision, template_area)
from .fpga import C0_LUTS_PER_LAYER, C1_LUT_FACTOR, FpgaDevice, float_lane_costs, fold, load_device
from .layers import LayerSpec, shapes_of
from .quantize import LayerPrecision, TensorPrecision

FLOAT_BITS = 32                 # "32" in a bits list means float32
INPUT_BITS = 8                  # the image entering the first layer (WRPN leaves it unquantized; FINN takes 8 bits)
DEFAULT_WIDTHS = (0.5, 1.0, 2.0, 4.0)
DEFAULT_BITS = (1, 2, 4, 8, 32)
DEFAULT_TARGET = 0.99


# ---------------------------------------------------------------------------------------- shared pieces

def _atomic_write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    cols = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    return _atomic_write_text(path, buf.getvalue())


def _provenance() -> dict[str, Any]:
    import numpy
    import torch
    return {"tool": "precision-sim", "tool_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
            "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__}}


def _layers_of(workload, width: Optional[float] = None) -> list[LayerSpec]:
    """The workload's compute layers (at another ``width`` when given), from a structure-only model."""
    from .models import ZOO, build_model
    spec = workload.model
    if spec.name not in ZOO:
        raise SimulatorError(f"{workload.source_path}: model.name: unknown model '{spec.name}'")
    info = ZOO[spec.name]
    size = workload.input.size or info.image_size
    model = build_model(spec.name, num_classes=spec.num_classes, width=spec.width if width is None else width,
                        seed=spec.seed, structure_only=True)
    return shapes_of(model, (info.in_channels, size, size))


def _digits_ready(workload) -> Optional[str]:
    """None when accuracy can be measured, else why not."""
    if workload.input.source != "digits":
        return f"input.source is '{workload.input.source}', not 'digits'"
    if not workload.model.weights:
        return "model.weights is not set (no trained network)"
    return None


def _costs(layers: list[LayerSpec], precisions: dict[str, LayerPrecision], memory) -> dict[str, Any]:
    """Energy parts (uJ), footprint (bits) and cycles of one configuration on the template."""
    per_layer = layer_costs(layers, precisions, mem=memory)
    energy = {k: sum(c.energy_pj[k] for c in per_layer) / 1e6 for k in (*ENERGY_PARTS, "total")}
    return {"energy_uj": energy,
            "footprint_weight_bits": sum(c.footprint_weight_bits for c in per_layer),
            "footprint_act_bits": sum(c.footprint_act_bits for c in per_layer),
            "cycles": sum(c.cycles for c in per_layer), "stall_cycles": sum(c.stall_cycles for c in per_layer),
            "dram_bits": sum(c.dram_bits for c in per_layer), "unit": per_layer[0].unit if per_layer else ""}


# ---------------------------------------------------------------------------------------- WRPN training (cached)

@dataclass(frozen=True)
class TrainedPoint:
    """Accuracy of one network trained at (width, bits) by WRPN's quantization-aware training."""

    model: str
    width: float
    bits: Optional[int]          # None: float32 training
    seed: int
    epochs: int
    val_top1: float
    test_top1: float
    train_seconds: float
    cached: bool = False
    error: str = ""


def _cache_path(cache_dir: Path, model: str, width: float, bits: Optional[int], seed: int, epochs: int) -> Path:
    b = "float32" if bits is None else f"wrpn{bits}"
    return cache_dir / f"{model}-w{width:g}-{b}-s{seed}-e{epochs}.json"


def trained_point(model: str, width: float, bits: Optional[int], seed: int = 0, epochs: Optional[int] = None,
                  cache_dir: Union[str, Path, None] = None) -> TrainedPoint:
    """Train (or reuse from ``cache_dir``) ``model`` at ``width`` with WRPN at ``bits`` (None: float).

    Uses ``simulator.search.wrpn.train_wrpn`` (which trains with ``simulator.train.fit``): the one
    training loop. A point the training function refuses is returned with ``error`` set and NaN accuracy."""
    from .search.wrpn import train_wrpn
    from .train import RECIPES, Recipe, accuracy, digits_batch
    base = RECIPES.get(model, Recipe())
    recipe = Recipe(**{**vars(base), "seed": seed, **({"epochs": epochs} if epochs else {})})
    path = _cache_path(Path(cache_dir), model, width, bits, seed, recipe.epochs) if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            return TrainedPoint(**{**json.loads(path.read_text()), "cached": True})
        except (ValueError, TypeError):
            pass                      # a damaged cache entry is retrained and rewritten
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)         # as simulator.train: one thread gives bit-identical weights on a machine
    try:
        net, seconds = train_wrpn(model, width, bits, recipe)
    except ValueError as e:          # e.g. a width the training function does not support
        return TrainedPoint(model, width, bits, seed, recipe.epochs, math.nan, math.nan, 0.0, False, str(e))
    finally:
        torch.set_num_threads(threads)
    point = TrainedPoint(model, width, bits, seed, recipe.epochs, accuracy(net, digits_batch("val")),
                         accuracy(net, digits_batch("test")), round(seconds, 2))
    if path is not None:
        d = asdict(point)
        d.pop("cached")
        _atomic_write_text(path, json.dumps(d, indent=2) + "\n")
    return point


# ---------------------------------------------------------------------------------------- formats study

@dataclass
class FormatsResult:
    workload: str
    rows: list[dict[str, Any]]
    config: dict[str, Any]
    seconds: float = 0.0


def _post_training_accuracy(workload, points: list[FormatPoint], progress: bool) -> dict[str, float]:
    """Test top-1 of each point's profile on the workload's trained network (formats observed on val)."""
    from .accuracy import Evaluator, labelled_split
    from .export import build_network
    from .layers import compute_layers
    model = build_network(workload).model
    test, val = labelled_split(workload, "test"), labelled_split(workload, "val")
    names = [n for n, _ in compute_layers(model)]
    out = {}
    for p in tqdm(points, desc="accuracy", unit="format", disable=None if progress else True, leave=False):
        # a fresh evaluator per point: its cache key is (bits, frac, signed) and would not tell formats apart
        ev = Evaluator(model, test, val)
        out["float"] = ev.float_top1
        out[p.name] = ev(p.precisions(names)).top1
    return out


def formats_study(workload, points: Sequence[str] = DEFAULT_POINTS, memory=TEMPLATE_MEMORY,
                  accuracy: bool = True, seed: int = 0, epochs: Optional[int] = None,
                  cache_dir: Union[str, Path, None] = None, progress: bool = True) -> FormatsResult:
    """Accuracy, energy, footprint and area of ``workload``'s network at each format point.

    Every layer takes the point's formats. Accuracy: fixed, float, powers-of-two, binary and ternary
    points quantize the trained network after training (test split, ranges observed on val); WRPN
    points are trained from scratch by WRPN's quantization-aware training at width 1."""
    from .workload import Workload, load_workload
    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    t0 = time.perf_counter()
    parsed = [format_point(p) for p in points]
    if "float32" not in [p.name for p in parsed]:
        parsed.insert(0, format_point("float32"))          # the reference every column is normalised to
    layers = _layers_of(wl)
    names = [l.name for l in layers]
    table = load_cost_table()
    why_not = _digits_ready(wl) if accuracy else "accuracy not requested"
    acc: dict[str, float] = {}
    if why_not is None:
        acc = _post_training_accuracy(wl, [p for p in parsed if p.activations.format != "wrpn"], progress)
        cache = Path(cache_dir) if cache_dir is not None else Path(wl.results_dir) / wl.name / "qat"
        for p in parsed:
            if p.activations.format == "wrpn":
                if p.activations.bits != p.weights.bits:
                    raise SimulatorError(f"format point '{p.name}': WRPN training takes one width for both tensors")
                acc[p.name] = trained_point(wl.model.name, 1.0, p.weights.bits, seed, epochs, cache).test_top1
    rows = []
    for p in tqdm(parsed, desc="formats", unit="format", disable=None if progress else True, leave=False):
        # WRPN points cost what WRPN trains: the image enters the first layer unquantized (INPUT_BITS)
        pr = (_point_precisions(layers, p.activations.bits, p.weights.bits) if p.activations.format == "wrpn"
              else p.precisions(names))
        c = _costs(layers, pr, memory)
        area = template_area(pr, table, mem=memory)
        rows.append({"format": p.name, "activations": p.describe().split()[0][2:],
                     "weights": p.describe().split()[1][2:], "unit": c["unit"],
                     "top1": acc.get(p.name, math.nan),
                     "energy_uj": c["energy_uj"]["total"],
                     **{f"energy_{k}_uj": c["energy_uj"][k] for k in ENERGY_PARTS},
                     "footprint_bits": c["footprint_weight_bits"] + c["footprint_act_bits"],
                     "footprint_weight_bits": c["footprint_weight_bits"],
                     "footprint_act_bits": c["footprint_act_bits"],
                     "area_mm2": area["total"], **{f"area_{k}_mm2": area[k] for k in AREA_PARTS},
                     "cycles": c["cycles"], "stall_cycles": c["stall_cycles"], "dram_bits": c["dram_bits"]})
    ref = next(r for r in rows if r["format"] == "float32")
    for r in rows:
        for k in ("energy_uj", "footprint_bits", "area_mm2"):
            r[f"{k.rsplit('_', 1)[0]}_vs_fp32"] = r[k] / ref[k] if ref[k] else math.nan
    config = {**_provenance(), "workload_file": wl.source_path, "workload": wl.model_dump(mode="json"),
              "points": {p.name: {"activations": p.activations.as_dict() | {"format": p.activations.format},
                                  "weights": p.weights.as_dict() | {"format": p.weights.format}} for p in parsed},
              "accuracy": "test top-1" if why_not is None else f"not measured: {why_not}",
              "float_top1": acc.get("float"),
              "template": TEMPLATE.model_dump(mode="json"), "memory": memory.model_dump(mode="json"),
              "cost_table": {k: [{"measure": m, "pJ": e, "um2": a, "source": s} for m, e, a, s in v]
                             for k, v in table.points.items()},
              "shift_stage_factor": {"value": table.shift_stage_factor, "source": table.shift_source},
              "sram_um2_per_bit": {"value": table.sram_um2_per_bit, "source": table.sram_source},
              "seed": seed, "epochs": epochs}
    return FormatsResult(wl.name, rows, config, time.perf_counter() - t0)


def write_formats(result: FormatsResult, out_dir: Union[str, Path]) -> tuple[Path, Path]:
    d = Path(out_dir)
    csv_path = _write_rows(d / "formats.csv", result.rows)
    json_path = _atomic_write_text(d / "formats.json", json.dumps(
        {**result.config, "seconds": round(result.seconds, 2), "rows": result.rows}, indent=2, default=str) + "\n")
    return csv_path, json_path


def plot_formats(json_path: Union[str, Path], out: Union[str, Path, None] = None) -> list[Path]:
    """Hashemi et al.'s comparison from ``formats.json``: accuracy, energy (by part), footprint and
    area (by part), each normalised to float32. Writes ``formats.png`` and ``.pdf`` beside it."""
    from .figures.style import WIDE_IN, figure, rotate_ticks, save, series_colour
    doc = json.loads(Path(json_path).read_text())
    rows = doc["rows"]
    names = [r["format"] for r in rows]
    x = list(range(len(rows)))
    with figure(WIDE_IN, 2.5, 1, 4) as (fig, axes):
        ax = axes[0][0]
        top1 = [100 * r["top1"] if r["top1"] is not None and not _isnan(r["top1"]) else 0.0 for r in rows]
        ax.bar(x, top1, color=series_colour(0))
        ax.set_ylim(min([t for t in top1 if t > 0] + [100]) - 5 if any(top1) else 0, 100)
        ax.set_ylabel("test top-1 (%)")
        ax.set_title("accuracy")
        groups = {"compute": ("compute_product", "compute_accumulate"), "buffers": ("act_buffer", "weight_buffer",
                  "out_buffer"), "DRAM": ("dram",), "leakage": ("leakage",)}
        ax = axes[0][1]
        ref = next(r for r in rows if r["format"] == "float32")
        bottom = [0.0] * len(rows)
        for i, (label, keys) in enumerate(groups.items()):
            h = [sum(r[f"energy_{k}_uj"] for k in keys) / ref["energy_uj"] for r in rows]
            ax.bar(x, h, bottom=bottom, color=series_colour(i), label=label)
            bottom = [b + v for b, v in zip(bottom, h)]
        ax.set_ylabel("energy / float32")
        ax.set_title("energy per input")
        ax.set_ylim(0, 1.5)
        ax.legend(loc="upper right", ncol=2, columnspacing=0.8, handlelength=1.0)
        ax = axes[0][2]
        ax.bar(x, [r["footprint_vs_fp32"] for r in rows], color=series_colour(2))
        ax.set_ylabel("footprint / float32")
        ax.set_title("weights + activations")
        ax = axes[0][3]
        bottom = [0.0] * len(rows)
        for i, (label, key) in enumerate((("MAC lanes", ("product", "accumulate")), ("buffers", ("buffers",)))):
            h = [sum(r[f"area_{k}_mm2"] for k in key) / ref["area_mm2"] for r in rows]
            ax.bar(x, h, bottom=bottom, color=series_colour(i + 4), label=label)
            bottom = [b + v for b, v in zip(bottom, h)]
        ax.set_ylabel("area / float32")
        ax.set_title("area")
        ax.set_ylim(0, 1.5)
        ax.legend(loc="upper right", ncol=2, columnspacing=0.8, handlelength=1.0)
        for a in axes[0]:
            a.set_xticks(x, names)
            rotate_ticks(a, 60)
        fig.suptitle(f"{doc['workload']['name']}: number formats on the template accelerator "
                     f"(45 nm, {doc['memory']['dram']})", fontsize=8)
        return save(fig, out or Path(json_path).with_suffix(""))


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


# ---------------------------------------------------------------------------------------- FPGA width x precision

@dataclass
class FpgaStudy:
    workload: str
    device: FpgaDevice
    rows: list[dict[str, Any]]
    config: dict[str, Any]
    seconds: float = 0.0


def _point_precisions(layers: list[LayerSpec], a_bits: int, w_bits: int) -> dict[str, LayerPrecision]:
    """The formats a WRPN network at (a_bits, w_bits) computes in: WRPN k-bit tensors (float32 at
    32), the image entering the first layer at ``INPUT_BITS`` fixed point (WRPN leaves it unquantized)."""
    def fmt(bits: int) -> TensorPrecision:
        return precision("float32") if bits == FLOAT_BITS else precision("wrpn", bits)
    out = {}
    for i, l in enumerate(layers):
        act = fmt(a_bits) if i else (precision("float32") if a_bits == FLOAT_BITS else precision("fixed", INPUT_BITS))
        out[l.name] = LayerPrecision(act, fmt(w_bits))
    return out


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


def _load(path: str):
    from .workload import load_workload
    return load_workload(path)


def cmd_formats(args: argparse.Namespace) -> int:
    from .table import render
    from .memory import DRAM_PRESETS
    wl = _load(args.workload)
    memory = TEMPLATE_MEMORY if args.dram == TEMPLATE_MEMORY.dram else \
        TEMPLATE_MEMORY.model_copy(update={"name": args.dram, "dram": args.dram})
    if not memory.on_chip and memory.dram not in DRAM_PRESETS:
        raise SimulatorError(f"--dram: unknown preset '{args.dram}'; valid: {', '.join(DRAM_PRESETS)}, none")
    if memory.on_chip:
        memory = memory.model_copy(update={"activation_buffer_kib": None, "weight_buffer_kib": None})
    t0 = time.perf_counter()
    points = [p.strip() for p in args.formats.split(",") if p.strip()]
    res = formats_study(wl, points, memory, accuracy=not args.no_accuracy, seed=args.seed, epochs=args.epochs)
    out = Path(args.out) if args.out else Path(wl.results_dir) / wl.name
    csv_path, json_path = write_formats(res, out)
    figs = plot_formats(json_path)
    cols = ["format", "activations", "weights", "unit", "top1", "energy_uj", "energy_vs_fp32", "footprint_bits",
            "footprint_vs_fp32", "area_mm2", "area_vs_fp32"]
    rows = [{**r, "top1": 100 * r["top1"], "footprint_bits": r["footprint_bits"] / 8192} for r in res.rows]
    print(f"== {wl.name}: number formats on the template accelerator ({memory.dram}); "
          f"{res.config['accuracy']} ==")
    print(render(rows, cols, ["format", "activations", "weights", "MAC unit", "top-1 %", "energy uJ", "x fp32",
                              "footprint KiB", "x fp32", "area mm2", "x fp32"]))
    print(f"\nwrote {csv_path}, {json_path} and {figs[0]} (+ .pdf) in {time.perf_counter() - t0:.1f} s")
    return 0


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


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``formats`` and ``fpga``; each sets ``func`` to its command."""
    f = subparsers.add_parser(
        "formats", help="accuracy, energy, footprint and area per number format (Hashemi et al., DATE 2017)",
        description="Every layer of the workload's network at each number format, on the core's bit-parallel "
                    "template (same buffers, same DRAM model), normalised to float32. Writes "
                    "<results>/<workload>/formats.csv, .json and .png/.pdf.")
    f.add_argument("workload", help="workload YAML file (accuracy needs the digits input and trained weights)")
    f.add_argument("--formats", default=",".join(DEFAULT_POINTS),
                   help="comma-separated format points: float32, float16, bfloat16, fixedN, pow2-N, binary, "
                        "binary-filter, ternary, ternary-filter, wrpn-N (default: %(default)s)")
    f.add_argument("--dram", default=TEMPLATE_MEMORY.dram, help="DRAM preset behind the buffers, or none "
                                                                "(default: %(default)s)")
    f.add_argument("--no-accuracy", action="store_true", help="costs only")
    f.add_argument("--seed", type=int, default=0, help="seed of WRPN training for wrpn-N points")
    f.add_argument("--epochs", type=int, help="override the training recipe's epochs (wrpn-N points)")
    f.add_argument("--out", help="output folder (default: <results_dir>/<workload name>)")
    f.set_defaults(func=cmd_formats)

    g = subparsers.add_parser(
        "fpga", help="accuracy vs throughput of widened reduced-precision networks on an FPGA (Su et al., ARC 2018)",
        description="For each width multiplier and precision: WRPN quantization-aware training (cached under "
                    "<results>/<workload>/qat/), the FINN-style dataflow engine's throughput on the device and "
                    "the template's energy; the Pareto front of accuracy against frames/s. Writes "
                    "<results>/<workload>/fpga-<device>.csv, .json and .png/.pdf.")
    g.add_argument("workload", help="workload YAML file (accuracy needs the digits input)")
    g.add_argument("--device", default="zynq-7020", help="FPGA preset (zynq-7020, ku115, u250) or a device YAML file "
                                                         "(default: %(default)s)")
    g.add_argument("--widths", default=",".join(f"{w:g}" for w in DEFAULT_WIDTHS),
                   help="width multipliers (default: %(default)s)")
    g.add_argument("--bits", default=",".join(map(str, DEFAULT_BITS)),
                   help="weight = activation bits; 32 is float32 (default: %(default)s)")
    g.add_argument("--act-bits", help=argparse.SUPPRESS)
    g.add_argument("--seeds", default="0", help="training seeds averaged per point (default: %(default)s)")
    g.add_argument("--epochs", type=int, help="override the training recipe's epochs")
    g.add_argument("--target", type=float, default=DEFAULT_TARGET,
                   help="accuracy target of the summary line (default: %(default)s)")
    g.add_argument("--no-accuracy", action="store_true", help="throughput and energy only (no training)")
    g.add_argument("--out", help="output folder (default: <results_dir>/<workload name>)")
    g.set_defaults(func=cmd_fpga)
