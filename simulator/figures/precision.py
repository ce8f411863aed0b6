"""Figure 5 (Hashemi et al., DATE 2017, axes): energy per engine and memory footprint against the
number format and precision of a whole network.

Each profile of a results folder that names a known format becomes one category on the x axis.
Today that is fixed point (``uniform-N``); floating point, powers of two and binary come with the
number-format work: add their profile-name patterns to ``FORMATS`` and they join as categories.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..errors import SimulatorError
from . import style
from .loading import ResultSet, load_results

# (format, pattern over profile names with the bit count as group 1) in the order they are drawn.
FORMATS: list[tuple[str, re.Pattern]] = [
    ("fixed", re.compile(r"^uniform-(\d+)$")),
]
MIB_BITS = 8 * 2**20


def profile_format(profile: str) -> Optional[tuple[str, int]]:
    """(format, bits) of a whole-network profile name; None for per-layer profiles."""
    for fmt, pattern in FORMATS:
        m = pattern.match(profile)
        if m:
            return fmt, int(m.group(1))
    return None


def data_for_precision(path: Union[str, Path, ResultSet]) -> dict[str, Any]:
    """Per format category (fixed point at N bits, ...): network energy per input of every
    accelerator on every memory system (pJ), and the footprint of weights and input activations at
    that precision against 32-bit float (MiB)."""
    rs = path if isinstance(path, ResultSet) else load_results(path)
    cats = sorted(((f, b, p) for p in rs.profiles if (fb := profile_format(p)) for f, b in [fb]),
                  key=lambda c: ([f for f, _ in FORMATS].index(c[0]), c[1]))
    if not cats:
        raise SimulatorError(f"{rs.path}: no whole-network profiles (uniform-N) to plot against precision")
    several = len({c[0] for c in cats}) > 1
    base = rs.baseline
    energy: dict[str, dict[str, np.ndarray]] = {}
    for m in rs.memories:
        for acc in rs.accelerators:
            energy.setdefault(m, {})[acc] = np.array(
                [rs.network(p, m, acc).get("energy_pj", np.nan) for _, _, p in cats])
    fp = [rs.network(p, rs.memories[0], base) for _, _, p in cats]
    return {
        "workload": rs.workload, "profiles": [p for _, _, p in cats], "formats": [f for f, _, _ in cats],
        "bits": np.array([b for _, b, _ in cats]),
        "labels": [f"{f} {b}" if several else str(b) for f, b, _ in cats],
        "accelerators": rs.accelerators, "memories": {m: rs.dram(m) for m in rs.memories},
        "energy_pj": energy,
        "weights_mib": np.array([t["weight_bits"] / MIB_BITS for t in fp]),
        "activations_mib": np.array([t["act_bits"] / MIB_BITS for t in fp]),
        "fp32_mib": np.array([t["fp32_bits"] / MIB_BITS for t in fp]),
    }


def draw_precision(data: dict[str, Any], out: Union[str, Path]) -> list[Path]:
    x = np.arange(len(data["labels"]))
    top = max(float(np.nanmax(y)) for per_mem in data["energy_pj"].values() for y in per_mem.values())
    unit, scale = style.energy_unit(top)
    mems = list(data["memories"])
    looks = style.accelerator_looks(data["accelerators"])
    with style.figure(height=1.6 + 1.3 * (len(mems) + 1), nrows=len(mems) + 1, sharex=True) as (fig, axes):
        for ax, m in zip(axes[:-1, 0], mems):
            for acc, y in data["energy_pj"][m].items():
                ax.plot(x, y / scale, marker=looks[acc]["marker"], color=looks[acc]["color"], label=acc)
            ax.set_ylim(0, top / scale * 1.05)
            ax.set_ylabel(f"energy ({unit})")
            d = data["memories"][m]
            ax.set_title(f"energy per input, {m}" + (f" ({d})" if d and d != m else ""), loc="left")
        fig.legend(*axes[0, 0].get_legend_handles_labels(), ncols=3, loc="outside upper center",
                   title=f"{data['workload']}: accelerator (colour: engine)")
        ax = axes[-1, 0]
        ax.bar(x, data["weights_mib"], 0.6, color=style.OKABE_ITO["blue"], label="weights")
        ax.bar(x, data["activations_mib"], 0.6, bottom=data["weights_mib"], color=style.OKABE_ITO["orange"],
               label="input activations")
        ax.axhline(float(np.max(data["fp32_mib"])), color="black", linestyle="--", linewidth=0.8,
                   label="both at 32-bit float")
        ax.set_ylim(0, 1.7 * float(np.max(data["fp32_mib"])))   # room for the legend above the line
        ax.set_ylabel("footprint (MiB)")
        ax.set_title("footprint of weights and input activations", loc="left")
        ax.legend(loc="upper left", ncols=2)
        ax.set_xticks(x, data["labels"])
        fixed_only = set(data["formats"]) == {"fixed"}
        ax.set_xlabel("fixed-point bits (all weights and activations)" if fixed_only
                      else "number format and bits")
        return style.save(fig, out)
