"""One look for every figure: column-width sizes, 8-9 pt fonts, a colour-blind-safe palette with
one colour per engine, constrained layout, and PNG + PDF output side by side.

The palette is Okabe & Ito's ("Color Universal Design", 2008), distinguishable under the common
colour-vision deficiencies; the engine -> colour map is fixed so an engine looks the same in every
figure of the project.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import matplotlib

matplotlib.use("Agg")   # files only; never a window (and no display on servers)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

COLUMN_IN = 3.5          # one column of a two-column paper
WIDE_IN = 7.0            # both columns

OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}
GREY = "#7F7F7F"

ENGINE_COLOURS: dict[str, str] = {
    "bit-parallel": GREY,
    "bit-serial": OKABE_ITO["blue"],
    "dynamic": OKABE_ITO["sky"],
    "pragmatic": OKABE_ITO["vermillion"],
    "loom": OKABE_ITO["green"],
    "bitfusion": OKABE_ITO["purple"],
    "fpga": OKABE_ITO["orange"],
}
# Categories that are not engines (DRAM presets, search methods, formats) cycle through these.
SERIES = [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky", "black", "yellow")]
HATCHES = ["", "//", "..", "xx", "\\\\"]   # a second accelerator of the same engine
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.title_fontsize": 7, "legend.frameon": False,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.5, "axes.axisbelow": True, "lines.linewidth": 1.2, "lines.markersize": 4,
    "savefig.dpi": 200, "pdf.fonttype": 42,      # TrueType in PDFs: editable text, accepted by publishers
    "figure.constrained_layout.use": True,
}


def engine_colour(engine: str) -> str:
    return ENGINE_COLOURS.get(engine, OKABE_ITO["yellow"])


def series_colour(i: int) -> str:
    return SERIES[i % len(SERIES)]


def accelerator_looks(accelerators: dict[str, str]) -> dict[str, dict[str, str]]:
    """Colour from the engine; a second accelerator of the same engine keeps the colour and gets
    the next hatch (bars) and marker (lines)."""
    seen: dict[str, int] = {}
    out = {}
    for acc, engine in accelerators.items():
        k = seen.get(engine, 0)
        seen[engine] = k + 1
        out[acc] = {"color": engine_colour(engine), "hatch": HATCHES[k % len(HATCHES)],
                    "marker": MARKERS[k % len(MARKERS)]}
    return out


@contextmanager
def figure(width: float = COLUMN_IN, height: float = 2.6, nrows: int = 1, ncols: int = 1,
           **kw) -> Iterator[tuple[Figure, object]]:
    """A figure in the project style; closed on exit so long runs do not accumulate memory."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
        try:
            yield fig, axes
        finally:
            plt.close(fig)


def save(fig: Figure, out: Union[str, Path]) -> list[Path]:
    """Write ``out``.png and ``out``.pdf (``out`` is a path without suffix, or with one that is dropped)."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".png", ".pdf") else out
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with plt.rc_context(RC):
        for ext in ("png", "pdf"):
            p = stem.parent / f"{stem.name}.{ext}"
            fig.savefig(p)
            paths.append(p)
    return paths


def rotate_ticks(ax, angle: int = 35) -> None:
    for label in ax.get_xticklabels():
        label.set_rotation(angle)
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")


def energy_unit(top_pj: float) -> tuple[str, float]:
    """The unit (and its size in pJ) that shows ``top_pj`` as a number below 1000."""
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if top_pj >= scale:
            return unit, scale
    return "pJ", 1.0
