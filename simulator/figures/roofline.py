"""Figure 7: a per-layer roofline. Each layer is a point (compute cycles, DRAM busy cycles), one
panel per DRAM system; above the diagonal y = x the DRAM channel is busy longer than the array
computes, so the layer is memory-bound (the memory model's ``Bound`` column says the same)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import SimulatorError
from . import style
from .loading import ResultSet, load_results, published_profile

KIND_MARKERS = {"conv": "o", "fc": "^"}


def data_for_roofline(path: Union[str, Path, ResultSet], profile: str | None = None) -> dict[str, Any]:
    """Per DRAM memory system and accelerator: per-layer compute cycles and DRAM busy cycles
    (averaged over inputs for value-aware engines), layer names and kinds, at one profile
    (default: the one the zoo figure would show)."""
    rs = path if isinstance(path, ResultSet) else load_results(path)
    drams = rs.dram_memories
    if not drams:
        raise SimulatorError(f"{rs.path}: no memory system with DRAM; the roofline needs one "
                             "(run `python -m simulator figures --roofline WORKLOAD`)")
    profile = profile or published_profile(rs.profiles)
    bandwidth = {}
    for m in drams:
        d = rs.run.get("dram", {}).get(m) if isinstance(rs.run.get("dram"), dict) else None
        bandwidth[m] = float(d["bandwidth_gbps"]) if isinstance(d, dict) and "bandwidth_gbps" in d else None
    points: dict[str, dict[str, dict[str, Any]]] = {}
    for m in drams:
        for acc in rs.accelerators:
            per_layer: dict[str, list] = {}
            for r in rs.select(profile, m, acc):
                e = per_layer.setdefault(r.layer, [r.kind, 0.0, 0.0, 0])
                e[1] += r.compute_cycles
                e[2] += r.memory_cycles
                e[3] += 1
            if per_layer:
                points.setdefault(m, {})[acc] = {
                    "layers": list(per_layer),
                    "kinds": [e[0] for e in per_layer.values()],
                    "compute": np.array([e[1] / e[3] for e in per_layer.values()]),
                    "dram": np.array([e[2] / e[3] for e in per_layer.values()]),
                }
    return {"workload": rs.workload, "profile": profile, "accelerators": rs.accelerators,
            "memories": {m: rs.dram(m) for m in drams}, "bandwidth_gbps": bandwidth, "points": points}


def memory_bound_count(data: dict[str, Any], memory: str, accelerator: str) -> int:
    p = data["points"][memory][accelerator]
    return int(np.sum(p["dram"] > p["compute"]))


def draw_roofline(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    mems = list(data["points"])
    ncols = 1 if len(mems) == 1 else 2
    nrows = -(-len(mems) // ncols)
    allv = np.concatenate([np.concatenate([p["compute"], p["dram"]])
                           for m in mems for p in data["points"][m].values()])
    allv = allv[allv > 0]
    # whole decades with some room, so no point sits on a frame
    lo, hi = 10 ** np.floor(np.log10(allv.min() / 1.5)), 10 ** np.ceil(np.log10(allv.max() * 1.5))
    with style.figure(height=0.9 + 1.6 * nrows, nrows=nrows, ncols=ncols, sharex=True, sharey=True) as (fig, axes):
        for ax in axes.flat[len(mems):]:
            ax.set_visible(False)
        for ax, m in zip(axes.flat, mems):
            ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.7, linestyle="--")
            for acc, p in data["points"][m].items():
                engine = data["accelerators"].get(acc, "")
                for kind, marker in KIND_MARKERS.items():
                    sel = np.array([k == kind for k in p["kinds"]], dtype=bool)
                    if sel.any():
                        ax.scatter(np.maximum(p["compute"][sel], lo), np.maximum(p["dram"][sel], lo), s=9,
                                   marker=marker, color=style.engine_colour(engine), alpha=0.8, linewidths=0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_aspect("equal")
            bw = data["bandwidth_gbps"].get(m)
            preset = data["memories"][m]
            name = preset if preset == m else f"{m} ({preset})"
            ax.set_title(name + (f", {bw:g} GB/s" if bw else ""), loc="left")
            ax.text(0.04, 0.96, "memory-bound", transform=ax.transAxes, va="top", fontsize=6, color=style.GREY)
            ax.text(0.96, 0.04, "compute-bound", transform=ax.transAxes, ha="right", fontsize=6, color=style.GREY)
        for ax in axes[-1, :]:
            ax.set_xlabel("compute cycles")
        for ax in axes[:, 0]:
            ax.set_ylabel("DRAM busy cycles")
        handles = [axes.flat[0].scatter([], [], color=style.engine_colour(e), s=9, label=a)
                   for a, e in data["accelerators"].items()]
        handles += [axes.flat[0].scatter([], [], facecolors="none", edgecolors="black", linewidths=0.6,
                                         marker=mk, s=9, label=f"{k} layer")
                    for k, mk in KIND_MARKERS.items()]
        fig.legend(handles=handles, loc="outside upper center", ncols=min(3, len(handles)),
                   title=f"{data['workload']}, profile {data['profile']}: one point per layer")
        return style.save(fig, out)
