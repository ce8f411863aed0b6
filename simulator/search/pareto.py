"""Pareto data of the cost-aware searches and their figure: held-out accuracy against simulated cost,
one panel per engine objective, one series per method (drawn from the result files only).

Files follow ``docs/figures.md`` ("Search results", ``results/search/<workload>/<method>.json``) and
extend each profile with ``name``, ``objective`` (what it was searched for, null for uniform / Judd
/ Sakr), ``val_top1`` and ``costs`` (every simulated cost column, e.g. ``cycles:stripes@on-chip``);
``top1`` and ``float_top1`` are on the held-out test split (``"split": "test"``). A greedy / exact
search writes one file per objective, ``<method>-<objective>.json`` with method ``<method>:<objective>``,
and the profiles it was compared with as ``uniform.json``, ``judd.json``, ``sakr.json``. Profiles of
the same name already in a file are replaced, others kept, so targets may be searched one at a time.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence, Union

from ..errors import SimulatorError

OTHER = "searched for another objective"


def _entry(p) -> dict[str, Any]:
    r = p.cost.rows[0] if p.cost is not None else None
    return {"name": p.name, "target": p.target, "top1": p.test.top1 if p.test else None, "val_top1": p.val.top1,
            "footprint_reduction_vs_fp32": r["footprint_reduction_vs_fp32"] if r else None,
            "objective": p.details.get("objective") if p.method not in ("uniform", "judd", "sakr") else None,
            "layers": [{"name": n, "act_bits": a, "weight_bits": w} for n, (a, w) in p.bits().items()],
            "costs": p.details.get("costs")}


def write_search_results(report, workload: str, folder: Union[str, Path]) -> list[Path]:
    """Write the report's profiles and references into ``folder`` (see the module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list] = {}
    for p in list(report.profiles) + list(report.references):
        if p.method in ("uniform", "judd", "sakr"):
            key = (p.method, p.method)
        else:
            obj = p.details.get("objective", "")
            slug = obj.replace("@", "-at-").replace(":", "-").replace("*", "x").replace("+", "_")
            key = (f"{report.method}:{obj}", f"{report.method}-{slug}")
        groups.setdefault(key, []).append(p)
    written = []
    for (method, stem), ps in groups.items():
        path = folder / f"{stem}.json"
        old = []
        if path.is_file():
            try:
                old = json.loads(path.read_text()).get("profiles", [])
            except (OSError, json.JSONDecodeError):
                old = []
        new = [_entry(p) for p in ps]
        names = {e["name"] for e in new}
        doc = {"workload": workload, "method": method, "split": "test", "float_top1": report.float_test.top1,
               "profiles": [e for e in old if e.get("name") not in names] + new}
        path.write_text(json.dumps(doc, indent=2) + "\n")
        written.append(path)
    return written


def data_for_pareto(folder: Union[str, Path], metrics: Sequence[str] = ("cycles",)) -> dict[str, Any]:
    """Per engine objective of ``metrics`` (a cost column some profile was searched for): per series,
    the points (cost, test top-1 % of float, profile) of the profiles that carry simulated costs.
    Series: each method searched for that column, each method's bit-operations optimum, the
    workload's uniform / Judd / Sakr profiles, and every other profile in grey."""
    files = sorted(p for p in Path(folder).glob("*.json") if p.name != "sweeps.json")
    docs = []
    for f in files:
        try:
            doc = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SimulatorError(f"{f}: cannot read JSON ({e})") from None
        if {"method", "float_top1", "profiles"} <= doc.keys():
            docs.append(doc)
    if not docs:
        raise SimulatorError(f"{folder}: no search result files with costs")
    panels = []
    for d in docs:
        for p in d["profiles"]:
            o = p.get("objective") or ""
            if o.split(":")[0] in metrics and "+" not in o and o not in panels and p.get("costs"):
                panels.append(o)
    panels.sort()
    series: dict[str, dict[str, list[tuple[float, float, str]]]] = {c: {} for c in panels}
    for d in docs:
        ref = d["float_top1"]
        for p in d["profiles"]:
            costs, top1 = p.get("costs"), p.get("top1")
            if not costs or top1 is None:
                continue
            for c in panels:
                if c not in costs:
                    continue
                o = p.get("objective")
                method = d["method"].split(":")[0]
                if o is None:
                    label = method                              # uniform, judd, sakr
                elif o == c:
                    label = f"{method}, searched for this cost"
                elif o == "bops":
                    label = f"{method}, bit-operations optimum"
                else:
                    label = OTHER
                series[c].setdefault(label, []).append((costs[c], 100 * top1 / ref, p["name"]))
    return {"workload": docs[0]["workload"], "panels": panels, "series": series}


def _style(label: str, i: int) -> dict[str, Any]:
    from ..figures import style
    if label == OTHER:
        return {"color": style.GREY, "marker": ".", "alpha": 0.5, "linestyle": "none", "zorder": 1}
    if label in ("uniform", "judd", "sakr"):
        return {"color": "black", "marker": {"uniform": "s", "judd": "^", "sakr": "D"}[label], "linestyle": ":",
                "fillstyle": "none", "zorder": 2}
    return {"color": style.series_colour(i), "marker": style.MARKERS[i % len(style.MARKERS)], "zorder": 3}


def draw_pareto(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    """One panel per engine objective: test top-1 (% of float) against simulated cost, a line per
    method through its profiles (sorted by cost), the other engines' profiles in grey."""
    from ..figures import style
    panels = data["panels"]
    if not panels:
        raise SimulatorError("no profile was searched for an engine objective (cycles / energy / dram)")
    ncols = 2 if len(panels) > 1 else 1
    nrows = -(-len(panels) // ncols)
    labels = sorted({lab for c in panels for lab in data["series"][c]}, key=lambda s: (s == OTHER, s))
    index = {lab: i for i, lab in enumerate(labels)}
    with style.figure(width=style.WIDE_IN if ncols > 1 else style.COLUMN_IN, height=0.9 + 2.0 * nrows,
                      nrows=nrows, ncols=ncols) as (fig, axes):
        for k, c in enumerate(panels):
            ax = axes[k // ncols, k % ncols]
            metric = c.split(":")[0]
            scale, unit = (1e6, "µJ") if metric == "energy" else (1e3, "thousand " + ("cycles" if metric == "cycles" else "bits"))
            for lab, pts in data["series"][c].items():
                pts = sorted(pts)
                kw = _style(lab, index[lab])
                ax.plot([p[0] / scale for p in pts], [p[1] for p in pts], label=lab, markersize=4,
                        linewidth=0.9, **kw)
            ax.axhline(99, color=style.GREY, linewidth=0.5, linestyle=":")
            ax.set_title(c, loc="left")
            ax.set_xlabel(f"simulated {metric} ({unit})")
            ax.set_ylabel("test top-1 (% of float)")
        for k in range(len(panels), nrows * ncols):
            axes[k // ncols, k % ncols].set_visible(False)
        handles, names = {}, []
        for ax in axes.ravel():
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in handles:
                    handles[lab] = h
                    names.append(lab)
        names.sort(key=lambda s: (index[s]))
        fig.legend([handles[n] for n in names], names, loc="outside lower center", ncols=2,
                   title=f"{data['workload']}: accuracy against simulated cost (up and left is better)")
        return style.save(fig, out)


__all__ = ["write_search_results", "data_for_pareto", "draw_pareto"]
