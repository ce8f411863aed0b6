"""Figure 1 (Stripes' main figure): speedup and energy efficiency of each engine over the
bit-parallel baseline, per network of the zoo, compute-only and with DRAM, plus a geometric mean.

Energy efficiency = baseline energy / engine energy (Stripes, MICRO 2016, reports it this way).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from ..errors import SimulatorError
from . import style
from .loading import PROFILE_RULE, ResultSet, load_results, published_profile, short_profile

PANELS = ("compute", "dram")     # compute-only (everything on chip) | with off-chip DRAM
PREFERRED = {"compute": "on-chip", "dram": "ddr4"}


def _pick(candidates: list[str], preferred: str) -> str | None:
    return preferred if preferred in candidates else (candidates[0] if candidates else None)


def geomean(values: Sequence[float]) -> float:
    v = [x for x in values if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def data_for_zoo(paths: Sequence[Union[str, Path, ResultSet]]) -> dict[str, Any]:
    """Per network (one results folder each): the profile shown (``PROFILE_RULE``), and for each
    non-baseline accelerator its speedup and energy efficiency over the folder's baseline, on the
    on-chip memory ("compute") and on the DRAM one ("dram"); NaN where a folder lacks it. The last
    column of every series is the geometric mean over the networks that have it."""
    sets = [p if isinstance(p, ResultSet) else load_results(p) for p in paths]
    if not sets:
        raise SimulatorError("the zoo figure needs at least one results folder")
    networks, profiles, accelerators, memories = [], {}, {}, {"compute": [], "dram": []}
    baselines: list[str] = []
    rows: list[dict[str, Any]] = []
    for rs in sets:
        profile = published_profile(rs.profiles)
        chosen = {"compute": _pick(rs.on_chip_memories, PREFERRED["compute"]),
                  "dram": _pick(rs.dram_memories, PREFERRED["dram"])}
        base = rs.baseline
        networks.append(rs.workload)
        profiles[rs.workload] = profile
        row: dict[str, Any] = {}
        for panel, memory in chosen.items():
            if memory is None:
                continue
            label = memory if panel == "compute" else f"{memory} = {rs.dram(memory)}"
            if label not in memories[panel]:
                memories[panel].append(label)
            references = {rs.baseline_of(a) for a in rs.accelerators} | {base}
            for acc, engine in rs.accelerators.items():
                if acc in references:        # baselines are the reference, not a bar
                    continue
                ref = rs.baseline_of(acc)
                if ref not in baselines:
                    baselines.append(ref)
                accelerators.setdefault(acc, engine)
                b = rs.network(profile, memory, ref)
                t = rs.network(profile, memory, acc)
                if t and b and t["cycles"] and t["energy_pj"]:
                    row[(panel, acc)] = (b["cycles"] / t["cycles"], b["energy_pj"] / t["energy_pj"])
        rows.append(row)
    out: dict[str, Any] = {"networks": networks + ["geomean"], "profiles": profiles,
                           "accelerators": accelerators, "memories": memories, "rule": PROFILE_RULE,
                           "baselines": baselines,
                           "speedup": {}, "energy_efficiency": {}}
    for panel in PANELS:
        for metric, i in (("speedup", 0), ("energy_efficiency", 1)):
            series = {}
            for acc in accelerators:
                vals = [row[(panel, acc)][i] if (panel, acc) in row else float("nan") for row in rows]
                series[acc] = np.array(vals + [geomean(vals)])
            out[metric][panel] = series
    return out


def _slots(data: dict[str, Any], metric: str, panel: str) -> list[list[str]]:
    """Per network, the accelerators with a value: only those get a bar, centred on the group."""
    return [[a for a in data["accelerators"] if math.isfinite(data[metric][panel][a][i])]
            for i in range(len(data["networks"]))]


def _draw(data: dict[str, Any], metric: str, ylabel: str, out: Union[str, Path]) -> list[Path]:
    nets = data["networks"]
    accs = data["accelerators"]
    panels = [p for p in PANELS if data["memories"][p]]
    titles = {"compute": "compute only ({})", "dram": "with DRAM ({})"}
    rule = data["rule"].replace(" where published, else", " where published,\nelse")
    x = np.arange(len(nets))
    slots = {p: _slots(data, metric, p) for p in panels}
    width = 0.8 / max([1] + [len(s) for p in panels for s in slots[p]])
    hatch = {a: look["hatch"] for a, look in style.accelerator_looks(accs).items()}
    values = np.concatenate([data[metric][p][a] for p in panels for a in accs])
    values = values[np.isfinite(values) & (values > 0)]
    lo, hi = (min(0.8, values.min() / 1.3), max(1.25, values.max() * 1.3)) if values.size else (0.5, 2.0)
    labels = [f"{n} ({short_profile(data['profiles'][n])})" if n in data["profiles"] else n for n in nets]
    with style.figure(height=1.7 + 1.35 * len(panels), nrows=len(panels), sharex=True, sharey=True) as (fig, axes):
        for ax, panel in zip(axes[:, 0], panels):
            for i, present in enumerate(slots[panel]):
                for j, acc in enumerate(present):
                    v = data[metric][panel][acc][i]
                    # ratios on a log axis, bars grow from 1: below 1 is a slowdown / a loss
                    ax.bar(x[i] + width * (j - len(present) / 2 + 0.5), v - 1, width, bottom=1,
                           color=style.engine_colour(accs[acc]), hatch=hatch[acc], edgecolor="white", linewidth=0.3)
            ax.axhline(1.0, color="black", linewidth=0.7)
            ax.axvline(len(nets) - 1.5, color=style.GREY, linewidth=0.5, linestyle=":")
            ax.set_yscale("log", base=2)
            ax.set_ylim(lo, hi)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set_title(titles[panel].format(", ".join(data["memories"][panel])), loc="left")
            ax.set_xticks(x, labels)
            ax.set_xlim(-0.6, len(nets) - 0.4)
        style.rotate_ticks(axes[-1, 0])
        fig.supylabel(ylabel, fontsize=8)
        handles = [Patch(facecolor=style.engine_colour(e), hatch=hatch[a], edgecolor="white", label=a)
                   for a, e in accs.items()]
        fig.legend(handles=handles, ncols=min(3, len(accs)), loc="outside upper center",
                   title="accelerator (colour: engine)")
        axes[-1, 0].set_xlabel(f"network (profile: {rule})", fontsize=7)
        return style.save(fig, out)


def draw_speedup(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    """Grouped bars: speedup (× over the baseline, total cycles) per network and geomean."""
    return _draw(data, "speedup", f"speedup over {'/'.join(data['baselines'])} (×)", out)


def draw_energy_efficiency(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    """Grouped bars: energy efficiency (baseline energy ÷ engine energy, ×) per network and geomean."""
    return _draw(data, "energy_efficiency", f"energy efficiency over {'/'.join(data['baselines'])} (×)", out)
