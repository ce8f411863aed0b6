"""Precision-profile search: which per-layer precisions keep a trained network within an accuracy
target, and what they cost on the simulated accelerators.

Methods (each writes profiles a workload can use):

* ``uniform``: the smallest single precision for every layer (``uniform.py``);
* ``judd``: Judd et al.'s per-layer sweeps of integer and fraction bits, combined (``judd.py``);
* ``sakr``: Sakr & Shanbhag's noise gains and mismatch bound (``sakr.py``);
* ``wrpn``: widened networks trained at low precision (``wrpn.py``; trains, so it has its own table);
* ``greedy`` / ``exact``: against the simulated cost of an objective (``costaware.py``, ``exact.py``,
  ``objectives.py``, ``costmodel.py``; ``docs/costaware.md``), e.g. cycles on Stripes.

``search(workload, method)`` searches on the validation split, then measures every profile found on
the held-out test split (formats fixed on the validation split) and simulates its cost.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..accuracy import Accuracy, Evaluator, evaluator_for
from ..errors import SimulatorError
from ..workload import Workload, load_workload
from .common import FoundProfile, ProfileCost, profile_cost, profile_name, profile_spec, profiles_yaml
from .judd import SensitivityTable, judd_search, sensitivity
from .sakr import NoiseGains, noise_gains, sakr_search
from .uniform import uniform_search
from .costaware import greedy_search, search_costaware
from .costmodel import CostModel, cost, cost_model_for
from .exact import allocate, exact_search
from .objectives import Objective, parse_objective

METHODS = ("uniform", "judd", "sakr", "greedy", "exact")
COSTAWARE = ("greedy", "exact")

__all__ = ["METHODS", "SearchReport", "search", "FoundProfile", "ProfileCost", "profile_cost", "profile_spec",
           "profiles_yaml", "Evaluator", "SensitivityTable", "sensitivity", "judd_search", "NoiseGains",
           "noise_gains", "sakr_search", "uniform_search", "greedy_search", "exact_search", "allocate", "CostModel",
           "cost", "cost_model_for", "Objective", "parse_objective"]


@dataclass
class SearchReport:
    """What one ``search`` call found, with the float reference and where the time went."""

    workload: str
    method: str
    float_val: Accuracy
    float_test: Accuracy
    profiles: list[FoundProfile]
    evaluations: int                           # accuracy evaluations run during the search (val split)
    cache_hits: int                            # evaluations answered from the cache
    seconds: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    references: list[FoundProfile] = field(default_factory=list)   # greedy / exact: profiles compared with

    def as_dict(self) -> dict:
        return {"workload": self.workload, "method": self.method, "float_val": self.float_val.as_dict(),
                "float_test": self.float_test.as_dict(), "profiles": [p.as_dict() for p in self.profiles],
                "evaluations": self.evaluations, "cache_hits": self.cache_hits, "seconds": self.seconds,
                "details": self.details, "references": [p.as_dict() for p in self.references]}

    def yaml(self) -> str:
        return profiles_yaml({p.name: p.spec() for p in self.profiles},
                             header=f"profiles found by: python -m simulator search {self.workload} --method {self.method}")


def _check_targets(targets: Sequence[float]) -> list[float]:
    out = []
    for t in targets:
        if not 0.0 < t <= 1.0:
            raise SimulatorError(f"--target {t}: a relative accuracy target lies in (0, 1], e.g. 0.99")
        out.append(float(t))
    if not out:
        raise SimulatorError("give at least one accuracy target, e.g. --target 0.99")
    return out


def _run_method(method: str, val: Evaluator, targets: list[float]) -> tuple[list[FoundProfile], dict]:
    found: list[FoundProfile] = []
    details: dict[str, Any] = {}
    if method == "uniform":
        for t in targets:
            r = uniform_search(val, t)
            found.append(FoundProfile(profile_name("uniform", t), "uniform", t, r.precisions, r.accuracy,
                                      details={"bits": r.bits}))
            details["table"] = {b: a.top1 for b, a in r.table.items()}
    elif method == "judd":
        t0 = time.perf_counter()
        table = sensitivity(val)
        details["sensitivity_seconds"] = time.perf_counter() - t0
        details["sensitivity"] = {f"{layer}.{tensor}": {"integer": table.integer[(layer, tensor)],
                                                        "fraction": table.fraction[(layer, tensor)],
                                                        "range_integer_bits": table.ranges[(layer, tensor)].integer_bits}
                                  for layer, tensor in table.ranges}
        for t in targets:
            r = judd_search(val, t, table)
            found.append(FoundProfile(profile_name("judd", t), "judd", t, r.precisions, r.accuracy, details={
                "minima_top1": r.minima_accuracy.top1, "shift": r.shift, "trim_steps": r.trim_steps,
                "minima": {n: [p.activations.bits, p.weights.bits] for n, p in r.minima.items()}}))
    elif method == "sakr":
        t0 = time.perf_counter()
        gains = noise_gains(val.model, val.images)
        details["noise_gain_seconds"] = time.perf_counter() - t0
        details["gains"] = {"activations": gains.activations, "weights": gains.weights}
        for t in targets:
            r = sakr_search(val, t, gains)
            found.append(FoundProfile(profile_name("sakr", t), "sakr", t, r.precisions, r.accuracy, details={
                "b_min": r.b_min, "b": r.b, "bound": r.bound, "bound_at_b_min": r.bound_at_b_min,
                "target_mismatch": r.target_mismatch, "measured_mismatch": r.accuracy.mismatch,
                "offsets": {f"{n}.{k}": o for (n, k), o in r.offsets.items()}}))
    else:
        raise SimulatorError(f"unknown search method '{method}'; valid: {', '.join(METHODS)} (and wrpn)")
    return found, details


def search(workload: Union[Workload, str, Path], method: str, targets: Sequence[float] = (0.99, 1.0),
           cost: bool = True, device: Optional[str] = None, progress: bool = False,
           objective: Union[str, Sequence[str], None] = None, engines: Optional[str] = None,
           sensitivity: str = "noise", bits: Optional[Sequence[int]] = None, compare: bool = True) -> SearchReport:
    """Find one profile per target with ``method`` on the validation split; measure each on the test
    split and (``cost``) simulate it on the workload's accelerators and memories.

    ``greedy`` / ``exact`` minimise ``objective`` (e.g. ``"cycles:stripes"``; several comma-separated),
    or with ``engines="all"`` its metric on every accelerator x memory; ``sensitivity`` (exact:
    ``noise`` or ``measured``), ``bits`` (candidate widths, default 2..16) and ``compare`` (the
    workload's uniform / Judd / Sakr profiles and the bit-operations optimum beside them) apply to them."""
    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    targets = _check_targets(targets)
    if method not in METHODS:
        raise SimulatorError(f"unknown search method '{method}'; valid: {', '.join(METHODS)}")
    val = evaluator_for(wl, "val", device=device)
    test = evaluator_for(wl, "test", calibration="val", device=device, model=val.model)
    if method in COSTAWARE:
        found, refs, details, seconds = search_costaware(wl, method, targets, val, test, objective, engines,
                                                         sensitivity, bits, cost, compare, progress)
        return SearchReport(wl.source_path or wl.name, method, val.float_accuracy, test.float_accuracy, found,
                            details["evaluations"], val.hits, seconds, details, refs)
    t0 = time.perf_counter()
    found, details = _run_method(method, val, targets)
    t1 = time.perf_counter()
    for p in found:
        p.test = test(p.precisions)
    t2 = time.perf_counter()
    if cost:
        for p in found:
            p.cost = profile_cost(wl, p.name, p.precisions, progress=progress)
    t3 = time.perf_counter()
    return SearchReport(wl.source_path or wl.name, method, val.float_accuracy, test.float_accuracy, found,
                        val.evaluations, val.hits,
                        {"search": t1 - t0, "test": t2 - t1, "cost": t3 - t2}, details)
