"""Judd et al.'s per-layer search ("Reduced-Precision Strategies for Bounded Memory in Deep Neural
Nets", 2015; Proteus, ICS 2016): fixed point with I integer and F fraction bits per layer, for the
activations and the weights separately.

1. Sensitivity: each tensor alone is swept with every other tensor of the network at full
   precision (float for other layers; ``FULL_BITS`` fixed point for the other half of the same
   layer). Integer bits I are swept with the fraction bits held at F_hi (the fraction bits of a
   HI_BITS-bit format at the tensor's range), so too few integer bits show up as saturation; fraction
   bits F are swept with I at the range's own integer bits I_r, so no value saturates. Both sweeps
   are independent of the target, so one ``SensitivityTable`` serves the 100% and the 99% searches
   (and later cost-aware searches).
2. Combine: each tensor gets the fewest I and the fewest F that met the target alone.
3. Descend: the combined minima usually lose more than any one layer did (errors add up), so
   every tensor first gets one more integer bit (up to its range's) and one more fraction bit at a
   time until the target holds (past HI_BITS if need be); a greedy descent then removes single bits,
   one tensor at a time, largest footprint first, while the target still holds, and stops when no
   single bit can go.

"Integer bits" include the sign bit, as in ``FixedPoint.integer_bits``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..accuracy import Accuracy, Evaluator
from ..errors import SimulatorError
from ..quantize import LayerPrecision, TensorPrecision
from .common import FULL_BITS, TensorRange, element_counts, min_bits, tensor_ranges

Tensor = tuple[str, str]               # (layer, "activations" | "weights")
IF = tuple[int, int]                   # (integer bits incl. sign, fraction bits)
HI_BITS = 16                           # the sweeps start from a 16-bit format at the tensor's range
MAX_BITS = 32


@dataclass
class SensitivityTable:
    """Per tensor: top-1 at each integer-bit count (F held at F_hi) and each fraction-bit count
    (I held at I_r), every other tensor at full precision."""

    float_top1: float
    ranges: dict[Tensor, TensorRange]
    integer: dict[Tensor, dict[int, float]] = field(default_factory=dict)
    fraction: dict[Tensor, dict[int, float]] = field(default_factory=dict)

    def f_hi(self, t: Tensor) -> int:
        return HI_BITS - self.ranges[t].integer_bits

    def minimum(self, t: Tensor, part: str, target: float) -> int:
        """Fewest bits of ``part`` ("integer" or "fraction") from which every larger swept count
        keeps top-1 within ``target``; the largest swept count when none does."""
        points = (self.integer if part == "integer" else self.fraction)[t]
        best = max(points)
        for v in sorted(points, reverse=True):
            if points[v] < target * self.float_top1 - 1e-9:
                break
            best = v
        return best


def _single(layer: str, tensor: str, t: TensorPrecision) -> dict[str, LayerPrecision]:
    full = TensorPrecision(FULL_BITS)
    return {layer: LayerPrecision(t, full) if tensor == "activations" else LayerPrecision(full, t)}


def sensitivity(evaluator: Evaluator, floor: float = 0.9, max_drop: int = 8) -> SensitivityTable:
    """Sweep every tensor alone (step 1). A sweep stops below ``floor`` of float top-1 (no target of
    interest lies there), at the fewest bits a format can have, or ``max_drop`` integer bits below the
    range's."""
    ranges = tensor_ranges(evaluator)
    table = SensitivityTable(evaluator.float_top1, ranges)
    stop = floor * evaluator.float_top1
    for (layer, tensor), r in ranges.items():
        f_hi, lo = HI_BITS - r.integer_bits, min_bits(r.signed)
        ints: dict[int, float] = {}
        for i in range(r.integer_bits, r.integer_bits - max_drop - 1, -1):
            if i + f_hi < lo:
                break
            ints[i] = evaluator(_single(layer, tensor, TensorPrecision(i + f_hi, f_hi, r.signed))).top1
            if ints[i] < stop:
                break
        fracs: dict[int, float] = {}
        for f in range(f_hi, lo - r.integer_bits - 1, -1):
            fracs[f] = evaluator(_single(layer, tensor, TensorPrecision(r.integer_bits + f, f, r.signed))).top1
            if fracs[f] < stop:
                break
        table.integer[(layer, tensor)], table.fraction[(layer, tensor)] = ints, fracs
    return table


def _precisions(choice: dict[Tensor, IF], ranges: dict[Tensor, TensorRange]) -> dict[str, LayerPrecision]:
    def tp(t: Tensor) -> TensorPrecision:
        i, f = choice[t]
        return TensorPrecision(i + f, f, ranges[t].signed)
    layers = dict.fromkeys(layer for layer, _ in choice)
    return {n: LayerPrecision(tp((n, "activations")), tp((n, "weights"))) for n in layers}


def _valid(choice: IF, r: TensorRange) -> bool:
    return choice[0] + choice[1] >= min_bits(r.signed)


@dataclass
class JuddResult:
    precisions: dict[str, LayerPrecision]
    accuracy: Accuracy
    minima: dict[str, LayerPrecision]           # step 2: the per-tensor minima combined
    minima_accuracy: Accuracy
    shift: int                                  # bits added to every tensor in step 3
    trim_steps: int
    choice: dict[Tensor, IF] = field(default_factory=dict)


def judd_search(evaluator: Evaluator, target: float, table: SensitivityTable | None = None) -> JuddResult:
    """Per-layer (I, F) for activations and weights meeting ``target`` of float top-1 (steps 2-3)."""
    table = table or sensitivity(evaluator)
    ranges, counts = table.ranges, element_counts(evaluator)
    choice: dict[Tensor, IF] = {}
    for t, r in ranges.items():
        i, f = table.minimum(t, "integer", target), table.minimum(t, "fraction", target)
        choice[t] = (i, max(f, min_bits(r.signed) - i))
    minima = _precisions(choice, ranges)
    minima_acc = acc = evaluator(minima)

    # Raise every tensor together, one integer bit (up to its range) and one fraction bit at a
    # time, until the target holds: the cheap way back from the combined minima; the trim below
    # then takes back every bit that is not needed.
    start, shift = dict(choice), 0
    while not acc.meets(target):
        shift += 1
        choice = {t: (min(i + shift, ranges[t].integer_bits), f + shift) for t, (i, f) in start.items()}
        if min(sum(c) for c in choice.values()) > MAX_BITS:
            raise SimulatorError(f"judd: even {MAX_BITS} bits everywhere miss {target:.0%} of float top-1")
        acc = evaluator(_precisions(choice, ranges))

    # Greedy descent in passes: each tensor, largest footprint first, drops fraction bits, then
    # integer bits, one at a time while the target holds; passes repeat until one changes nothing.
    trims, changed = 0, True
    while changed:
        changed = False
        for t in sorted(choice, key=lambda t: -counts[t]):
            for drop in ((0, -1), (-1, 0)):
                while True:
                    move = (choice[t][0] + drop[0], choice[t][1] + drop[1])
                    if not _valid(move, ranges[t]):
                        break
                    trial = {**choice, t: move}
                    a = evaluator(_precisions(trial, ranges))
                    if not a.meets(target):
                        break
                    choice, acc, changed = trial, a, True
                    trims += 1
    return JuddResult(_precisions(choice, ranges), acc, minima, minima_acc, shift, trims, choice)
