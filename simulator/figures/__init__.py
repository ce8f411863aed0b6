"""The papers' figures, drawn from result files only (``layers.csv`` via ``read_csv``, ``run.json``,
and the JSON files of the searches and the FPGA / WRPN studies). Nothing here imports torch or runs
the simulator except ``runs``, which ``figures --all`` uses to write the folders first.

Each figure is a pair ``data_for_X(paths) -> dict`` (what the figure shows, testable without
pixels) and ``draw_X(data, out) -> [png, pdf]``. ``make_figures`` finds what data exists and draws
every figure it can; the gallery and the input schemas are in ``docs/figures.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, Union

from ..errors import SimulatorError
from .loading import ResultSet, load_results
from .precision import data_for_precision, draw_precision, profile_format
from .roofline import data_for_roofline, draw_roofline
from .runs import DERIVED_SUFFIXES
from .search import (SWEEPS_FILE, data_for_profiles, data_for_sweeps, data_for_tradeoff, draw_profiles,
                     draw_sweeps, draw_tradeoff, method_files, search_reports, sweeps_from_reports)
from .tradeoffs import (data_for_throughput, data_for_width, draw_throughput, draw_width, fpga_reports,
                        from_fpga_report)
from .zoo import data_for_zoo, draw_energy_efficiency, draw_speedup

MIN_SWEEP_POINTS = 3                             # whole-network precisions the precision figure needs

__all__ = ["FigureReport", "make_figures", "result_dirs", "data_for_zoo", "draw_speedup",
           "draw_energy_efficiency", "data_for_roofline", "draw_roofline", "data_for_precision",
           "draw_precision", "data_for_profiles", "draw_profiles", "data_for_sweeps", "draw_sweeps",
           "data_for_tradeoff", "draw_tradeoff", "data_for_throughput", "draw_throughput",
           "data_for_width", "draw_width", "load_results"]


@dataclass
class FigureReport:
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def result_dirs(root: Union[str, Path]) -> list[Path]:
    """Every folder under ``root`` that holds a ``layers.csv``, sorted by name."""
    return sorted(p.parent for p in Path(root).glob("*/layers.csv"))


def _is_derived(rs: ResultSet) -> bool:
    return rs.path.name.endswith(DERIVED_SUFFIXES)


HEADLINE_METHODS = ("uniform", "judd", "sakr", "exact-bops", "exact-cycles-stripes-at-on-chip",
                    "exact-cycles-loom-at-on-chip", "exact-cycles-bitfusion-at-on-chip")


def make_figures(dirs: Sequence[Union[str, Path]], out: Union[str, Path], root: Union[str, Path] = "results",
                 skip_unreadable: bool = False, note: Callable[[str], None] = print) -> FigureReport:
    """Draw every figure whose data exists: the zoo figure over ``dirs``, a roofline for each of
    them with two or more DRAM systems, a precision figure for each with three or more uniform-N
    profiles, and the search / FPGA / WRPN figures from ``root``/search, /fpga and /wrpn."""
    out = Path(out)
    rep = FigureReport()

    def say(msg: str) -> None:
        rep.notes.append(msg)
        note(msg)

    sets: list[ResultSet] = []
    for d in dirs:
        try:
            sets.append(load_results(d))
        except SimulatorError as e:
            if not skip_unreadable:
                raise
            say(f"skipped {d}: {e}")

    zoo = [rs for rs in sets if not _is_derived(rs) and len(rs.accelerators) > 1]
    if zoo:
        data = data_for_zoo(zoo)
        rep.written += draw_speedup(data, out / "zoo_speedup") + draw_energy_efficiency(data, out / "zoo_energy")
    else:
        say("skipped zoo speedup/energy (figure 1): no results folder with a baseline and another accelerator")

    roof = [rs for rs in sets if len(rs.dram_memories) >= 2]
    for rs in roof:
        rep.written += draw_roofline(data_for_roofline(rs), out / f"roofline_{rs.path.name}")
    if not roof:
        say("skipped roofline (figure 7): no results folder with two or more DRAM systems "
            "(make one with `figures --roofline WORKLOAD`)")

    sweeps = [rs for rs in sets if sum(profile_format(p) is not None for p in rs.profiles) >= MIN_SWEEP_POINTS]
    for rs in sweeps:
        rep.written += draw_precision(data_for_precision(rs), out / f"precision_{rs.path.name}")
    if not sweeps:
        say(f"skipped energy/footprint vs precision (figure 5): no results folder with {MIN_SWEEP_POINTS}+ "
            "uniform-N profiles (make one with `figures --sweep WORKLOAD`)")

    root = Path(root)
    search_dirs = sorted(p for p in (root / "search").glob("*") if p.is_dir())
    found_methods = found_sweeps = False
    for sd in search_dirs:
        # cost-aware search leaves one file per objective: figures 2 and 4 show the accuracy-driven
        # methods and a few engine-optimal profiles (the Pareto figure of `search` shows the rest)
        files = [f for f in method_files(sd) if f.stem in HEADLINE_METHODS]
        if files:
            found_methods = True
            rep.written += draw_profiles(data_for_profiles(files), out / f"profiles_{sd.name}")
            rep.written += draw_tradeoff(data_for_tradeoff(files), out / f"tradeoff_{sd.name}")
        if (sd / SWEEPS_FILE).is_file():
            found_sweeps = True
            rep.written += draw_sweeps(data_for_sweeps(sd / SWEEPS_FILE), out / f"sweeps_{sd.name}")
    drawn = {sd.name for sd in search_dirs if any(f.stem in HEADLINE_METHODS for f in method_files(sd))}
    for name, files in search_reports(root).items():      # what `simulator search` writes
        found_methods = True
        if name not in drawn:                             # the same searches, already drawn above
            rep.written += draw_profiles(data_for_profiles(files), out / f"profiles_{name}")
            rep.written += draw_tradeoff(data_for_tradeoff(files), out / f"tradeoff_{name}")
        sweeps_doc = sweeps_from_reports(files)
        if sweeps_doc is not None:
            found_sweeps = True
            rep.written += draw_sweeps(data_for_sweeps(sweeps_doc), out / f"sweeps_{name}")
    if not found_methods:
        say(f"skipped search profiles and footprint vs accuracy (figures 2, 4): no {root}/search/<workload>/<method>.json")
    if not found_sweeps:
        say(f"skipped per-layer sweeps (figure 3): no {root}/search/<workload>/{SWEEPS_FILE}")

    fpga = fpga_reports(root)                    # what `simulator fpga` writes
    for f in fpga:
        throughput, width = from_fpga_report(f)
        rep.written += draw_throughput(data_for_throughput(throughput), out / f"fpga_{f.parent.name}_{f.stem[5:]}")
        rep.written += draw_width(data_for_width(width), out / f"wrpn_{f.parent.name}_{f.stem[5:]}")
    for sub, data_for, draw, what in (("fpga", data_for_throughput, draw_throughput, "accuracy vs throughput"),
                                      ("wrpn", data_for_width, draw_width, "width vs precision")):
        files = sorted((root / sub).glob("*.json"))
        for f in files:
            rep.written += draw(data_for(f), out / f"{sub}_{f.stem}")
        if not files and not fpga:
            say(f"skipped {what} (figure 6): no {root}/<workload>/fpga-<device>.json (python -m simulator fpga) "
                f"nor {root}/{sub}/<workload>.json")
    return rep
