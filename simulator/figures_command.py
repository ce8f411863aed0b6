"""``python -m simulator figures``: the papers' figures from result files, or (``--all``) from a
fresh run of the zoo. The lead wires ``add_parser`` into ``simulator/cli.py``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .errors import SimulatorError

DEFAULT_OUT = "results/figures"
DEFAULT_ROOFLINE = "vgg19"      # has Stripes' published profile and large fc layers: both regimes show
DEFAULT_SWEEP = "alexnet"       # Hashemi et al.'s ImageNet network


def _workload_file(name: str, folder: str) -> Path | None:
    """``workloads/<name>.yaml`` for a bare name, else the path as given; None (the packaged AlexNet)
    when the AlexNet file is not there yet."""
    p = Path(name) if name.endswith((".yaml", ".yml")) else Path(folder) / f"{name}.yaml"
    if p.is_file():
        return p
    if p.stem == "alexnet":
        return None
    raise SimulatorError(f"{p}: no such workload file")


def cmd_figures(args: argparse.Namespace) -> int:
    from .figures import make_figures, result_dirs
    from .figures import runs
    t0 = time.perf_counter()
    dirs = [Path(d) for d in args.results_dirs]
    results_root = Path(args.results_root)
    if args.all:
        names = [n.strip() for n in args.workloads.split(",") if n.strip()] if args.workloads else list(runs.ZOO)
        dirs += runs.run_zoo(runs.zoo_workload_paths(names, args.workload_dir), results_root)
        args.roofline = args.roofline or DEFAULT_ROOFLINE
        args.sweep = args.sweep or DEFAULT_SWEEP
    if args.roofline:
        print(f"roofline: {args.roofline} over every DRAM preset")
        dirs.append(runs.run_roofline(_workload_file(args.roofline, args.workload_dir), results_root))
    if args.sweep:
        bits = tuple(int(b) for b in args.sweep_bits.split(","))
        print(f"precision sweep: {args.sweep} at uniform-{'/'.join(map(str, bits))}")
        dirs.append(runs.run_sweep(_workload_file(args.sweep, args.workload_dir), bits, results_root))
    t1 = time.perf_counter()
    discovered = not dirs
    if discovered:
        dirs = result_dirs(results_root)
        if not dirs:
            raise SimulatorError(f"no results under {results_root}/ (run `python -m simulator run WORKLOAD` "
                                 "or `python -m simulator figures --all`)")
    rep = make_figures(dirs, args.out, results_root, skip_unreadable=discovered)
    pngs = [p for p in rep.written if p.suffix == ".png"]
    for p in pngs:
        print(f"wrote {p} (+ .pdf)")
    runs_s = f"simulation {t1 - t0:.1f} s, " if t1 - t0 > 0.5 else ""
    print(f"{len(pngs)} figure(s) in {args.out} ({runs_s}drawing {time.perf_counter() - t1:.1f} s)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    f = subparsers.add_parser(
        "figures", help="draw the papers' figures (PNG + PDF) from result folders; --all reruns the zoo first",
        description="Draw every figure whose data exists. Figures read result files only; --all, --roofline "
                    "and --sweep run the simulator first and write the folders they draw from.")
    f.add_argument("results_dirs", nargs="*", metavar="RESULTS_DIR",
                   help="results folders (with layers.csv); default: every folder under --results-root")
    f.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the figures (default: {DEFAULT_OUT})")
    f.add_argument("--all", action="store_true",
                   help="regenerate everything: run the zoo workloads, the roofline and the precision sweep, then draw")
    f.add_argument("--workloads", help="comma-separated zoo workloads for --all (names in --workload-dir or "
                                       "YAML paths; default: alexnet, vgg16, vgg19, nin, googlenet, resnet18, "
                                       "resnet50, mobilenet_v2)")
    f.add_argument("--roofline", metavar="WORKLOAD", help=f"run WORKLOAD over every DRAM preset into "
                                                         f"<results>/<name>-roofline/ (--all: {DEFAULT_ROOFLINE})")
    f.add_argument("--sweep", metavar="WORKLOAD", help=f"run WORKLOAD at uniform-N profiles into "
                                                      f"<results>/<name>-precision/ (--all: {DEFAULT_SWEEP})")
    f.add_argument("--sweep-bits", default="4,8,12,16", help="bit widths of --sweep (default: 4,8,12,16)")
    f.add_argument("--workload-dir", default="workloads", help="where workload names are looked up (default: workloads)")
    f.add_argument("--results-root", default="results",
                   help="results folder the runs write to and where search/, fpga/, wrpn/ are looked for (default: results)")
    f.set_defaults(func=cmd_figures)
