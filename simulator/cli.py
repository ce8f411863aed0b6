"""The command line: thin wrappers over the library. Every user error is one line and exit code 2."""
from __future__ import annotations

import argparse
import sys
import time
from importlib import resources
from typing import Optional, Sequence

from . import __version__
from .errors import SimulatorError

DEFAULT_WORKLOAD = "default.yaml"   # packaged: simulator/data/default.yaml


def _workload_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", nargs="?", default=None,
                   help="workload YAML file (default: the packaged AlexNet-vs-Stripes example)")


def _load(path: Optional[str]):
    from .workload import load_workload
    if path is None:
        with resources.as_file(resources.files("simulator") / "data" / DEFAULT_WORKLOAD) as p:
            return load_workload(p)
    return load_workload(path)


def _names(csv: Optional[str]) -> Optional[list[str]]:
    return [n.strip() for n in csv.split(",") if n.strip()] if csv else None


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export
    wl = _load(args.workload)
    t0 = time.perf_counter()
    paths = export(wl, profiles=_names(args.profiles), force=args.force)
    for name, path in paths.items():
        size = path.stat().st_size / 2**20
        print(f"{name}: {path} ({size:.1f} MiB)")
    print(f"exported in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect_trace import trace_stats
    from .table import render
    rows = trace_stats(args.trace)
    cols = ["layer", "kind", "input", "weights", "groups", "macs", "act_format", "weight_format",
            "act_min", "act_max", "act_zeros", "act_needed_bits", "act_essential_bits"]
    heads = ["layer", "kind", "input (NCHW)", "weights", "groups", "MACs", "act fmt", "weight fmt",
             "act min", "act max", "act zeros", "act needed bits", "act essential bits"]
    print(render(rows, cols, heads))
    print(f"{len(rows)} layers, {sum(r['macs'] for r in rows):,} MACs in all (formats: s/u bits.frac)")
    return 0


def _layer_table(result, profile: str, memory: str) -> str:
    from .table import render
    recs = [r for r in result.records if r.profile == profile and r.memory == memory]
    accs = list(dict.fromkeys(r.accelerator for r in recs))
    base = result.workload.baseline_accelerator.name
    rows: dict[str, dict] = {}
    for r in recs:
        row = rows.setdefault(r.layer, {"layer": r.layer, "bits a/w": f"{r.act_bits}/{r.weight_bits}",
                                        "footprint KiB": (r.footprint_weight_bits + r.footprint_act_bits) / 8192})
        row[f"{r.accelerator} cycles"] = row.get(f"{r.accelerator} cycles", 0) + r.total_cycles
        if r.accelerator != base:
            row[f"{r.accelerator} speedup"] = r.speedup
        row[f"{r.accelerator} stalls"] = row.get(f"{r.accelerator} stalls", 0) + r.stall_cycles
        row[f"{r.accelerator} bound"] = r.bound
        row[f"{r.accelerator} uJ"] = row.get(f"{r.accelerator} uJ", 0.0) + r.energy_total_pj / 1e6
    cols = ["layer", "bits a/w"]
    for a in accs:
        cols += [f"{a} cycles"] + ([f"{a} speedup"] if a != base else []) + [f"{a} stalls", f"{a} bound", f"{a} uJ"]
    cols.append("footprint KiB")
    return render(list(rows.values()), cols)


def _totals_table(result) -> str:
    from .table import render
    rows = []
    for t in result.totals():
        rows.append({"profile": t["profile"], "memory": t["memory"], "accelerator": t["accelerator"],
                     "input": t["input"], "Total Cycles": t["total_cycles"], "speedup": t["speedup"],
                     "stall %": 100.0 * t["stall_cycles"] / t["total_cycles"] if t["total_cycles"] else 0.0,
                     "memory-bound layers": f"{t['memory_bound_layers']}/{t['layers']}",
                     "energy uJ": t["energy_total_pj"] / 1e6,
                     "DRAM MiB": (t["dram_act_read_bits"] + t["dram_weight_read_bits"] + t["dram_out_write_bits"]) / 8 / 2**20,
                     "footprint MiB": (t["footprint_weight_bits"] + t["footprint_act_bits"]) / 8 / 2**20,
                     "saved vs fp32 %": 100 * t["footprint_reduction_vs_fp32"]})
    return render(rows)


def cmd_run(args: argparse.Namespace) -> int:
    from .simulate import run_workload
    wl = _load(args.workload)
    t0 = time.perf_counter()
    result = run_workload(wl, profiles=_names(args.profiles), force_export=args.force)
    if not args.summary:
        for profile in dict.fromkeys(r.profile for r in result.records):
            for memory in dict.fromkeys(r.memory for r in result.records):
                print(f"\n== {wl.name} | profile {profile} | memory {memory} "
                      f"(speedup over {wl.baseline_accelerator.name}, same profile and memory) ==")
                print(_layer_table(result, profile, memory))
    print(f"\n== {wl.name}: totals per profile, memory and accelerator ==")
    print(_totals_table(result))
    csv_path, json_path = result.write(args.out)
    print(f"\nwrote {csv_path} and {json_path} "
          f"(export {result.seconds['export']:.1f} s, simulation {result.seconds['simulate']:.1f} s, "
          f"total {time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare
    from .table import render
    wl = _load(args.workload)
    t0 = time.perf_counter()
    comp = compare(wl, _names(args.profiles), _names(args.engines), _names(args.memory))
    for memory in comp.memories:
        for metric in args.metrics.split(","):
            rows, cols = comp.side_by_side(memory, metric.strip())
            print(f"\n== {wl.name} | memory {memory} | {comp.METRICS[metric.strip()]}"
                  + (f" (over {comp.run.workload.baseline_accelerator.name} at {comp.profiles[0]})"
                     if metric.strip() == "speedup" else "")
                  + " ==")
            print(render(rows, cols))
    print(f"\n== {wl.name}: totals ==")
    print(_totals_table(comp.run))
    if comp.accuracy:
        print(f"\n== {wl.name}: held-out accuracy (test split, formats calibrated on validation) ==")
        print(render([{"profile": p, "top-1": a.top1, "% of float": 100 * a.relative_top1,
                       "float top-1": a.float_top1, "inputs": a.n} for p, a in comp.accuracy.items()]))
    csv_path, json_path = comp.write(args.out)
    print(f"\nwrote {csv_path} and {json_path} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    from .engines import make_engine
    from .export import export
    from .memory import bandwidth_bits_per_cycle, latency_cycles, plan_layer, resolve_dram, write_request_trace
    from .traces import open_trace
    wl = _load(args.workload)
    where = wl.source_path
    profile = args.profile or next(iter(wl.profiles))
    mems = {m.name: m for m in wl.memory}
    accs = {a.name: a for a in wl.accelerators}
    mem = mems.get(args.memory) if args.memory else next((m for m in wl.memory if not m.on_chip), None)
    if mem is None or mem.on_chip:
        raise SimulatorError(f"{where}: --memory must name an off-chip memory; memories: {', '.join(mems)}")
    acc = accs.get(args.accelerator) if args.accelerator else wl.baseline_accelerator
    if acc is None:
        raise SimulatorError(f"{where}: no accelerator named '{args.accelerator}'; accelerators: {', '.join(accs)}")
    path = export(wl, profiles=[profile])[profile]
    with open_trace(path) as trace:
        layers = list(trace)
        names = [l.spec.name for l in layers]
        if args.layer not in names:
            raise SimulatorError(f"{path}: no layer named '{args.layer}'; layers: {', '.join(names)}")
        i = names.index(args.layer)
        layer = layers[i]
        out_bits = layers[i + 1].act_format.bits if i + 1 < len(layers) else 16
        a, w = layer.act_format.bits, layer.weight_format.bits
        values = (layer.activations[0], layer.weights) if make_engine(acc).needs_values else (None, None)
        compute = make_engine(acc).compute(layer.spec, a, w, *values)
    dram = resolve_dram(mem)
    # the same tiling simulate_memory picks: ties in DRAM bits are broken by simulated time
    plan = plan_layer(layer.spec, a, w, out_bits, mem, dram.burst_bytes, compute_cycles=compute.compute_cycles,
                      bw=bandwidth_bits_per_cycle(dram, acc.frequency_mhz), lat=latency_cycles(dram, acc.frequency_mhz))
    write_request_trace(args.out, layer.spec, plan, dram, acc.frequency_mhz, compute.compute_cycles)
    print(f"wrote {args.out}: {plan.dram_bits // 8:,} bytes in {plan.tiles} tile(s), {plan.loop_order}, "
          f"{dram.name} bursts of {dram.burst_bytes} B, cycles at {acc.frequency_mhz:g} MHz ({acc.name})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator",
                                description="precision-sim: per-layer precision on bit-parallel and bit-serial accelerators")
    p.add_argument("--version", action="version", version=f"precision-sim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("export", help="run the network in fixed point and write one HDF5 trace per profile")
    _workload_arg(e)
    e.add_argument("--profiles", help="comma-separated profile names (default: all in the workload)")
    e.add_argument("--force", action="store_true", help="rewrite traces even when a matching one exists")
    e.set_defaults(func=cmd_export)

    r = sub.add_parser("run", help="export or reuse traces, simulate every accelerator x memory x profile, "
                                   "print the per-layer table and write results/<workload>/")
    _workload_arg(r)
    r.add_argument("--profiles", help="comma-separated profile names (default: all in the workload)")
    r.add_argument("--summary", action="store_true", help="print only the totals table")
    r.add_argument("--force", action="store_true", help="re-export traces even when a matching one exists")
    r.add_argument("--out", help="results folder (default: <results_dir>/<workload name>)")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("compare", help="side-by-side per-layer table of profiles x engines; writes CSV/JSON")
    _workload_arg(c)
    c.add_argument("--profiles", help="comma-separated profile names (default: all)")
    c.add_argument("--engines", help="comma-separated accelerator names or engine kinds (default: all)")
    c.add_argument("--memory", help="comma-separated memory names (default: all)")
    c.add_argument("--metrics", default="bits,cycles,speedup,energy,footprint",
                   help="tables to print, comma-separated: bits, cycles, speedup, energy, footprint, bound")
    c.add_argument("--out", help="results folder (default: <results_dir>/<workload>/compare)")
    c.set_defaults(func=cmd_compare)

    q = sub.add_parser("requests", help="write one layer's DRAM request trace (CSV: cycle,address,rw,bytes,operand) "
                                        "for a DRAM simulator")
    _workload_arg(q)
    q.add_argument("--layer", required=True, help="layer name")
    q.add_argument("--profile", help="profile (default: the workload's first)")
    q.add_argument("--memory", help="off-chip memory name (default: the workload's first off-chip one)")
    q.add_argument("--accelerator", help="accelerator whose compute paces the fetches (default: the baseline)")
    q.add_argument("--out", required=True, help="CSV file to write")
    q.set_defaults(func=cmd_requests)

    from .figures_command import add_parser as add_figures
    from .formats_command import add_parser as add_formats
    from .search.command import add_parser as add_search
    add_figures(sub)
    add_search(sub)
    add_formats(sub)

    i = sub.add_parser("inspect", help="per-layer table of a trace: shapes, MACs, precision, ranges, zeros, needed bits")
    i.add_argument("trace", help="HDF5 trace file")
    i.set_defaults(func=cmd_inspect)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SimulatorError as e:
        print(f"error: {e}", file=sys.stderr)
        return SimulatorError.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
