"""``python -m simulator formats``: number formats on the core's template accelerator (Hashemi et al.,
DATE 2017). ``formats_study`` gives accuracy, energy, footprint and area per format point, normalised
to float32; ``write_formats`` writes ``results/<workload>/formats.csv`` + ``.json``; ``plot_formats``
draws the figure. Also the pieces ``simulator.fpga_study`` shares: the workload's layers, template
costs, result files and ``trained_point`` (WRPN training, cached under ``results/<workload>/qat/``).
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
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from tqdm import tqdm

from . import __version__
from .errors import SimulatorError
from .format_costs import (AREA_PARTS, DEFAULT_POINTS, ENERGY_PARTS, TEMPLATE, TEMPLATE_MEMORY, FormatPoint,
                           format_point, layer_costs, load_cost_table, template_area)
from .formats import precision
from .layers import LayerSpec, shapes_of
from .quantize import LayerPrecision, TensorPrecision

FLOAT_BITS = 32                 # "32" in a bits list means float32
INPUT_BITS = 8                  # the image entering the first layer (WRPN leaves it unquantized; FINN takes 8 bits)


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


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


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


# ---------------------------------------------------------------------------------------- command line

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
