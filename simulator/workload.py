"""Workload files: YAML read with ``safe_load`` into typed, validated objects.

Errors name the file and the key path: an unknown key lists the valid ones, a wrong type names the
expected one. Paths inside a workload (weights, input folders) are relative to the workload file.
"""
from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, model_validator

from .config import DEFAULT_ACCELERATORS, DEFAULT_MEMORY, AcceleratorConfig, EnergyConfig, MemoryConfig
from .errors import SimulatorError
from .inputs import InputSpec
from .profiles import ProfileSpec, parse_profile


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    weights: Optional[str] = None          # a local state_dict file, loaded with weights_only=True
    width: PositiveFloat = 1.0             # WRPN-style width multiplier
    num_classes: Optional[PositiveInt] = None
    seed: int = 0                          # seeded initialisation when no weights are given


class Workload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    model: ModelSpec
    input: InputSpec = Field(default_factory=InputSpec)
    profiles: dict[str, ProfileSpec] = Field(default_factory=lambda: {"uniform-16": parse_profile("uniform-16")})
    accelerators: list[AcceleratorConfig] = Field(default_factory=lambda: list(DEFAULT_ACCELERATORS))
    memory: list[MemoryConfig] = Field(default_factory=lambda: list(DEFAULT_MEMORY))
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    baseline: Optional[str] = None         # accelerator that speedups are measured against; default: the first
    traces_dir: str = "traces"
    results_dir: str = "results"
    source_path: Optional[str] = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _names_resolve(self) -> "Workload":
        names = [a.name for a in self.accelerators]
        if len(set(names)) != len(names):
            raise ValueError(f"accelerator names must be unique, got {names}")
        if len({m.name for m in self.memory}) != len(self.memory):
            raise ValueError(f"memory names must be unique, got {[m.name for m in self.memory]}")
        for a in self.accelerators:
            if a.baseline is not None and a.baseline not in names:
                raise ValueError(f"accelerator '{a.name}': baseline '{a.baseline}' is not an accelerator; "
                                 f"accelerators are: {', '.join(names)}")
        return self

    def baseline_of(self, acc: AcceleratorConfig) -> str:
        """The accelerator ``acc``'s speedup is measured against."""
        return acc.baseline or self.baseline_accelerator.name

    @property
    def base_dir(self) -> Path:
        return Path(self.source_path).parent if self.source_path else Path.cwd()

    def resolve_path(self, p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def baseline_accelerator(self) -> AcceleratorConfig:
        if self.baseline is None:
            return self.accelerators[0]
        for a in self.accelerators:
            if a.name == self.baseline:
                return a
        raise SimulatorError(f"{self.source_path or 'workload'}: baseline: no accelerator named '{self.baseline}'; "
                             f"accelerators are: {', '.join(a.name for a in self.accelerators)}")


def _model_at(cls: Any, loc: tuple) -> Any:
    """The pydantic model class found by walking ``loc`` from ``cls`` (for listing valid keys)."""
    t = cls
    for part in loc:
        origin = typing.get_origin(t)
        if origin is Union:
            models = [a for a in typing.get_args(t) if isinstance(a, type) and issubclass(a, BaseModel)]
            containers = [a for a in typing.get_args(t) if typing.get_origin(a) in (list, dict)]
            t = models[0] if models and isinstance(part, str) and not containers else (containers or models or [t])[0]
            origin = typing.get_origin(t)
        if origin is list:
            t = typing.get_args(t)[0]
            if isinstance(part, int):
                continue
        elif origin is dict:
            t = typing.get_args(t)[1]
            continue
        if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str) and part in t.model_fields:
            t = t.model_fields[part].annotation
        elif not isinstance(part, str):
            continue
    origin = typing.get_origin(t)
    if origin is Union:
        models = [a for a in typing.get_args(t) if isinstance(a, type) and issubclass(a, BaseModel)]
        t = models[0] if models else t
    return t if isinstance(t, type) and issubclass(t, BaseModel) else None


def _is_union_tag(part: Any) -> bool:
    """Pydantic puts the tried alternative of a union into an error's location (``TensorEntry``,
    ``constrained-int``, ``list[...]``); those are not keys of the file."""
    return isinstance(part, str) and ("[" in part or part.startswith(("function-", "constrained-"))
                                      or part in _model_names(Workload))


def _model_names(cls: type) -> set[str]:
    names = {cls.__name__}
    for f in cls.model_fields.values():
        for t in _flatten(f.annotation):
            if isinstance(t, type) and issubclass(t, BaseModel) and t.__name__ not in names:
                names |= _model_names(t)
    return names


def _flatten(t: Any) -> list:
    args = typing.get_args(t)
    return [t] if not args else [a for arg in args for a in _flatten(arg)]


def _describe(err: dict, root: type) -> str:
    loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
    path = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        valid = ", ".join(k for k in parent.model_fields if not k.startswith("source_path")) if parent else "?"
        return f"{path}: unknown key; valid keys: {valid}"
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    got = err.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    msg = err["msg"].replace("Value error, ", "")
    return f"{path}: {msg} (got {shown})"


def workload_from_dict(data: Any, source: str = "<workload>") -> Workload:
    if not isinstance(data, dict):
        raise SimulatorError(f"{source}: a workload must be a YAML mapping, got {type(data).__name__}")
    try:
        return Workload.model_validate({**data, "source_path": source})
    except ValidationError as e:
        errs = e.errors()
        # union errors repeat one mistake once per alternative: report the most specific one
        first = max(errs, key=lambda er: (er["type"] == "extra_forbidden", len(er["loc"])))
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise SimulatorError(f"{source}: {_describe(first, Workload)}{more}") from None


def load_workload(path: Union[str, Path]) -> Workload:
    """Read and validate a workload YAML file."""
    p = Path(path)
    if not p.is_file():
        raise SimulatorError(f"{p}: no such workload file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SimulatorError(f"{p}:{where} not valid YAML: {getattr(e, 'problem', e)}") from None
    return workload_from_dict(data, str(p))
