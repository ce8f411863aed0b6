"""Workload -> torch model + inputs -> fixed-point forward pass -> one HDF5 trace per profile.

A trace's file name carries a content hash of everything that determines its tensors (model,
weights, inputs, resolved profile, tool and schema version), so an unchanged workload reuses it.
The quantized weights go once into a weights file named by its own hash (model, weights, per-layer
weight precisions, versions) that every trace with the same weight precisions links to.
"""
from __future__ import annotations

import hashlib
import json
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from . import __version__
from .errors import SimulatorError
from .inputs import InputBatch, InputSpec, describe, load_inputs
from .layers import LayerSpec, shapes_of
from .models import ZOO, build_model
from .profiles import precision_table, resolve_profile
from .quantize import QUANTIZER_VERSION, LayerPrecision
from .traces import SCHEMA_VERSION, TraceWriter, WeightsWriter, is_valid_trace, is_valid_weights
from .workload import Workload


class Network:
    """A workload's network and inputs. Its layer shapes come from a free structure-only model; the
    real (seeded or loaded) model and the inputs are built only when a trace must be written."""

    def __init__(self, workload: Workload, layers: list[LayerSpec], input_shape: tuple[int, int, int],
                 input_spec: InputSpec, weights: Optional[Path], identity: dict):
        self.workload, self.layers, self.input_shape = workload, layers, input_shape
        self.identity = identity        # JSON-able: what determines the tensors besides the profile
        self._input_spec, self._weights = input_spec, weights
        self._model: Optional[torch.nn.Module] = None
        self._inputs: Optional[InputBatch] = None

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            spec, where = self.workload.model, self.workload.source_path
            try:
                self._model = build_model(spec.name, num_classes=spec.num_classes, width=spec.width,
                                          seed=spec.seed, weights=self._weights)
            except SimulatorError as e:
                raise SimulatorError(f"{where}: model: {e}") from None
        return self._model

    @property
    def inputs(self) -> InputBatch:
        if self._inputs is None:
            try:
                self._inputs = load_inputs(self._input_spec, self.input_shape[0], self.input_shape[1])
            except SimulatorError as e:
                raise SimulatorError(f"{self.workload.source_path}: input: {e}") from None
        return self._inputs


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_network(workload: Workload) -> Network:
    """The workload's network: layer shapes and identity now, model and inputs on first use."""
    spec = workload.model
    if spec.name not in ZOO:
        raise SimulatorError(f"{workload.source_path}: model.name: unknown model '{spec.name}'; valid: {', '.join(ZOO)}")
    info = ZOO[spec.name]
    weights = workload.resolve_path(spec.weights) if spec.weights else None
    if weights is not None and not weights.is_file():
        raise SimulatorError(f"{workload.source_path}: model.weights: no such file '{weights}'")
    # errors of the model and input builders get the workload file and section in front
    try:
        structure = build_model(spec.name, num_classes=spec.num_classes, width=spec.width, seed=spec.seed,
                                structure_only=True)
    except SimulatorError as e:
        raise SimulatorError(f"{workload.source_path}: model: {e}") from None
    size = workload.input.size or info.image_size
    shape = (info.in_channels, size, size)
    inp = workload.input
    if inp.path is not None:
        inp = inp.model_copy(update={"path": str(workload.resolve_path(inp.path))})
    try:
        layers = shapes_of(structure, shape)
    except RuntimeError as e:
        raise SimulatorError(f"{workload.source_path}: model '{spec.name}' cannot run on {shape} inputs: "
                             f"{str(e).splitlines()[0]}") from None
    try:
        inputs = describe(inp)
    except SimulatorError as e:
        raise SimulatorError(f"{workload.source_path}: input: {e}") from None
    identity = {
        "model": {**spec.model_dump(), "weights": str(weights) if weights else None},
        "weights_sha256": _sha256_file(weights) if weights else None,
        "inputs": {**inputs, "input_shape": list(shape)},
    }
    return Network(workload, layers, shape, inp, weights, identity)


def _model_identity(network: Network) -> dict:
    # the weights *path* is left out: the same bytes elsewhere give the same tensors
    return {k: v for k, v in network.identity["model"].items() if k != "weights"}


def _hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def trace_key(network: Network, precisions: dict[str, LayerPrecision]) -> str:
    return _hash({"identity": {**network.identity, "model": _model_identity(network)},
                  "precisions": precision_table(precisions), "tool_version": __version__,
                  "quantizer_version": QUANTIZER_VERSION, "schema_version": SCHEMA_VERSION})


def weights_key(network: Network, precisions: dict[str, LayerPrecision]) -> str:
    """Hash of what decides the quantized weights: the model and its weights, not the inputs or
    the activation precisions (a layer's weight format depends only on its weights and precision)."""
    weights = {name: p["weights"] for name, p in precision_table(precisions).items()}
    return _hash({"model": _model_identity(network), "weights_sha256": network.identity["weights_sha256"],
                  "weight_precisions": weights, "tool_version": __version__,
                  "quantizer_version": QUANTIZER_VERSION, "schema_version": SCHEMA_VERSION})


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def trace_path(workload: Workload, profile: str, key: str) -> Path:
    return Path(workload.traces_dir) / f"{_safe(f'{workload.name}--{profile}')}--{key[:16]}.h5"


def weights_path(workload: Workload, key: str) -> Path:
    return Path(workload.traces_dir) / f"{_safe(workload.model.name)}--{key[:16]}.weights.h5"


def write_trace(path: Path, network: Network, workload: Workload, profile: str,
                precisions: dict[str, LayerPrecision], key: str, progress: bool = True,
                force_weights: bool = False) -> Path:
    """Run the network in fixed point under ``precisions`` and stream every layer into ``path``.

    The weights go into the trace's weights file (see ``weights_path``), written in the same pass
    unless a valid one exists (or ``force_weights``); the trace links to it."""
    from .quantize import quantized

    w_key = weights_key(network, precisions)
    w_path = weights_path(workload, w_key)
    write_weights = force_weights or not is_valid_weights(w_path, w_key)
    root = {"trace_key": key, "workload": workload.name, "profile": profile,
            "model": network.identity["model"], "inputs": network.identity["inputs"],
            "input_ids": network.inputs.ids, "seed": network.identity["model"]["seed"],
            "precisions": precision_table(precisions)}
    bar = tqdm(total=len(network.layers), desc=f"export {profile}", unit="layer", disable=None if progress else True, leave=False)
    # nested so the weights file is renamed into place before the trace that links to it
    with TraceWriter(path, root, weights_file=w_path, weights_key=w_key) as writer:
        with (WeightsWriter(w_path, w_key, {"model": network.identity["model"]}) if write_weights
              else nullcontext()) as w_writer:
            def on_layer(index, spec, act_q, act_fmt, w_q, w_fmt):
                if w_writer is not None:
                    w_writer.write_layer(spec, w_q.numpy(), w_fmt)
                writer.write_layer(index, spec, act_q.numpy(), act_fmt, None, w_fmt)
                bar.update(1)
            with quantized(network.model, precisions, on_layer=on_layer) as qmodel:
                qmodel(network.inputs.images)
    bar.close()
    return path


def export(workload: Workload, profiles: Optional[list[str]] = None, force: bool = False,
           progress: bool = True, network: Optional[Network] = None) -> dict[str, Path]:
    """Write (or reuse) one trace per profile; returns profile name -> trace path."""
    names = list(workload.profiles) if profiles is None else profiles
    for n in names:
        if n not in workload.profiles:
            raise SimulatorError(f"{workload.source_path}: no profile named '{n}'; profiles are: {', '.join(workload.profiles)}")
    network = network or build_network(workload)
    out: dict[str, Path] = {}
    forced_weights: set[str] = set()      # --force rewrites a shared weights file once, not per trace
    for n in names:
        try:
            precisions = resolve_profile(n, workload.profiles[n], network.layers)
        except SimulatorError as e:   # name the workload file too, like every other workload error
            raise SimulatorError(f"{workload.source_path}: {e}") from None
        key = trace_key(network, precisions)
        path = trace_path(workload, n, key)
        if force or not is_valid_trace(path, key):
            w_key = weights_key(network, precisions)
            write_trace(path, network, workload, n, precisions, key, progress,
                        force_weights=force and w_key not in forced_weights)
            forced_weights.add(w_key)
        out[n] = path
    return out
