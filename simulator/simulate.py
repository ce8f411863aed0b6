"""Trace -> engines x memory systems -> per-layer records; the Python API scripts use.

``simulate`` runs a trace that already exists; ``run_workload`` exports (or reuses) the traces of
a workload's profiles, simulates every accelerator x memory x profile and returns a ``RunResult``.
"""
from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from tqdm import tqdm

from . import __version__
from .config import AcceleratorConfig, EnergyConfig, MemoryConfig
from .counters import ComputeCounters
from .energy import describe_table, layer_energy, load_table
from .engines import make_engine
from .errors import SimulatorError
from .footprint import layer_footprint
from .memory import resolve_dram, simulate_memory
from .results import LayerRecord, totals, write_csv, write_json
from .traces import LayerTrace, open_trace
from .workload import Workload, load_workload

OUT_BITS_LAST = 16   # a network's outputs (logits) leave the accelerator at 16 bits


def _records_for(workload: str, profile: str, layer: LayerTrace, out_bits: int, acc: AcceleratorConfig,
                 counters: ComputeCounters, input_id: str, memories: Sequence[MemoryConfig], table) -> list[LayerRecord]:
    spec, a_bits, w_bits = layer.spec, layer.act_format.bits, layer.weight_format.bits
    fp = layer_footprint(spec, a_bits, w_bits)
    out = []
    for mem in memories:
        m = simulate_memory(spec, a_bits, w_bits, out_bits, counters.compute_cycles, mem, acc.frequency_mhz)
        dram = resolve_dram(mem)
        e = layer_energy(counters, None if dram is None else m, dram.energy_pj_per_bit if dram else 0.0,
                         acc.frequency_mhz, table)
        out.append(LayerRecord(
            workload=workload, profile=profile, accelerator=acc.name, engine=acc.engine, memory=mem.name,
            input=input_id, layer=spec.name, index=layer.index, kind=spec.kind, macs=spec.macs,
            act_bits=a_bits, weight_bits=w_bits, out_bits=out_bits, steps=counters.steps,
            compute_cycles=counters.compute_cycles, stall_cycles=m.stall_cycles, total_cycles=m.total_cycles,
            memory_cycles=m.memory_cycles, bound=m.bound, tiles=m.tiles, loop_order=m.loop_order,
            utilization=100.0 * counters.useful_lane_slots / counters.lane_slots if counters.lane_slots else 0.0,
            idle_lane_slots=counters.idle_lane_slots, act_buffer_read_bits=counters.act_buffer_read_bits,
            weight_buffer_read_bits=counters.weight_buffer_read_bits,
            out_buffer_write_bits=counters.out_buffer_write_bits, dram_act_read_bits=m.dram_act_read_bits,
            dram_weight_read_bits=m.dram_weight_read_bits, dram_out_write_bits=m.dram_out_write_bits,
            speedup=float("nan"), energy_compute_pj=e["compute"], energy_act_buffer_pj=e["act_buffer"],
            energy_weight_buffer_pj=e["weight_buffer"], energy_out_buffer_pj=e["out_buffer"],
            energy_dram_pj=e["dram"], energy_leakage_pj=e["leakage"], energy_total_pj=e["total"],
            footprint_weight_bits=fp.weight_bits, footprint_act_bits=fp.activation_bits,
            footprint_fp32_bits=fp.total_bits_fp32, footprint_fixed16_bits=fp.total_bits_fixed16,
            footprint_dynamic_act_bits=-1 if counters.dynamic_act_storage_bits is None
            else counters.dynamic_act_storage_bits))
    return out


def _fill_speedups(records: list[LayerRecord], baselines: dict[str, str]) -> None:
    """Speedup of each record over its accelerator's baseline (same profile, memory, layer, input)."""
    cycles = {(r.accelerator, r.profile, r.memory, r.layer, r.input): r.total_cycles for r in records}
    for r in records:
        key = (baselines[r.accelerator], r.profile, r.memory, r.layer)
        b = cycles.get((*key, r.input), cycles.get((*key, "all")))
        r.speedup = b / r.total_cycles if b is not None and r.total_cycles else float("nan")


def simulate(trace: Union[str, Path], accelerators: Sequence[AcceleratorConfig], memories: Sequence[MemoryConfig],
             energy: EnergyConfig = EnergyConfig(), baseline: Optional[str] = None,
             profile: Optional[str] = None, workload: Optional[str] = None, progress: bool = False) -> list[LayerRecord]:
    """Per-layer records of every accelerator x memory system on one trace.

    Engines whose counts do not depend on values run once per layer (input ``"all"``); value-aware
    engines run once per input of the trace. Layers are read one at a time.
    """
    if not accelerators or not memories:
        raise SimulatorError("simulate needs at least one accelerator and one memory configuration")
    table = load_table(energy)
    engines = [make_engine(a) for a in accelerators]
    records: list[LayerRecord] = []
    with open_trace(trace) as t:
        attrs = t.attrs
        profile = profile or str(attrs.get("profile", "profile"))
        workload = workload or str(attrs.get("workload", "workload"))
        ids = [str(i) for i in attrs.get("input_ids", [])]
        layers = list(t)
        bar = tqdm(layers, desc=f"simulate {profile}", unit="layer", disable=None if progress else True, leave=False)
        for i, layer in enumerate(bar):
            out_bits = layers[i + 1].act_format.bits if i + 1 < len(layers) else OUT_BITS_LAST
            acts = weights = None
            fmt_a, fmt_w = layer.act_format, layer.weight_format
            for acc, engine in zip(accelerators, engines):
                if not engine.needs_values:
                    c = engine.compute(layer.spec, fmt_a.bits, fmt_w.bits)
                    records += _records_for(workload, profile, layer, out_bits, acc, c, "all", memories, table)
                    continue
                if acts is None:
                    acts = layer.activations
                if weights is None and engine.needs_weights:   # fc6 of VGG-19 alone is 100M weights
                    weights = layer.weights
                for n in range(acts.shape[0]):
                    c = engine.compute(layer.spec, fmt_a.bits, fmt_w.bits, acts[n],
                                       weights if engine.needs_weights else None,
                                       act_signed=fmt_a.signed, weight_signed=fmt_w.signed)
                    records += _records_for(workload, profile, layer, out_bits, acc, c,
                                            ids[n] if n < len(ids) else str(n), memories, table)
    default = baseline or accelerators[0].name
    _fill_speedups(records, {a.name: a.baseline or default for a in accelerators})
    return records


@dataclass
class RunResult:
    """Everything ``run`` produced: records, the traces used and the resolved configuration."""

    workload: Workload
    records: list[LayerRecord]
    traces: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)

    def totals(self) -> list[dict[str, Any]]:
        return totals(self.records)

    def config(self) -> dict[str, Any]:
        import h5py
        import numba
        import numpy
        import torch
        table = load_table(self.workload.energy)
        keys = {}
        for p, path in self.traces.items():
            with open_trace(path) as t:
                keys[p] = {"path": str(path), "key": t.key}
        return {
            "tool": "precision-sim", "tool_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
            "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__,
                         "numba": numba.__version__, "h5py": h5py.__version__},
            "workload_file": self.workload.source_path,
            "workload": self.workload.model_dump(mode="json"),
            "baseline": self.workload.baseline_accelerator.name,
            "traces": keys,
            "dram": {m.name: (None if resolve_dram(m) is None else vars(resolve_dram(m))) for m in self.workload.memory},
            "energy_table": describe_table(table),
            "seconds": self.seconds,
        }

    def write(self, out_dir: Union[str, Path, None] = None) -> tuple[Path, Path]:
        d = Path(out_dir) if out_dir is not None else Path(self.workload.results_dir) / self.workload.name
        csv_path = write_csv(d / "layers.csv", self.records)
        json_path = write_json(d / "run.json", {**self.config(), "totals": self.totals()})
        return csv_path, json_path


def run_workload(workload: Union[Workload, str, Path], profiles: Optional[Sequence[str]] = None,
                 progress: bool = True, force_export: bool = False) -> RunResult:
    """Export or reuse the workload's traces, then simulate every accelerator x memory x profile."""
    from .export import export
    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    energy = wl.energy
    if energy.table != "default":
        energy = energy.model_copy(update={"table": str(wl.resolve_path(energy.table))})
    for m in wl.memory:          # fail on a bad memory entry before minutes of export
        resolve_dram(m)
    for a in wl.accelerators:
        make_engine(a)
    baseline = wl.baseline_accelerator.name
    t0 = time.perf_counter()
    traces = export(wl, profiles=list(profiles) if profiles else None, force=force_export, progress=progress)
    t1 = time.perf_counter()
    records: list[LayerRecord] = []
    for name, path in traces.items():
        records += simulate(path, wl.accelerators, wl.memory, energy, baseline, name, wl.name, progress)
    t2 = time.perf_counter()
    return RunResult(wl, records, traces, {"export": t1 - t0, "simulate": t2 - t1})

