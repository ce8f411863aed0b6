"""Per-layer precision profiles: how a workload names them, and their resolution onto a network.

A profile is either the shorthand ``uniform-N`` or a mapping::

    activations: [9, 8, 5, 5, 7]     # an int (every layer), a list (one per selected layer, in order),
    weights: 16                      #   or {layer or module: bits | {bits, frac, signed, format}}, optional `default`
    layers: conv                     # which layers a list indexes: conv | fc | all
    default: 16                      # bits for the layers a list or mapping leaves out
    source: "where the numbers come from"

An entry's ``format`` (default ``fixed``) names a number format of ``simulator.formats``: float32,
float16, bfloat16, pow2, binary, ternary (and their ``-filter`` variants), wrpn; ``bits`` may be left
out where the format fixes the width (e.g. ``{format: float16}``).
"""
from __future__ import annotations

import re
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, PositiveInt, model_validator

from .errors import SimulatorError
from .formats import WEIGHT_ONLY, check_format
from .layers import LayerSpec
from .quantize import LayerPrecision, TensorPrecision

UNIFORM = re.compile(r"^uniform-(\d+)$")


class TensorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    bits: Optional[PositiveInt] = None     # required unless the format fixes the width
    frac: Optional[int] = None
    signed: Optional[bool] = None
    format: str = "fixed"

    @model_validator(mode="after")
    def _format_width(self) -> "TensorEntry":
        try:
            width = check_format(self.format, self.bits)
        except SimulatorError as e:
            raise ValueError(str(e)) from None
        if self.format != "fixed" and (self.frac is not None or self.signed is not None):
            raise ValueError(f"frac and signed apply to format 'fixed' only, not '{self.format}'")
        if self.bits is None:
            object.__setattr__(self, "bits", width)   # frozen model: fill the width the format fixes
        return self

    def precision(self) -> TensorPrecision:
        return TensorPrecision(self.bits, self.frac, self.signed, self.format)


Entry = Union[PositiveInt, TensorEntry]
TensorSpec = Union[PositiveInt, TensorEntry, list[Entry], dict[str, Entry]]


class ProfileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    activations: Optional[TensorSpec] = None
    weights: Optional[TensorSpec] = None
    layers: Literal["conv", "fc", "all"] = "all"
    default: PositiveInt = 16
    source: str = ""
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        # validated here, not by the workload, so that a bad shorthand is reported at its own key
        return _uniform(value) if isinstance(value, str) else value


def _uniform(value: str) -> dict:
    m = UNIFORM.match(value.strip())
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"'{value}' is not a profile; write uniform-N (N bits everywhere) or a mapping")
    bits = int(m.group(1))
    return {"activations": bits, "weights": bits, "default": bits, "description": value}


def parse_profile(value: Union[str, ProfileSpec, dict]) -> ProfileSpec:
    """Turn the ``uniform-N`` shorthand (or a mapping) into a ``ProfileSpec``."""
    if isinstance(value, ProfileSpec):
        return value
    if isinstance(value, str):
        return ProfileSpec.model_validate(_uniform(value))
    return ProfileSpec.model_validate(value)


def _entry(e: Entry) -> TensorPrecision:
    return e.precision() if isinstance(e, TensorEntry) else TensorPrecision(int(e))


def _resolve_tensor(profile: str, what: str, spec: Optional[TensorSpec], selected: list[LayerSpec],
                    layers: list[LayerSpec], default: int, scope: str) -> dict[str, TensorPrecision]:
    out = {l.name: TensorPrecision(default) for l in layers}
    if spec is None:
        return out
    if isinstance(spec, list):
        if len(spec) != len(selected):
            raise SimulatorError(
                f"profile '{profile}': {what} lists {len(spec)} precisions but the network has "
                f"{len(selected)} {'' if scope == 'all' else scope + ' '}layer(s): {', '.join(l.name for l in selected)}")
        for l, e in zip(selected, spec):
            out[l.name] = _entry(e)
        return out
    if isinstance(spec, dict):
        if "default" in spec:
            out = {n: _entry(spec["default"]) for n in out}
        for key, e in spec.items():
            if key == "default":
                continue
            # a key names one layer, or a module (e.g. an inception block) and so every layer inside it
            hit = [l.name for l in layers if l.name == key or l.name.startswith(key + ".")]
            if not hit:
                shown = ", ".join(l.name for l in layers[:40]) + (" ..." if len(layers) > 40 else "")
                raise SimulatorError(f"profile '{profile}': {what}: no layer named '{key}'; layers are: {shown}")
            for n in hit:
                out[n] = _entry(e)
        return out
    return {l.name: _entry(spec) for l in layers}


def resolve_profile(name: str, profile: ProfileSpec, layers: list[LayerSpec]) -> dict[str, LayerPrecision]:
    """The precision of every compute layer of the network under ``profile``."""
    scope = profile.layers
    selected = [l for l in layers if scope == "all" or l.kind == scope]
    acts = _resolve_tensor(name, "activations", profile.activations, selected, layers, profile.default, scope)
    wts = _resolve_tensor(name, "weights", profile.weights, selected, layers, profile.default, scope)
    for n, p in acts.items():
        if p.format in WEIGHT_ONLY:
            raise SimulatorError(f"profile '{name}': activations of layer {n}: format '{p.format}' applies to weights only")
    return {l.name: LayerPrecision(acts[l.name], wts[l.name]) for l in layers}


def precision_table(precisions: dict[str, LayerPrecision]) -> dict[str, dict]:
    """A JSON-able form, used in hashes and result files."""
    return {n: {"activations": p.activations.as_dict(), "weights": p.weights.as_dict()} for n, p in precisions.items()}
