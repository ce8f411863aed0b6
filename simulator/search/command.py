"""``python -m simulator search WORKLOAD --method uniform|judd|sakr|wrpn|greedy|exact --target 0.99``.

``--method greedy|exact --objective cycles:stripes`` (or ``--engines all``) searches against the
simulated cost (docs/costaware.md) and prints the profiles beside the workload's own and the
bit-operations optimum, the cost ratios and, with ``--engines all``, the engine x engine matrix; the
Pareto data go to results/search/<workload>/ and the figure to results/figures/.

Registered by ``add_parser(subparsers)``; prints, per profile found, its per-layer bits, its
validation and test accuracy and its simulated cost, and writes the profiles as a ``profiles:``
YAML block (and the whole report as JSON) under the workload's results folder.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

from ..errors import SimulatorError

WRPN = "wrpn"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``search`` subcommand and its handler."""
    s = subparsers.add_parser(
        "search", help="find per-layer precision profiles within an accuracy target (uniform, Judd et al., "
                       "Sakr & Shanbhag) or train WRPN widened low-precision networks, with their simulated cost")
    s.add_argument("workload", help="workload YAML with trained weights and digits inputs (e.g. workloads/lenet5.yaml)")
    s.add_argument("--method", required=True, choices=["uniform", "judd", "sakr", WRPN, "greedy", "exact"])
    s.add_argument("--target", default="0.99,1.0",
                   help="relative top-1 targets against the float network, comma-separated (default: 0.99,1.0)")
    s.add_argument("--out", help="YAML file for the profiles found (default: <results_dir>/<workload>/search-<method>.yaml)")
    s.add_argument("--json", help="JSON file for the full report (default: beside --out, .json)")
    s.add_argument("--no-cost", action="store_true", help="skip the simulation of each profile's cost")
    s.add_argument("--device", help="torch device for accuracy evaluation (default: cuda when available, else cpu)")
    s.add_argument("--epochs", type=int, help="wrpn: training epochs per network (default: the model's recipe)")
    s.add_argument("--widths", default="1,2", help="wrpn: width multipliers (default: 1,2)")
    s.add_argument("--bits", default="8,4,2", help="wrpn: precisions of weights and activations (default: 8,4,2)")
    s.add_argument("--objective", help="greedy/exact: what to minimise, e.g. cycles:stripes, energy:loom@ddr4, "
                   "dram:dadiannao, footprint, peak-memory, bops, model-size, cycles:stripes+0.5*energy:stripes; "
                   "several comma-separated")
    s.add_argument("--engines", choices=["all"], help="greedy/exact: one profile per accelerator x memory "
                   "(the --objective metric, default cycles) and the engine x engine cost matrix")
    s.add_argument("--sensitivity", default="noise", choices=["noise", "measured"],
                   help="exact: per-tensor sensitivity, Sakr & Shanbhag's noise gains or measured alone (default: noise)")
    s.add_argument("--max-bits", type=int, default=16, help="greedy/exact: widest candidate width (default 16)")
    s.add_argument("--no-compare", action="store_true", help="greedy/exact: skip the Judd/Sakr/uniform/bops comparison")
    s.add_argument("--results-root", default=None, help="greedy/exact: folder for search/<workload>/*.json "
                   "and figures/ (default: the workload's results_dir)")
    s.set_defaults(func=cmd_search)


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SimulatorError(f"{what}: '{text}' is not a comma-separated list of numbers") from None


def _ints(text: str, what: str) -> list[int]:
    vals = _floats(text, what)
    if any(v != int(v) or v < 2 for v in vals):
        raise SimulatorError(f"{what}: '{text}': precisions are whole numbers of at least 2 bits")
    return [int(v) for v in vals]


def _outputs(args: argparse.Namespace, wl) -> tuple[Path, Path]:
    out = Path(args.out) if args.out else Path(wl.results_dir) / wl.name / f"search-{args.method}.yaml"
    js = Path(args.json) if args.json else out.with_suffix(".json")
    return out, js


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _fmt(t) -> str:
    return f"{t.bits} ({t.bits - t.frac}.{t.frac}{'s' if t.signed else 'u'})"


def _cost_lines(cost) -> list[str]:
    from ..table import render
    rows = [{"accelerator": r["accelerator"], "memory": r["memory"], "cycles": r["total_cycles"],
             "speedup": r["speedup"], "energy uJ": r["energy_total_pj"] / 1e6,
             "footprint KiB": (r["footprint_weight_bits"] + r["footprint_act_bits"]) / 8192,
             "saved vs fp32": _pct(r["footprint_reduction_vs_fp32"])} for r in cost.rows]
    return render(rows).splitlines()


def print_report(report) -> None:
    from ..table import render
    fv, ft = report.float_val, report.float_test
    print(f"float network: val top-1 {fv.top1:.4f} (n={fv.n}), test top-1 {ft.top1:.4f} (n={ft.n})"
          + (f", test top-5 {ft.top5:.4f}" if ft.top5 is not None else ""))
    for p in report.profiles:
        print(f"\n== {p.name}: {p.method} at {p.target:.0%} of float top-1 ==")
        rows = [{"layer": n, "act bits (I.F)": _fmt(lp.activations), "weight bits (I.F)": _fmt(lp.weights)}
                for n, lp in p.precisions.items()]
        print(render(rows))
        line = f"val top-1 {p.val.top1:.4f} ({_pct(p.val.relative_top1)} of float)"
        if p.test is not None:
            line += f"; test top-1 {p.test.top1:.4f} ({_pct(p.test.relative_top1)})"
            if p.test.top5 is not None:
                line += f", top-5 {p.test.top5:.4f} ({_pct(p.test.relative_top5)})"
        print(line)
        if p.method == "sakr":
            d = p.details
            print(f"B_min {d['b_min']} (used {d['b']}); mismatch bound {d['bound']:.2e} against p* {d['target_mismatch']:.2e}; "
                  f"measured mismatch {d['measured_mismatch']:.2e} (val)")
        if p.cost is not None:
            print("\n".join(_cost_lines(p.cost)))
    print(f"\nsearch {report.seconds['search']:.1f} s ({report.evaluations} evaluations, {report.cache_hits} cache hits), "
          f"test {report.seconds['test']:.1f} s, cost {report.seconds['cost']:.1f} s")


def _wrpn(args: argparse.Namespace, wl) -> int:
    from ..train import RECIPES, Recipe
    from .wrpn import wrpn_cost_table
    recipe = RECIPES.get(wl.model.name, Recipe())
    if args.epochs is not None:
        recipe = Recipe(**{**vars(recipe), "epochs": args.epochs})
    t0 = time.perf_counter()
    rows = wrpn_cost_table(wl, _floats(args.widths, "--widths"), _ints(args.bits, "--bits"), recipe,
                           cost=not args.no_cost)
    from ..table import render
    summaries = [r.summary() for r in rows]
    print(render(summaries, list(dict.fromkeys(k for row in summaries for k in row))))
    _, js = _outputs(args, wl)
    js.parent.mkdir(parents=True, exist_ok=True)
    js.write_text(json.dumps({"workload": wl.source_path, "method": WRPN, "recipe": vars(recipe),
                              "rows": [r.as_dict() for r in rows]}, indent=2, default=str) + "\n")
    print(f"\nwrote {js} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from ..workload import load_workload
    from . import search
    wl = load_workload(args.workload)
    if args.method == WRPN:
        return _wrpn(args, wl)
    if args.method in ("greedy", "exact"):
        return _costaware(args, wl)
    report = search(wl, args.method, _floats(args.target, "--target"), cost=not args.no_cost, device=args.device)
    print_report(report)
    out, js = _outputs(args, wl)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.yaml())
    js.parent.mkdir(parents=True, exist_ok=True)
    js.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    print(f"wrote {out} and {js}")
    return 0


# ------------------------------------------------------------------------------------ greedy / exact

def _bits_text(p) -> str:
    return " ".join(f"{a}/{w}" for a, w in p.bits().values())


def print_costaware(report) -> None:
    """Profiles with their test accuracy and every simulated cost column, the ratios and the matrix."""
    from ..table import render
    fv, ft = report.float_val, report.float_test
    d = report.details
    print(f"float network: val top-1 {fv.top1:.4f} (n={fv.n}), test top-1 {ft.top1:.4f} (n={ft.n})")
    if d.get("flat_objectives"):
        print(f"left out (no precision changes their cost): {', '.join(d['flat_objectives'])}")
    for s in d.get("skipped", []):
        print(f"skipped {s['objective']} at {s['target']:.0%}: {s['why']}")
    rows = []
    for p in report.profiles + report.references:
        row = {"profile": p.name, "bits a/w per layer": _bits_text(p), "val": round(p.val.top1, 4),
               "test": None if p.test is None else round(p.test.top1, 4),
               "evals": p.details.get("evaluations", "")}
        for col, v in (p.details.get("costs") or {}).items():
            row[col] = round(v / 1e6, 2) if col.startswith("energy") else int(round(v))
        rows.append(row)
    print("\nprofiles (val/test top-1; simulated costs: cycles, energy uJ, bits)")
    print(render(rows, list(dict.fromkeys(k for r in rows for k in r))))
    if d.get("ratios"):
        print("\ncost on the searched objective against the other profiles at the same target (< 1: cheaper)")
        print(render([{k: (round(v, 3) if isinstance(v, float) and k != "target" else v) for k, v in r.items()}
                      for r in d["ratios"]], list(dict.fromkeys(k for r in d["ratios"] for k in r))))
    for t, m in (d.get("matrix") or {}).items():
        print(f"\nengine x engine at {float(t):.0%}: row = profile searched for that objective, column = its cost "
              f"there / the cost of that column's own profile")
        rows = [{"profile for": r, **{c: round(v, 3) for c, v in zip(m["columns"], vals)}}
                for r, vals in zip(m["rows"], m["ratio"])]
        print(render(rows, ["profile for", *m["columns"]]))
    print(f"\nsearch {report.seconds['search']:.1f} s ({report.evaluations} evaluations), "
          f"test {report.seconds['test']:.1f} s, cost {report.seconds['cost']:.1f} s")


def _costaware(args: argparse.Namespace, wl) -> int:
    from . import search
    from .pareto import draw_pareto, data_for_pareto, write_search_results
    if args.max_bits < 2:
        raise SimulatorError(f"--max-bits {args.max_bits}: at least 2")
    report = search(wl, args.method, _floats(args.target, "--target"), cost=not args.no_cost, device=args.device,
                    objective=args.objective, engines=args.engines, sensitivity=args.sensitivity,
                    bits=range(2, args.max_bits + 1), compare=not args.no_compare)
    print_costaware(report)
    out, js = _outputs(args, wl)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.yaml())
    js.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    root = Path(args.results_root) if args.results_root else Path(wl.results_dir)
    written = write_search_results(report, wl.name, root / "search" / wl.name)
    print(f"wrote {out}, {js} and {len(written)} file(s) under {root / 'search' / wl.name}")
    if not args.no_cost:
        figs = draw_pareto(data_for_pareto(root / "search" / wl.name), root / "figures" / f"pareto_{wl.name}")
        print(f"figure: {', '.join(str(f) for f in figs)}")
    return 0
