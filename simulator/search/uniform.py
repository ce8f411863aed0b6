"""The uniform baseline: one precision for every layer's activations and weights.

The integer bits of each tensor still come from its observed range (as the quantizer does for a
``uniform-N`` profile); only the total width is shared. Accuracy is not exactly monotone in the
width, so the answer is the smallest width from which every wider one up to ``max_bits`` meets the
target: a lucky narrow width that a wider one contradicts is not reported.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..accuracy import Accuracy, Evaluator
from ..errors import SimulatorError
from ..quantize import LayerPrecision
from .common import uniform


@dataclass
class UniformResult:
    bits: int
    precisions: dict[str, LayerPrecision]
    accuracy: Accuracy
    table: dict[int, Accuracy]          # every width tried -> its accuracy


def uniform_table(evaluator: Evaluator, min_bits: int = 2, max_bits: int = 32) -> dict[int, Accuracy]:
    """Accuracy at every uniform width (cached in the evaluator, shared by all targets)."""
    return {b: evaluator(uniform(evaluator.layer_names, b)) for b in range(min_bits, max_bits + 1)}


def uniform_search(evaluator: Evaluator, target: float, min_bits: int = 2, max_bits: int = 32) -> UniformResult:
    """The smallest uniform width whose top-1, and that of every wider one, is within ``target``."""
    table = uniform_table(evaluator, min_bits, max_bits)
    best = None
    for b in range(max_bits, min_bits - 1, -1):
        if not table[b].meets(target):
            break
        best = b
    if best is None:
        raise SimulatorError(f"no uniform precision up to {max_bits} bits reaches {target:.0%} of float top-1 "
                             f"(at {max_bits} bits: {table[max_bits].top1:.4f} against {evaluator.float_top1:.4f})")
    precisions = uniform(evaluator.layer_names, best)
    return UniformResult(best, evaluator.resolve(precisions), table[best], table)
