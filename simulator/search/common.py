"""Pieces every precision search shares: uniform profiles, tensor ranges, profile YAML, and the
simulated cost of a profile (trace export + simulation of the workload with just that profile).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from ..accuracy import Accuracy, Evaluator
from ..profiles import ProfileSpec
from ..quantize import LayerPrecision, TensorPrecision
from ..workload import Workload

# Stands in for float on the half of a layer a sweep is not looking at: ``quantized`` quantizes a
# layer's activations and weights together, and 32 fixed-point bits are below float32's own rounding
# for the ranges of these networks.
FULL_BITS = 32
TENSORS = ("activations", "weights")


def uniform(layers: list[str], bits: int) -> dict[str, LayerPrecision]:
    """Every layer's activations and weights at ``bits``, integer bits from the observed range."""
    t = TensorPrecision(bits)
    return {n: LayerPrecision(t, t) for n in layers}


def min_bits(signed: bool) -> int:
    """Fewest bits a fixed-point tensor can have: a signed one needs a sign and one more bit."""
    return 2 if signed else 1


@dataclass(frozen=True)
class TensorRange:
    """What the observed range of one tensor fixes: its integer bits (sign included) and signedness."""

    integer_bits: int
    signed: bool


def tensor_ranges(evaluator: Evaluator) -> dict[tuple[str, str], TensorRange]:
    """Integer bits and sign of every layer's (float) input activations and weights on the
    evaluator's calibration data: the formats the quantizer picks at ``FULL_BITS``."""
    fmts = evaluator.formats(uniform(evaluator.layer_names, FULL_BITS))
    out = {}
    for name in evaluator.layer_names:
        for tensor, f in zip(TENSORS, fmts[name]):
            out[(name, tensor)] = TensorRange(f.bits - f.frac, f.signed)
    return out


def element_counts(evaluator: Evaluator) -> dict[tuple[str, str], int]:
    """Values per input of each tensor: what one more bit of it costs in footprint."""
    return {(n, t): (s.activation_count if t == "activations" else s.weight_count)
            for n, s in evaluator.specs.items() for t in TENSORS}


def footprint_bits(precisions: dict[str, LayerPrecision], counts: dict[tuple[str, str], int]) -> int:
    return sum(counts[(n, t)] * getattr(p, t).bits for n, p in precisions.items() for t in TENSORS)


# ------------------------------------------------------------------------------------ results

@dataclass
class ProfileCost:
    """Network totals of one profile from the simulator (``simulator.results.totals`` rows), one per
    accelerator x memory, with the footprint beside 32-bit float."""

    rows: list[dict[str, Any]]
    seconds: float

    def row(self, accelerator: Optional[str] = None, memory: Optional[str] = None) -> dict[str, Any]:
        for r in self.rows:
            if (accelerator is None or r["accelerator"] == accelerator) and (memory is None or r["memory"] == memory):
                return r
        raise KeyError(f"no cost row for accelerator {accelerator!r}, memory {memory!r}")

    @property
    def footprint_bits(self) -> int:
        r = self.rows[0]
        return r["footprint_weight_bits"] + r["footprint_act_bits"]

    @property
    def footprint_reduction_vs_fp32(self) -> float:
        return self.rows[0]["footprint_reduction_vs_fp32"]

    def as_dict(self) -> dict:
        keep = ("accelerator", "engine", "memory", "input", "total_cycles", "compute_cycles", "stall_cycles",
                "speedup", "energy_total_pj", "footprint_weight_bits", "footprint_act_bits",
                "footprint_fp32_bits", "footprint_reduction_vs_fp32")
        return {"rows": [{k: r[k] for k in keep} for r in self.rows], "seconds": self.seconds}


@dataclass
class FoundProfile:
    """One profile a method found for one accuracy target, with its accuracy and cost."""

    name: str                                   # e.g. "judd-99"
    method: str
    target: float                               # relative top-1, e.g. 0.99
    precisions: dict[str, LayerPrecision]       # every format explicit (bits, frac, signed)
    val: Accuracy
    test: Optional[Accuracy] = None
    cost: Optional[ProfileCost] = None
    details: dict[str, Any] = field(default_factory=dict)

    def bits(self) -> dict[str, tuple[int, int]]:
        """Per layer: (activation bits, weight bits)."""
        return {n: (p.activations.bits, p.weights.bits) for n, p in self.precisions.items()}

    def spec(self, source: str = "") -> ProfileSpec:
        return profile_spec(self.precisions, source=source or f"python -m simulator search --method {self.method} "
                            f"--target {self.target}", description=self._describe())

    def _describe(self) -> str:
        text = f"{self.method} at {self.target:.0%} of float top-1; val top-1 {self.val.top1:.4f}"
        if self.test is not None:
            text += f", test top-1 {self.test.top1:.4f} (float {self.test.float_top1:.4f})"
        return text

    def as_dict(self) -> dict:
        return {"name": self.name, "method": self.method, "target": self.target,
                "precisions": {n: {"activations": p.activations.as_dict(), "weights": p.weights.as_dict()}
                               for n, p in self.precisions.items()},
                "val": self.val.as_dict(), "test": None if self.test is None else self.test.as_dict(),
                "cost": None if self.cost is None else self.cost.as_dict(), "details": self.details}


def profile_name(method: str, target: float) -> str:
    return f"{method}-{round(target * 100, 2):g}"


def _entry(t: TensorPrecision) -> dict:
    out: dict[str, Any] = {"bits": t.bits}
    if t.frac is not None:
        out["frac"] = t.frac
    if t.signed is not None:
        out["signed"] = t.signed
    return out


def profile_spec(precisions: dict[str, LayerPrecision], source: str = "", description: str = "") -> ProfileSpec:
    """A workload profile (per-layer mapping form) holding exactly ``precisions``."""
    return ProfileSpec.model_validate({
        "activations": {n: _entry(p.activations) for n, p in precisions.items()},
        "weights": {n: _entry(p.weights) for n, p in precisions.items()},
        "layers": "all", "source": source, "description": description,
    })


def profiles_yaml(specs: dict[str, ProfileSpec], header: str = "") -> str:
    """A ``profiles:`` block that can be pasted into a workload file."""
    data = {"profiles": {n: s.model_dump(exclude_defaults=True) for n, s in specs.items()}}
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    return "".join(f"# {line}\n" for line in header.splitlines()) + text


def profile_cost(workload: Workload, name: str, precisions: dict[str, LayerPrecision],
                 progress: bool = False) -> ProfileCost:
    """Simulated cost of one profile: the workload with only this profile, exported and simulated on
    every accelerator x memory system it lists. Traces are content-addressed, so a profile already
    exported is reused."""
    import time

    from ..simulate import run_workload
    t0 = time.perf_counter()
    wl = workload.model_copy(update={"profiles": {name: profile_spec(precisions)}})
    result = run_workload(wl, progress=progress)
    return ProfileCost(result.totals(), time.perf_counter() - t0)
