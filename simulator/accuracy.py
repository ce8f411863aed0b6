"""Accuracy of a network under a per-layer fixed-point precision profile.

An ``Evaluator`` holds one labelled split (the whole split is one batch: the digits splits are
~360 images) and answers "what top-1 / top-5 does this precisions dict give?" with the project's one
quantizer, ``simulator.quantize.quantized``: layers absent from the dict stay in float.

Speed comes from two caches:

* results, keyed by the precisions (a profile evaluated twice runs once; ``hits`` counts reuse);
* float prefixes: in a sequential network, everything before the first quantized layer runs in
  float and is the same for every profile that starts there, so its output is computed once per
  (split, first quantized stage). A per-layer sweep that quantizes one layer therefore runs only
  that layer and the ones after it.

Formats (the integer bits of each tensor) come from observed ranges unless the profile fixes them.
With a ``calibration`` split they are observed there and then held fixed on the evaluated split,
so held-out test accuracy uses the formats chosen on the validation data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn

from .errors import SimulatorError
from .inputs import InputBatch
from .layers import LayerSpec, compute_layers, spec_of
from .quantize import FixedPoint, LayerPrecision, TensorPrecision, quantized
from .train import digits_batch, topk_correct

Formats = dict[str, tuple[FixedPoint, FixedPoint]]
PrecisionKey = tuple


@dataclass(frozen=True)
class Accuracy:
    """Accuracy of one profile on one split, beside the float network's on the same split."""

    top1: float
    top5: Optional[float]          # None where the network has 5 classes or fewer
    float_top1: float
    float_top5: Optional[float]
    mismatch: float                # fraction of inputs whose predicted class differs from float's
    n: int

    @property
    def relative_top1(self) -> float:
        return self.top1 / self.float_top1 if self.float_top1 else float("nan")

    @property
    def relative_top5(self) -> Optional[float]:
        if self.top5 is None or not self.float_top5:
            return None
        return self.top5 / self.float_top5

    def meets(self, target: float) -> bool:
        """Whether top-1 is at least ``target`` (relative, e.g. 0.99) of the float network's.

        A small epsilon keeps 100% from failing on float rounding of equal counts."""
        return self.top1 >= target * self.float_top1 - 1e-9

    def as_dict(self) -> dict:
        return {"top1": self.top1, "top5": self.top5, "relative_top1": self.relative_top1,
                "relative_top5": self.relative_top5, "mismatch": self.mismatch, "n": self.n}


def default_device() -> torch.device:
    """A GPU where torch finds one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def precision_key(precisions: dict[str, LayerPrecision]) -> PrecisionKey:
    """A hashable, order-independent identity of a precisions dict (the cache key)."""
    def t(p: TensorPrecision) -> tuple:
        return (p.bits, p.frac, p.signed, p.format)
    return tuple(sorted((n, t(p.activations), t(p.weights)) for n, p in precisions.items()))


def _stages(model: nn.Module) -> list[tuple[nn.Module, frozenset[str]]]:
    """The network as a chain of stages, each with the compute layers inside it.

    A ``nn.Sequential`` is a chain of its children; any other module is one stage (no prefix reuse)."""
    names = {id(m): n for n, m in compute_layers(model)}
    if not isinstance(model, nn.Sequential):
        return [(model, frozenset(names.values()))]
    return [(child, frozenset(names[id(m)] for m in child.modules() if id(m) in names)) for child in model]


class _PrefixCache:
    """Float outputs of the first stages of a chain on one batch, computed once each."""

    def __init__(self, stages: list[tuple[nn.Module, frozenset[str]]], x: torch.Tensor):
        self.stages = stages
        self.outputs: dict[int, torch.Tensor] = {0: x}

    @torch.no_grad()
    def before(self, i: int) -> torch.Tensor:
        """The input of stage ``i``: the float network's output after stages ``0..i-1``."""
        start = max(k for k in self.outputs if k <= i)
        y = self.outputs[start]
        for k in range(start, i):
            y = self.stages[k][0](y)
            self.outputs[k + 1] = y
        return y


class Evaluator:
    """Cached accuracy of precisions dicts on one labelled split.

    ``evaluator(precisions)`` returns an ``Accuracy``; ``evaluations`` counts forward evaluations
    actually run and ``hits`` those answered from the cache. ``formats(precisions)`` gives the fixed-
    point formats the quantizer chose for a profile already evaluated, and ``resolve`` turns a profile
    into one with every format explicit (so that trace export and other splits use the same ones).
    """

    def __init__(self, model: nn.Module, batch: InputBatch, calibration: Optional[InputBatch] = None,
                 device: Union[str, torch.device, None] = None):
        if batch.labels is None:
            raise SimulatorError("accuracy needs a labelled input split (the digits source)")
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        self.layer_names = [n for n, _ in compute_layers(model)]
        self.labels = batch.labels.to(self.device)
        self.n = len(self.labels)
        self._stages = _stages(self.model)
        self._eval = _PrefixCache(self._stages, batch.images.to(self.device))
        self._calib = None if calibration is None else _PrefixCache(self._stages, calibration.images.to(self.device))
        self._cache: dict[PrecisionKey, Accuracy] = {}
        self._formats: dict[PrecisionKey, Formats] = {}
        self.evaluations = 0
        self.hits = 0
        # the float pass also records each layer's shape (element counts weigh footprint in searches)
        self.specs: dict[str, LayerSpec] = {}
        def record(name: str):
            def hook(module: nn.Module, args: tuple, y: torch.Tensor) -> None:
                self.specs.setdefault(name, spec_of(name, module, args[0], y))
            return hook
        hooks = [m.register_forward_hook(record(n)) for n, m in compute_layers(self.model)]
        try:
            with torch.no_grad():
                logits = self._run_from(0, self._eval)
        finally:
            for h in hooks:
                h.remove()
        self.classes = logits.shape[1]
        self._float_pred = logits.argmax(dim=1)
        self.float_top1 = self._topk(logits, 1)
        self.float_top5 = self._topk(logits, 5) if self.classes > 5 else None

    # -------------------------------------------------------------------------------- public

    def __call__(self, precisions: dict[str, LayerPrecision]) -> Accuracy:
        unknown = set(precisions) - set(self.layer_names)
        if unknown:
            raise SimulatorError(f"no layer named '{sorted(unknown)[0]}'; layers are: {', '.join(self.layer_names)}")
        key = precision_key(precisions)
        if key in self._cache:
            self.hits += 1
            return self._cache[key]
        acc, formats = self._evaluate(precisions)
        self.evaluations += 1
        self._cache[key] = acc
        self._formats[key] = formats
        return acc

    @property
    def images(self) -> torch.Tensor:
        """The evaluated split's inputs, on the evaluator's device."""
        return self._eval.before(0)

    @property
    def float_accuracy(self) -> Accuracy:
        return Accuracy(self.float_top1, self.float_top5, self.float_top1, self.float_top5, 0.0, self.n)

    def formats(self, precisions: dict[str, LayerPrecision]) -> Formats:
        """The (activation, weight) formats used for ``precisions`` (evaluated first if needed)."""
        self(precisions)
        return dict(self._formats[precision_key(precisions)])

    def resolve(self, precisions: dict[str, LayerPrecision]) -> dict[str, LayerPrecision]:
        """``precisions`` with the fraction bits and signedness it was evaluated with made explicit."""
        fmts = self.formats(precisions)

        def fixed(f: FixedPoint) -> TensorPrecision:
            return TensorPrecision(f.bits, f.frac, f.signed)
        return {n: LayerPrecision(fixed(fmts[n][0]), fixed(fmts[n][1])) for n in self.layer_names if n in precisions}

    # -------------------------------------------------------------------------------- internals

    def _topk(self, logits: torch.Tensor, k: int) -> float:
        return int(topk_correct(logits, self.labels, k).sum()) / self.n

    def _first_stage(self, precisions: dict[str, LayerPrecision]) -> int:
        for i, (_, names) in enumerate(self._stages):
            if names & precisions.keys():
                return i
        return len(self._stages)

    def _run_from(self, i: int, cache: _PrefixCache) -> torch.Tensor:
        y = cache.before(i)
        for module, _ in self._stages[i:]:
            y = module(y)
        return y

    @torch.no_grad()
    def _evaluate(self, precisions: dict[str, LayerPrecision]) -> tuple[Accuracy, Formats]:
        start = self._first_stage(precisions)
        formats: dict = {}
        explicit = all(t.frac is not None and t.signed is not None
                       for p in precisions.values() for t in (p.activations, p.weights))
        with quantized(self.model, precisions, formats=formats):
            if self._calib is not None and not explicit:
                self._run_from(start, self._calib)       # observe ranges on the calibration split
            logits = self._run_from(start, self._eval)
        pred = logits.argmax(dim=1)
        acc = Accuracy(self._topk(logits, 1), self._topk(logits, 5) if self.classes > 5 else None,
                       self.float_top1, self.float_top5, int((pred != self._float_pred).sum()) / self.n, self.n)
        return acc, formats


def labelled_split(workload, split: str) -> InputBatch:
    """The whole ``split`` of the digits, preprocessed for ``workload``'s model."""
    from .models import ZOO
    if workload.input.source != "digits":
        raise SimulatorError(f"{workload.source_path}: input.source: accuracy needs labelled inputs; "
                             f"use source 'digits' (got '{workload.input.source}')")
    info = ZOO[workload.model.name]
    return digits_batch(split, workload.input.size or info.image_size, info.in_channels)


def evaluator_for(workload, split: str = "val", calibration: Optional[str] = None,
                  device: Union[str, torch.device, None] = None, model: Optional[nn.Module] = None) -> Evaluator:
    """An ``Evaluator`` of ``workload``'s model on a digits split, formats observed on ``calibration``
    (default: on the split itself). The model is built as trace export builds it."""
    if model is None:
        from .export import build_network
        if not workload.model.weights:
            raise SimulatorError(f"{workload.source_path}: model.weights: accuracy needs trained weights "
                                 f"(e.g. ../simulator/data/lenet5_digits.pt)")
        model = build_network(workload).model
    calib = None if calibration is None or calibration == split else labelled_split(workload, calibration)
    return Evaluator(model, labelled_split(workload, split), calib, device)
