"""Objectives of a cost-aware precision search: what the simulator reports, per layer, as a cost.

An objective is a weighted sum of terms, written ``cycles:stripes``, ``energy:loom@ddr4``,
``cycles:stripes+0.5*energy:stripes`` or ``bops``. Terms:

* ``cycles:<accelerator-or-engine>[@memory]`` — total cycles (compute + stalls) on that accelerator
  and memory system; ``energy:...`` — total energy (pJ); ``dram:...`` — off-chip bits moved. The
  memory defaults to the workload's first one (``dram`` defaults to its first one with a DRAM).
* ``footprint`` — bits of every layer's input activations and weights; ``peak-memory`` — the
  largest live activation memory of any layer (its input and output together, Judd et al. 2015);
* the proxies the quantization literature optimises, so that they compete on equal terms:
  ``bops`` — Σ MACs · p_a · p_w (Sakr & Shanbhag's computational cost, "bit operations");
  ``model-size`` — Σ weights · p_w.

Everything but ``peak-memory`` is a sum over layers of a function of the layer's own precisions,
except for one coupling: a layer's output is written at the *next* layer's activation width. The
cost tables (``costaware.CostModel``) attribute the write of each activation tensor to the layer
that reads it, so every term becomes additive per layer; ``peak-memory`` is a maximum over layers,
linear in the bits, which the exact allocator handles as a min-max.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..errors import SimulatorError
from ..workload import Workload

ENGINE_METRICS = ("cycles", "energy", "dram")             # need an accelerator (and memory)
NETWORK_METRICS = ("footprint", "peak-memory", "bops", "model-size")
METRICS = ENGINE_METRICS + NETWORK_METRICS
UNITS = {"cycles": "cycles", "energy": "pJ", "dram": "bits", "footprint": "bits", "peak-memory": "bits",
         "bops": "bit-ops", "model-size": "bits"}


@dataclass(frozen=True)
class Term:
    """One column of the cost: a metric, on an accelerator and memory system for engine metrics."""

    metric: str
    accelerator: Optional[str] = None
    memory: Optional[str] = None

    @property
    def column(self) -> str:
        """The canonical name, e.g. ``cycles:stripes@on-chip`` or ``bops``."""
        return self.metric if self.accelerator is None else f"{self.metric}:{self.accelerator}@{self.memory}"

    @property
    def additive(self) -> bool:
        return self.metric != "peak-memory"


@dataclass(frozen=True)
class Objective:
    """A weighted sum of terms, minimised by the search."""

    text: str
    terms: tuple[tuple[float, Term], ...]

    @property
    def name(self) -> str:
        """Canonical form (accelerator and memory explicit): file names and report headers use it."""
        parts = [t.column if c == 1.0 else f"{c:g}*{t.column}" for c, t in self.terms]
        return "+".join(parts)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name.replace("@", "-at-").replace(":", "-"))

    def columns(self) -> list[str]:
        return [t.column for _, t in self.terms]

    def value(self, costs: dict[str, float]) -> float:
        """The objective from a mapping column -> cost (``simulated_costs`` or the cost model)."""
        return sum(c * costs[t.column] for c, t in self.terms)


def valid_names(workload: Workload) -> list[str]:
    """Every single-term objective the workload supports, for error messages and ``--help``."""
    out = []
    for m in ENGINE_METRICS:
        out += [f"{m}:{a.name}" for a in workload.accelerators]
    return out + list(NETWORK_METRICS)


def _accelerator(workload: Workload, name: str, text: str) -> str:
    names = [a.name for a in workload.accelerators]
    if name in names:
        return name
    by_engine = [a.name for a in workload.accelerators if a.engine == name]
    if len(by_engine) == 1:
        return by_engine[0]
    engines = sorted({a.engine for a in workload.accelerators})
    why = (f"engine '{name}' has {len(by_engine)} accelerators ({', '.join(by_engine)}); name one"
           if by_engine else f"unknown accelerator or engine '{name}'")
    raise SimulatorError(f"objective '{text}': {why}; accelerators: {', '.join(names)}; engines: {', '.join(engines)}")


def _memory(workload: Workload, metric: str, name: Optional[str], text: str) -> str:
    names = [m.name for m in workload.memory]
    if name is None:
        if metric == "dram":
            with_dram = [m.name for m in workload.memory if not m.on_chip]
            if not with_dram:
                raise SimulatorError(f"objective '{text}': the workload has no memory system with a DRAM "
                                     f"(memories: {', '.join(names)})")
            return with_dram[0]
        return names[0]
    if name not in names:
        raise SimulatorError(f"objective '{text}': unknown memory '{name}'; memories: {', '.join(names)}")
    return name


def parse_term(workload: Workload, text: str, whole: str = "") -> tuple[float, Term]:
    whole = whole or text
    coef = 1.0
    body = text.strip()
    if "*" in body:
        c, body = body.split("*", 1)
        try:
            coef = float(c)
        except ValueError:
            raise SimulatorError(f"objective '{whole}': '{c}' is not a number (write e.g. 0.5*energy:stripes)") from None
        if coef <= 0:
            raise SimulatorError(f"objective '{whole}': weights must be positive, got {coef:g}")
    metric, _, target = body.strip().partition(":")
    if metric not in METRICS:
        raise SimulatorError(f"objective '{whole}': unknown metric '{metric}'; valid: "
                             f"{', '.join(m + ':<accelerator>[@memory]' for m in ENGINE_METRICS)}, "
                             f"{', '.join(NETWORK_METRICS)} (e.g. {', '.join(valid_names(workload)[:3])})")
    if metric in NETWORK_METRICS:
        if target:
            raise SimulatorError(f"objective '{whole}': '{metric}' does not depend on the accelerator; write '{metric}'")
        return coef, Term(metric)
    if not target:
        raise SimulatorError(f"objective '{whole}': '{metric}' needs an accelerator, e.g. "
                             f"{metric}:{workload.accelerators[-1].name}; accelerators: "
                             f"{', '.join(a.name for a in workload.accelerators)}")
    acc, _, mem = target.partition("@")
    acc_name = _accelerator(workload, acc, whole)
    return coef, Term(metric, acc_name, _memory(workload, metric, mem or None, whole))


def parse_objective(workload: Workload, text: str) -> Objective:
    """``text`` as an ``Objective`` of ``workload``; unknown names are a ``SimulatorError`` that
    lists the valid metrics, accelerators, engines and memories."""
    if not text or not text.strip():
        raise SimulatorError(f"empty objective; valid: {', '.join(valid_names(workload))}")
    terms = tuple(parse_term(workload, part, text) for part in text.split("+"))
    return Objective(text, terms)


def engine_objectives(workload: Workload, metric: str = "cycles") -> list[Objective]:
    """``metric`` on every accelerator x memory system of the workload (``--engines all``)."""
    if metric not in ENGINE_METRICS:
        raise SimulatorError(f"--engines all needs an engine metric ({', '.join(ENGINE_METRICS)}), not '{metric}'")
    out = []
    for a in workload.accelerators:
        for m in workload.memory:
            if metric == "dram" and m.on_chip:
                continue
            out.append(parse_objective(workload, f"{metric}:{a.name}@{m.name}"))
    return out


# ------------------------------------------------------------------------ costs of a simulated profile

def simulated_costs(rows: list[dict], bits: dict[str, tuple[int, int]], specs: list) -> dict[str, float]:
    """Every cost column of one profile from the simulator's network totals (``ProfileCost.rows``):
    value-aware engines report one row per input, averaged here. ``bits`` and ``specs`` (the
    layers in network order) give the closed-form network metrics."""
    from ..footprint import peak_live_activation_bits
    from ..simulate import OUT_BITS_LAST
    acc: dict[str, list[float]] = {}
    for r in rows:
        at = f"{r['accelerator']}@{r['memory']}"
        dram = r["dram_act_read_bits"] + r["dram_weight_read_bits"] + r["dram_out_write_bits"]
        for metric, v in (("cycles", r["total_cycles"]), ("energy", r["energy_total_pj"]), ("dram", dram)):
            acc.setdefault(f"{metric}:{at}", []).append(float(v))
    out = {k: sum(v) / len(v) for k, v in acc.items()}
    a = [bits[s.name][0] for s in specs]
    w = [bits[s.name][1] for s in specs]
    out["footprint"] = float(sum(s.activation_count * x + s.weight_count * y for s, x, y in zip(specs, a, w)))
    out["peak-memory"] = float(peak_live_activation_bits(specs, a, a[1:] + [OUT_BITS_LAST])[0])
    out["bops"] = float(sum(s.macs * x * y for s, x, y in zip(specs, a, w)))
    out["model-size"] = float(sum(s.weight_count * y for s, y in zip(specs, w)))
    return out
