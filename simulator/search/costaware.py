"""Search against the simulated cost: per-layer precisions that minimise an objective of the simulator
(cycles, energy, DRAM traffic on a named accelerator and memory; footprint; peak memory; or the
proxies bit-operations and model size) at a guaranteed accuracy on the validation split.

Methods:

* ``greedy`` — Judd et al.'s descent, cost-aware: from the narrowest uniform width that meets the
  target, each step lowers the tensor that saves the most cost per unit of accuracy lost
  (Δcost / (Δtop-1 + half an input)), by as many bits as it takes to save any cost at all (Bit
  Fusion's 8 → 4). Lazy: a tensor's score is re-measured only when it reaches the top of the queue;
  a tensor whose step misses the target is frozen, as in Judd et al.'s descent.
* ``exact`` — a knapsack over per-layer (p_a, p_w) cells solved as an integer program
  (``exact.py``), the sensitivity from Sakr & Shanbhag's noise gains (default) or measured; the
  allocation that meets the target is then polished by the same cost-aware descent (the
  sensitivity is a model: the descent takes back bits the measured accuracy does not need).

Costs come from ``costmodel.CostModel`` tables built once; every returned profile is measured on
the validation split (it meets the target there) and, in ``search``, on the held-out test split and
simulated in full.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..accuracy import Accuracy, Evaluator
from ..errors import SimulatorError
from .common import FoundProfile, profile_name
from .costmodel import Bits, CostModel, fixed_precisions
from .exact import Sensitivity, exact_search, measured_sensitivity, noise_sensitivity
from .objectives import Objective

COSTAWARE_METHODS = ("greedy", "exact")
SENSITIVITIES = ("noise", "measured")


@dataclass
class GreedyResult:
    bits: Bits
    accuracy: Accuracy
    model_cost: float
    start_bits: int                 # the uniform width the descent started from
    steps: int                      # moves accepted


def uniform_start(evaluator: Evaluator, model: CostModel, target: float) -> tuple[int, Accuracy]:
    """The narrowest width, among the candidates, from which every wider uniform profile meets the target."""
    widths = sorted(set(b for A in model.act_bits for b in A) & set(b for W in model.weight_bits for b in W))
    best = None
    for b in reversed(widths):
        bits = {n: (max(b, A[0]), max(b, W[0])) for n, A, W in zip(model.names, model.act_bits, model.weight_bits)}
        acc = evaluator(fixed_precisions(bits, model.ranges))
        if not acc.meets(target):
            break
        best = (b, acc)
    if best is None:
        raise SimulatorError(f"greedy: even {widths[-1]} bits everywhere miss {target:.0%} of float top-1")
    return best


def greedy_search(evaluator: Evaluator, model: CostModel, objective: Objective | str, target: float,
                  start: Optional[Bits] = None) -> GreedyResult:
    """Cost-aware descent (see the module docstring) on ``evaluator``'s split, from ``start`` (a
    profile that meets the target) or the narrowest uniform width that does."""
    obj = model.objective(objective)
    if start is None:
        width, acc = uniform_start(evaluator, model, target)
        bits = {n: (max(width, A[0]), max(width, W[0])) for n, A, W in zip(model.names, model.act_bits, model.weight_bits)}
    else:
        width, bits = 0, dict(start)
        acc = evaluator(fixed_precisions(bits, model.ranges))
        if not acc.meets(target):
            raise SimulatorError(f"greedy: the start profile misses {target:.0%} of float top-1")
    eps = 0.5 / evaluator.n
    tensors = [(l, k) for l in range(len(model.names)) for k in (0, 1)]       # k: 0 activations, 1 weights

    def step(b: Bits, t: tuple[int, int]) -> Optional[tuple[Bits, float]]:
        """The next narrower width of tensor t that lowers the cost, and the cost it saves."""
        l, k = t
        name = model.names[l]
        cands = (model.act_bits if k == 0 else model.weight_bits)[l]
        now = model.cost(obj, b)
        for w in sorted((c for c in cands if c < b[name][k]), reverse=True):
            pair = list(b[name])
            pair[k] = w
            trial = {**b, name: tuple(pair)}
            saved = now - model.cost(obj, trial)
            if saved > 1e-9 * max(1.0, abs(now)):
                return trial, saved
        return None

    def score(t: tuple[int, int]) -> Optional[tuple[float, Bits, Accuracy]]:
        s = step(bits, t)
        if s is None:
            return None
        trial, saved = s
        a = evaluator(fixed_precisions(trial, model.ranges))
        return saved / (max(acc.top1 - a.top1, 0.0) + eps), trial, a

    version, moves = 0, 0
    heap: list[tuple[float, int, tuple[int, int]]] = []
    for t in tensors:
        s = score(t)
        if s is not None:
            heapq.heappush(heap, (-s[0], version, t))
    while heap:
        neg, ver, t = heapq.heappop(heap)
        s = score(t)                      # fresh: the profile may have changed since it was queued
        if s is None:
            continue
        if ver != version and heap and -s[0] > heap[0][0]:
            heapq.heappush(heap, (-s[0], version, t))     # no longer the best: requeue at its fresh score
            continue
        _, trial, a = s
        if not a.meets(target):
            continue                      # frozen: narrowing others only makes it worse
        bits, acc, version, moves = trial, a, version + 1, moves + 1
        s = score(t)
        if s is not None:
            heapq.heappush(heap, (-s[0], version, t))
    return GreedyResult(bits, acc, model.cost(obj, bits), width, moves)


# ------------------------------------------------------------------------------------ one workload

def make_sensitivity(kind: str, evaluator: Evaluator, model: CostModel) -> Sensitivity:
    if kind == "noise":
        return noise_sensitivity(evaluator, model)
    if kind == "measured":
        return measured_sensitivity(evaluator, model)
    raise SimulatorError(f"unknown sensitivity '{kind}'; valid: {', '.join(SENSITIVITIES)}")


def profile_label(method: str, objective: Objective, target: float) -> str:
    return profile_name(f"{method}-{objective.slug}", target)


def run_costaware(method: str, val: Evaluator, model: CostModel, objectives: Sequence[Objective],
                  targets: Sequence[float], sensitivity: str = "noise",
                  sens: Optional[Sensitivity] = None, polish: bool = True) -> tuple[list[FoundProfile], dict[str, Any]]:
    """One profile per (objective, target) with ``method``; details hold the evaluations and time of each."""
    if method not in COSTAWARE_METHODS:
        raise SimulatorError(f"unknown cost-aware method '{method}'; valid: {', '.join(COSTAWARE_METHODS)}")
    details: dict[str, Any] = {"objectives": [o.name for o in objectives]}
    t0 = time.perf_counter()
    for o in objectives:
        for _, term in o.terms:
            model.table(term)
    details["cost_table_seconds"] = time.perf_counter() - t0
    details["cost_simulations"] = model.simulations
    if method == "exact" and sens is None:
        sens = make_sensitivity(sensitivity, val, model)
    if sens is not None:
        details["sensitivity"] = {"kind": sens.kind, "evaluations": sens.evaluations, "seconds": sens.seconds}
    found = []
    for o in objectives:
        for t in targets:
            before, t1 = val.evaluations, time.perf_counter()
            if method == "greedy":
                r = greedy_search(val, model, o, t)
                extra = {"start_bits": r.start_bits, "steps": r.steps}
            else:
                r = exact_search(val, model, o, t, sens)
                extra = {"budget": r.budget, "repaired_bits": r.repaired_bits, "budgets_tried": len(r.tried),
                         "sensitivity": sens.kind, "allocated_model_cost": r.model_cost,
                         "allocated_bits": {n: list(b) for n, b in r.bits.items()}}
                if polish:
                    # the noise model is only a model: a cost-aware descent from the allocation takes
                    # back the bits the measured accuracy does not need
                    g = greedy_search(val, model, o, t, start=r.bits)
                    extra["polish_steps"] = g.steps
                    r = g
            found.append(FoundProfile(profile_label(method, o, t), method, t, val.resolve(fixed_precisions(r.bits, model.ranges)),
                                      r.accuracy, details={"objective": o.name, "model_cost": r.model_cost,
                                                           "evaluations": val.evaluations - before,
                                                           "seconds": time.perf_counter() - t1, **extra}))
    return found, details


# ------------------------------------------------------------------------------------ search(), compared

def resolve_objectives(workload, model: CostModel, objective: Optional[Sequence[str] | str] = None,
                       engines: Optional[str] = None) -> tuple[list[Objective], list[str]]:
    """The objectives a search runs: ``objective`` (comma-separated or a list), or with ``engines``
    ("all") the objective's metric (default cycles) on every accelerator x memory. Objectives
    whose cost no precision changes (a bit-parallel engine with everything on chip) are left out
    and named in the second list."""
    from .objectives import ENGINE_METRICS, engine_objectives
    texts = [o for o in (objective.split(",") if isinstance(objective, str) else (objective or [])) if o.strip()]
    if engines is not None:
        if engines != "all":
            raise SimulatorError(f"--engines '{engines}': only 'all' is supported (every accelerator x memory)")
        metric = texts[0].split(":")[0].strip() if texts else "cycles"
        if metric not in ENGINE_METRICS:
            raise SimulatorError(f"--engines all: objective '{texts[0]}' has no engine metric; "
                                 f"use one of {', '.join(ENGINE_METRICS)}")
        objs = engine_objectives(workload, metric)
    else:
        if not texts:
            raise SimulatorError("greedy / exact search needs an objective, e.g. --objective cycles:stripes "
                                 "(or --engines all)")
        objs = [model.objective(t) for t in texts]
    kept, flat = [], []
    for o in objs:
        tables = model.layer_costs(o)
        if engines is not None and model.peak_weight(o) == 0 and all(float(t.max() - t.min()) == 0 for t in tables):
            flat.append(o.name)
        else:
            kept.append(o)
    return kept, flat


def _reference_profiles(workload, specs, targets: Sequence[float]) -> list[tuple[str, str, float, dict]]:
    """The workload's own uniform / Judd / Sakr profiles at the searched targets (names like judd-99)."""
    from ..profiles import resolve_profile
    out = []
    for t in targets:
        for m in ("uniform", "judd", "sakr"):
            name = profile_name(m, t)
            if name in workload.profiles:
                out.append((name, m, t, resolve_profile(name, workload.profiles[name], specs)))
    return out


def ratio_table(found: Sequence[FoundProfile], references: Sequence[FoundProfile]) -> list[dict[str, Any]]:
    """Per profile found: its simulated objective against each reference profile at the same target
    (below 1: the cost-aware profile is cheaper on the engine it was searched for)."""
    rows = []
    for p in found:
        costs, obj = p.details.get("costs"), p.details.get("objective_terms")
        if not costs or not obj:
            continue
        mine = sum(c * costs[col] for c, col in obj)
        row = {"profile": p.name, "objective": p.details["objective"], "target": p.target, "cost": mine}
        for r in references:
            rc = r.details.get("costs")
            if rc and abs(r.target - p.target) < 1e-9:
                row[f"vs {r.name.rsplit('-', 1)[0] if r.method == 'bops-optimal' else r.method}"] = \
                    mine / sum(c * rc[col] for c, col in obj)
        rows.append(row)
    return rows


def engine_matrix(found: Sequence[FoundProfile]) -> dict[str, Any]:
    """Per target: rows = the profile searched for objective X, columns = its simulated cost on
    objective Y, divided by the cost of Y's own profile on Y (1 on the diagonal)."""
    out: dict[str, Any] = {}
    for t in sorted({p.target for p in found}):
        ps = [p for p in found if p.target == t and p.details.get("costs") and len(p.details["objective_terms"]) == 1]
        cols = [p.details["objective_terms"][0][1] for p in ps]
        own = {col: p.details["costs"][col] for col, p in zip(cols, ps)}
        out[f"{t:g}"] = {"rows": [p.details["objective"] for p in ps], "columns": cols,
                         "ratio": [[p.details["costs"][c] / own[c] if own[c] else float("nan") for c in cols] for p in ps]}
    return out


def search_costaware(workload, method: str, targets: Sequence[float], val: Evaluator, test: Evaluator,
                     objective: Optional[Sequence[str] | str] = None, engines: Optional[str] = None,
                     sensitivity: str = "noise", bits: Optional[Sequence[int]] = None, cost: bool = True,
                     compare: bool = True, progress: bool = False,
                     value_inputs: Optional[int] = None) -> tuple[list[FoundProfile], list[FoundProfile], dict, dict]:
    """``greedy`` / ``exact`` for every objective and target, each profile measured on the test split
    and simulated in full; with ``compare``, the workload's uniform / Judd / Sakr profiles and the
    bit-operations-optimal profile of the same method beside them, and the cost ratios."""
    from .common import profile_cost, tensor_ranges
    from .costmodel import DEFAULT_BITS
    from .objectives import parse_objective, simulated_costs
    specs = [val.specs[n] for n in val.layer_names]
    model = CostModel(workload, specs, tensor_ranges(val), tuple(bits or DEFAULT_BITS), value_inputs)
    objectives, flat = resolve_objectives(workload, model, objective, engines)
    if sensitivity not in SENSITIVITIES:
        raise SimulatorError(f"unknown sensitivity '{sensitivity}'; valid: {', '.join(SENSITIVITIES)}")
    t0, e0 = time.perf_counter(), val.evaluations
    sens = make_sensitivity(sensitivity, val, model) if method == "exact" else None
    found, details = _run_all(method, val, model, objectives, targets, sens)
    bops = parse_objective(workload, "bops")
    extra: list[FoundProfile] = []
    if compare and all(o.name != "bops" for o in objectives):
        extra, _ = _run_all(method, val, model, [bops], targets, sens)
        for p in extra:
            p.method = "bops-optimal"
    _seed_from_each_other(val, model, objectives, found, extra)
    details["evaluations"] = val.evaluations - e0
    details["flat_objectives"] = flat
    t1 = time.perf_counter()
    references: list[FoundProfile] = []
    if compare:
        for name, m, t, prec in _reference_profiles(workload, specs, targets):
            references.append(FoundProfile(name, m, t, prec, val(prec), details={"from": "workload profiles"}))
        if extra:
            references += extra
        else:
            references += [p for p in found if p.details["objective"] == "bops"]
    for p in found + references:
        p.test = test(p.precisions)
    t2 = time.perf_counter()
    all_objs = objectives + [parse_objective(workload, "bops")]
    for p in found + references:
        obj = next((o for o in all_objs if o.name == p.details.get("objective")), None)
        if obj is not None:
            p.details["objective_terms"] = [(c, term.column) for c, term in obj.terms]
            p.details["model_costs"] = model.columns([obj], p.bits())
        if cost:
            p.cost = profile_cost(workload, p.name, p.precisions, progress=progress)
            p.details["costs"] = simulated_costs(p.cost.rows, p.bits(), specs)
    if cost:
        details["ratios"] = ratio_table(found, references)
        if engines is not None:
            details["matrix"] = engine_matrix(found)
    t3 = time.perf_counter()
    details["cost_model"] = {"simulations": model.simulations, "seconds": model.seconds,
                             "candidate_bits": [min(bits or DEFAULT_BITS), max(bits or DEFAULT_BITS)]}
    return found, references, details, {"search": t1 - t0, "test": t2 - t1, "cost": t3 - t2}


def _run_all(method: str, val: Evaluator, model: CostModel, objectives: Sequence[Objective], targets: Sequence[float],
             sens: Optional[Sensitivity]) -> tuple[list[FoundProfile], dict]:
    """``run_costaware`` one (objective, target) at a time, so that a target no profile within the
    candidate widths meets is reported and skipped instead of ending the search."""
    found, details, skipped = [], {}, []
    for o in objectives:
        for t in targets:
            try:
                f, d = run_costaware(method, val, model, [o], [t], sens=sens)
            except SimulatorError as e:
                skipped.append({"objective": o.name, "target": t, "why": str(e)})
                continue
            found += f
            details.setdefault("cost_table_seconds", 0.0)
            details["cost_table_seconds"] += d["cost_table_seconds"]
            if "sensitivity" in d:
                details["sensitivity"] = d["sensitivity"]
    details["skipped"] = skipped
    return found, details


def _seed_from_each_other(val: Evaluator, model: CostModel, objectives: Sequence[Objective],
                          found: list[FoundProfile], others: Sequence[FoundProfile]) -> None:
    """Every profile found met its target on the validation split, so each is a valid start for the
    other objectives: where one found for objective Y (or the bit-operations optimum) is cheaper on
    X than X's own, X's search continues with the cost-aware descent from it and keeps the result.
    Both searches are local (the descent) or exact only for a model of accuracy (the allocation), so
    this is what makes a profile searched for X the cheapest on X of everything searched."""
    by_obj = {o.name: o for o in objectives}
    for i, p in enumerate(found):
        o = by_obj.get(p.details["objective"])
        if o is None:
            continue
        pool = [q for q in list(found) + list(others) if q is not p and q.target == p.target]
        mine = model.cost(o, p.bits())
        cheaper = sorted((model.cost(o, q.bits()), k) for k, q in enumerate(pool) if model.cost(o, q.bits()) < mine)
        if not cheaper:
            continue
        src = pool[cheaper[0][1]]
        before = val.evaluations
        g = greedy_search(val, model, o, p.target, start=src.bits())
        found[i] = FoundProfile(p.name, p.method, p.target, val.resolve(fixed_precisions(g.bits, model.ranges)),
                                g.accuracy, details={**p.details, "model_cost": g.model_cost,
                                                     "seeded_from": src.details.get("objective", src.name),
                                                     "own_model_cost": mine,
                                                     "evaluations": p.details["evaluations"] + val.evaluations - before})
