"""Exact allocation of per-layer precisions against a simulated cost.

Per-layer costs are additive (``costmodel``), and so is a per-tensor sensitivity: Sakr & Shanbhag's
mismatch bound is a sum over tensors of Δ_t² E_t, and a measured per-tensor drop is summed the same
way (an additive model of how errors combine). Choosing one (p_a, p_w) per layer to minimise the
cost with the summed sensitivity within a budget is a multiple-choice knapsack, solved exactly as an
integer program: binary x[l, a, w], one per layer,

    min  Σ cost[l,a,w] x[l,a,w] (+ c · z)   s.t.  Σ_{a,w} x[l,a,w] = 1 for every l,
                                                   Σ noise[l,a,w] x[l,a,w] <= budget,
                                                   z >= in_l · a_l + out_l · a_{l+1}   (peak-memory only)

with SciPy's ``milp`` (HiGHS; branch and bound to a zero gap), then, among the cheapest, the profile
with the least noise (free bits are spent on accuracy). The budget is not known in advance (the
bound is loose, the additive model optimistic), so ``exact_search`` bisects it on the measured
accuracy: each budget's optimum is evaluated for real, the cheapest one that meets the target is
kept, and the cheapest one that missed is repaired (a bit added where it buys the most predicted
noise per unit of cost, until the target holds) in case that ends cheaper.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from ..accuracy import Accuracy, Evaluator
from ..errors import SimulatorError
from ..simulate import OUT_BITS_LAST
from .costmodel import Bits, CostModel, fixed_precisions
from .objectives import Objective


@dataclass(frozen=True)
class Peak:
    """The peak-memory term: weight, per layer (input count, output count), candidate activation widths."""

    weight: float
    live: Sequence[tuple[int, int]]
    act_bits: Sequence[Sequence[int]]
    out_last: int = OUT_BITS_LAST


@dataclass(frozen=True)
class Allocation:
    choice: tuple[tuple[int, int], ...]       # per layer: (activation index, weight index)
    cost: float
    noise: float


def allocation_value(costs: Sequence[np.ndarray], noise: Sequence[np.ndarray], choice: Sequence[tuple[int, int]],
                     peak: Optional[Peak] = None) -> tuple[float, float]:
    """(cost, noise) of one choice, the way the allocator counts them."""
    c = sum(float(t[i, j]) for t, (i, j) in zip(costs, choice))
    n = sum(float(t[i, j]) for t, (i, j) in zip(noise, choice))
    if peak is not None and peak.weight:
        a = [peak.act_bits[l][i] for l, (i, _) in enumerate(choice)] + [peak.out_last]
        c += peak.weight * max(i_n * a[l] + o_n * a[l + 1] for l, (i_n, o_n) in enumerate(peak.live))
    return c, n


def allocate(costs: Sequence[np.ndarray], noise: Sequence[np.ndarray], budget: float,
             peak: Optional[Peak] = None) -> Optional[Allocation]:
    """The cheapest choice of one (a, w) cell per layer whose summed noise is within ``budget`` (and,
    among those, the least noisy); None when no choice fits."""
    sizes = [t.size for t in costs]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_x = int(offsets[-1])
    has_peak = peak is not None and peak.weight > 0
    n = n_x + (1 if has_peak else 0)
    # one cell per layer is chosen, so each layer's cheapest cell is a constant: take it out, and
    # scale what is left to a top of 1e6 (HiGHS stops at an absolute gap of 1e-6)
    c_flat = np.concatenate([np.asarray(t, float).ravel() - float(np.min(t)) for t in costs])
    v_flat = np.concatenate([np.asarray(t, float).ravel() for t in noise])
    if budget < sum(float(np.min(t)) for t in noise) * (1 - 1e-12):
        return None
    # the budget row is scaled to O(1): HiGHS' feasibility tolerance is absolute
    top = float(np.abs(c_flat).max())
    if has_peak:
        widest = [max(b) for b in peak.act_bits] + [peak.out_last]
        top = max(top, peak.weight * max(i_n * widest[l] + o_n * widest[l + 1] for l, (i_n, o_n) in enumerate(peak.live)))
    c_scale = (top if top > 0 else 1.0) / 1e6
    # the budget row in units of the budget: a cell over budget can never be chosen (its variable is
    # fixed at 0 and its coefficient capped), so coefficients lie in [0, 1] whatever the noise range
    if budget > 0:
        v_rel = v_flat / budget
    else:
        v_rel = np.where(v_flat > 0, np.inf, 0.0)
    banned = v_rel > 1.0
    v_rel = np.minimum(v_rel, 1.0)
    a = lil_matrix((len(costs) + 1 + (len(costs) if has_peak else 0), n))
    lb, ub = [], []
    for l in range(len(costs)):
        a[l, offsets[l]:offsets[l + 1]] = 1.0
        lb.append(1.0)
        ub.append(1.0)
    a[len(costs), :n_x] = v_rel
    lb.append(-np.inf)
    ub.append(1.0)
    obj = np.zeros(n)
    obj[:n_x] = c_flat / c_scale
    if has_peak:
        # z >= in_l * a_l + out_l * a_{l+1}, in units of c_scale / weight so z's cost is O(1)
        unit = c_scale / peak.weight
        obj[n_x] = 1.0
        for l, (i_n, o_n) in enumerate(peak.live):
            row = len(costs) + 1 + l
            wn = costs[l].shape[1]
            acts = np.repeat(np.asarray(peak.act_bits[l], float), wn)
            a[row, offsets[l]:offsets[l + 1]] = i_n * acts / unit
            const = 0.0
            if l + 1 < len(costs):
                wn1 = costs[l + 1].shape[1]
                a[row, offsets[l + 1]:offsets[l + 2]] = o_n * np.repeat(np.asarray(peak.act_bits[l + 1], float), wn1) / unit
            else:
                const = o_n * peak.out_last / unit
            a[row, n_x] = -1.0
            lb.append(-np.inf)
            ub.append(-const)
    integrality = np.ones(n)
    upper = np.ones(n)
    upper[:n_x][banned] = 0.0
    if has_peak:
        integrality[n_x] = 0
        upper[n_x] = np.inf
    a = a.tocsr()
    ub = np.array(ub)
    bounds = Bounds(np.zeros(n), upper)
    opts = {"mip_rel_gap": 0.0, "disp": False}

    def decode(x: np.ndarray) -> tuple[tuple[int, int], ...]:
        return tuple(divmod(int(np.argmax(x[offsets[l]:offsets[l + 1]])), t.shape[1]) for l, t in enumerate(costs))

    # HiGHS accepts a constraint violated by its feasibility tolerance: a choice over the budget in
    # exact arithmetic is cut off by tightening the budget row past it, and solved again
    limit = 1.0
    for _ in range(4):
        ub[len(costs)] = limit
        res = milp(obj, constraints=[LinearConstraint(a, np.array(lb), ub)], integrality=integrality,
                   bounds=bounds, options=opts)
        if res.x is None:
            return None
        choice = decode(res.x)
        c, v = allocation_value(costs, noise, choice, peak)
        if v <= budget:
            break
        limit -= (v - budget) / budget + 1e-9
    else:
        return None
    # among the cheapest, the least noise (free bits are spent on accuracy): a second program; its
    # answer is kept only where it is no dearer in exact arithmetic
    cost_row = lil_matrix((1, n))
    cost_row[0, :] = obj
    tie = LinearConstraint(cost_row.tocsr(), -np.inf, res.fun + 1e-9 * max(1.0, abs(res.fun)))
    obj2 = np.zeros(n)
    obj2[:n_x] = v_rel
    res2 = milp(obj2, constraints=[LinearConstraint(a, np.array(lb), ub), tie], integrality=integrality,
                bounds=bounds, options=opts)
    if res2.x is not None:
        choice2 = decode(res2.x)
        c2, v2 = allocation_value(costs, noise, choice2, peak)
        if c2 <= c and v2 <= budget:
            choice, c, v = choice2, c2, v2
    return Allocation(choice, c, v)


# ------------------------------------------------------------------------------------ sensitivity

@dataclass
class Sensitivity:
    """Per layer, the predicted error of each candidate activation width and weight width, additive
    over tensors: ``kind`` "noise" (Sakr & Shanbhag's Δ²E terms of the mismatch bound) or "measured"
    (mismatch against float of the tensor quantized alone, others at full precision)."""

    kind: str
    act: list[np.ndarray]        # per layer, one value per candidate activation width
    weight: list[np.ndarray]
    evaluations: int = 0
    seconds: float = 0.0

    def tables(self) -> list[np.ndarray]:
        return [a[:, None] + w[None, :] for a, w in zip(self.act, self.weight)]


def noise_sensitivity(evaluator: Evaluator, model: CostModel, gains=None) -> Sensitivity:
    """Δ_t(b)² E_t with Δ = 2^-(b - I_t): Sakr & Shanbhag's per-tensor terms at each candidate width."""
    import time

    from .sakr import noise_gains
    t0 = time.perf_counter()
    gains = gains or noise_gains(evaluator.model, evaluator.images)
    act, wgt = [], []
    for name, A, W in zip(model.names, model.act_bits, model.weight_bits):
        for tensor, cands, out in (("activations", A, act), ("weights", W, wgt)):
            e = gains.of((name, tensor))
            i = model.ranges[(name, tensor)].integer_bits
            out.append(np.array([4.0 ** -(b - i) * e for b in cands]))
    return Sensitivity("noise", act, wgt, 0, time.perf_counter() - t0)


def measured_sensitivity(evaluator: Evaluator, model: CostModel, floor: float = 0.9) -> Sensitivity:
    """Each tensor alone at every candidate width (others at full precision), widest first: its
    mismatch against the float network, made non-increasing in the width; below ``floor`` of float
    top-1 the sweep stops and narrower widths count as a mismatch of 1."""
    import time

    from .common import FULL_BITS
    from ..quantize import LayerPrecision, TensorPrecision
    t0, before = time.perf_counter(), evaluator.evaluations
    full = TensorPrecision(FULL_BITS)
    act, wgt = [], []
    for name, A, W in zip(model.names, model.act_bits, model.weight_bits):
        for tensor, cands, out in (("activations", A, act), ("weights", W, wgt)):
            r = model.ranges[(name, tensor)]
            vals = np.ones(len(cands))
            worst = 0.0
            for k in range(len(cands) - 1, -1, -1):
                t = TensorPrecision(cands[k], cands[k] - r.integer_bits, r.signed)
                p = LayerPrecision(t, full) if tensor == "activations" else LayerPrecision(full, t)
                acc = evaluator({name: p})
                worst = max(worst, acc.mismatch)
                vals[k] = worst
                if acc.top1 < floor * evaluator.float_top1:
                    break
            out.append(vals)
    return Sensitivity("measured", act, wgt, evaluator.evaluations - before, time.perf_counter() - t0)


# ------------------------------------------------------------------------------------ search

@dataclass
class ExactResult:
    bits: Bits
    accuracy: Accuracy
    model_cost: float
    budget: float
    repaired_bits: int                         # bits added by the repair (0: a bisection optimum)
    tried: list[dict[str, Any]] = field(default_factory=list)   # every budget: cost, noise, top-1, met


def _bits_of(model: CostModel, choice: Sequence[tuple[int, int]]) -> Bits:
    return {n: (model.act_bits[l][i], model.weight_bits[l][j]) for l, (n, (i, j)) in enumerate(zip(model.names, choice))}


def exact_search(evaluator: Evaluator, model: CostModel, objective: Objective | str, target: float,
                 sens: Sensitivity, steps: int = 10, max_repair: int = 64) -> ExactResult:
    """Bisect the sensitivity budget; at each budget the exact optimum is evaluated on the split;
    return the cheapest profile (by the cost model) that meets ``target``."""
    obj = model.objective(objective)
    costs = model.layer_costs(obj)
    noise = sens.tables()
    pw = model.peak_weight(obj)
    peak = Peak(pw, model.live_coefficients(), model.act_bits) if pw else None
    ranges = model.ranges
    tried: list[dict[str, Any]] = []

    def evaluate(al: Allocation, budget: float) -> tuple[Bits, Accuracy]:
        bits = _bits_of(model, al.choice)
        acc = evaluator(fixed_precisions(bits, ranges))
        tried.append({"budget": budget, "model_cost": al.cost, "noise": al.noise, "top1": acc.top1,
                      "meets": acc.meets(target), "bits": {n: list(b) for n, b in bits.items()}})
        return bits, acc

    lo = sum(float(t.min()) for t in noise) * (1 + 1e-9)     # the least-noise profile, with rounding room
    hi = sum(float(t.max()) for t in noise)
    best: Optional[tuple[float, Bits, Accuracy, float]] = None
    fail: Optional[tuple[Allocation, float]] = None
    b_pass, b_fail = lo, None
    al = allocate(costs, noise, lo, peak)
    if al is None:
        raise SimulatorError("exact allocation: no profile fits even the smallest noise budget")
    bits, acc = evaluate(al, lo)
    if acc.meets(target):
        best = (al.cost, bits, acc, lo)
    else:
        fail = (al, lo)
    al_hi = allocate(costs, noise, hi, peak)
    bits_hi, acc_hi = evaluate(al_hi, hi)
    if acc_hi.meets(target):
        best = (al_hi.cost, bits_hi, acc_hi, hi)
        b_pass = hi
    else:
        b_fail = hi
        if fail is None or al_hi.cost < fail[0].cost:
            fail = (al_hi, hi)
    for _ in range(steps if best is not None and b_fail is not None else 0):
        mid = math.sqrt(max(b_pass, hi * 1e-30) * b_fail)
        al = allocate(costs, noise, mid, peak)
        bits, acc = evaluate(al, mid)
        if acc.meets(target):
            if best is None or al.cost < best[0]:
                best = (al.cost, bits, acc, mid)
            b_pass = mid
        else:
            if fail is None or al.cost < fail[0].cost or fail[1] > mid:
                fail = (al, mid)
            b_fail = mid
        if b_fail / max(b_pass, hi * 1e-30) < 1.05:
            break

    repaired = 0
    if fail is not None and (best is None or fail[0].cost < best[0]):
        choice = list(fail[0].choice)
        bits, acc = _bits_of(model, choice), None
        for _ in range(max_repair):
            acc = evaluator(fixed_precisions(bits, ranges))
            if acc.meets(target):
                break
            choice = _repair_step(costs, noise, choice, peak)
            if choice is None:
                break
            repaired += 1
            bits = _bits_of(model, choice)
        if acc is not None and acc.meets(target):
            c, _ = allocation_value(costs, noise, choice, peak)
            tried.append({"budget": fail[1], "model_cost": c, "repaired_bits": repaired, "top1": acc.top1,
                          "meets": True, "bits": {n: list(b) for n, b in bits.items()}})
            if best is None or c < best[0]:
                best = (c, bits, acc, fail[1])
            else:
                repaired = 0
        else:
            repaired = 0
    if best is None:
        raise SimulatorError(f"exact allocation: no profile within the candidate widths meets {target:.0%} of "
                             f"float top-1 (widest: {acc_hi.top1:.4f} against {evaluator.float_top1:.4f})")
    return ExactResult(best[1], best[2], best[0], best[3], repaired, tried)


def _repair_step(costs, noise, choice: list[tuple[int, int]], peak: Optional[Peak]) -> Optional[list[tuple[int, int]]]:
    """One bit more on the tensor that removes the most predicted noise per unit of added cost."""
    base_c, base_n = allocation_value(costs, noise, choice, peak)
    best, best_score = None, -1.0
    for l, (i, j) in enumerate(choice):
        for move in ((i + 1, j), (i, j + 1)):
            if move[0] >= costs[l].shape[0] or move[1] >= costs[l].shape[1]:
                continue
            trial = choice[:l] + [move] + choice[l + 1:]
            c, n = allocation_value(costs, noise, trial, peak)
            gain = base_n - n
            if gain <= 0:
                continue
            score = gain / max(c - base_c, 1e-12 * max(1.0, abs(base_c)))
            if score > best_score:
                best, best_score = trial, score
    if best is None:
        # no single bit is predicted to help (a measured sensitivity is flat there): one more bit
        # on every tensor that has one, as Judd et al.'s descent does from the combined minima
        wider = [(min(i + 1, costs[l].shape[0] - 1), min(j + 1, costs[l].shape[1] - 1)) for l, (i, j) in enumerate(choice)]
        best = wider if wider != choice else None
    return best
