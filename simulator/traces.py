"""HDF5 traces: per compute layer, the integer input activations and weights a network produced
under one precision profile, with the layer's shape and number formats as attributes.

Schema (version 1; ``docs/traces.md`` documents it for other tools):

    /                   attrs: format="precision-sim trace", schema_version, tool_version,
                               trace_key (content hash), workload, model (JSON), inputs (JSON),
                               input_ids (JSON), seed, profile, precisions (JSON), layers (JSON list)
    /layers/<name>      attrs: index, LayerSpec fields, act_bits/act_frac/act_signed,
                               weight_bits/weight_frac/weight_signed, act_scale, weight_scale
        activations     (N, C, H, W) conv or (N, C) fc, smallest integer dtype
        weights         (K, C/groups, Ky, Kx) conv or (K, C) fc; inline, or an HDF5 external link
                        into a weights file beside the trace (root attrs weights_file, weights_key)

A weights file (``WeightsWriter``) holds one model's quantized weights under one set of per-layer
weight precisions, once for every trace that shares them:

    /                   attrs: format="precision-sim weights", schema_version, tool_version,
                               weights_key (content hash), model (JSON), layers (JSON list)
    /layers/<name>/weights   as in a trace, with the weight_* format attributes

Files are written under a temporary name and renamed when complete, so a crash never leaves a
partial trace under the real name; ``open_trace`` validates and names the file and layer at fault.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import h5py
import numpy as np

from . import __version__
from .errors import SimulatorError
from .layers import CONV, LayerSpec
from .quantize import FixedPoint, storage_dtype

SCHEMA_VERSION = 1
FORMAT = "precision-sim trace"
WEIGHTS_FORMAT = "precision-sim weights"
_COMPRESSION = dict(compression="gzip", compression_opts=1, shuffle=True)


def _fmt_attrs(prefix: str, fmt: FixedPoint) -> dict[str, Any]:
    return {f"{prefix}_bits": fmt.bits, f"{prefix}_frac": fmt.frac, f"{prefix}_signed": fmt.signed,
            f"{prefix}_scale": fmt.scale}


def _fmt_from(prefix: str, attrs: Any) -> FixedPoint:
    return FixedPoint(int(attrs[f"{prefix}_bits"]), int(attrs[f"{prefix}_frac"]), bool(attrs[f"{prefix}_signed"]))


def _group_name(layer: str) -> str:
    return layer.replace("/", "|")


def _write_dataset(g: h5py.Group, key: str, data: np.ndarray, fmt: FixedPoint) -> None:
    arr = np.asarray(data).astype(storage_dtype(fmt), copy=False)
    # every chunk carries a Fletcher-32 checksum, so damaged bytes fail loudly on read
    g.create_dataset(key, data=arr, chunks=True, fletcher32=True, **(_COMPRESSION if arr.size > 1024 else {}))


class _AtomicH5:
    """An HDF5 file written under ``.<name>.tmp-<pid>`` and renamed into place on ``close``."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._f = h5py.File(self.tmp, "w")
        self._f.create_group("layers")
        self._names: list[str] = []

    def _finish(self, attrs: dict[str, Any]) -> Path:
        for k, v in attrs.items():
            self._f.attrs[k] = v if isinstance(v, (str, int, float, bool, np.integer)) else json.dumps(v)
        self._f.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()      # each writer's own: it knows its root attributes
        else:
            self.abort()


class WeightsWriter(_AtomicH5):
    """Writes one weights file (the quantized weights of every layer) that traces link to."""

    def __init__(self, path: Union[str, Path], weights_key: str, root_attrs: dict[str, Any]):
        super().__init__(path)
        self.key, self._root = weights_key, root_attrs

    def write_layer(self, spec: LayerSpec, weights: np.ndarray, weight_fmt: FixedPoint) -> None:
        g = self._f["layers"].create_group(_group_name(spec.name))
        _write_dataset(g, "weights", weights, weight_fmt)
        for k, v in _fmt_attrs("weight", weight_fmt).items():
            g.attrs[k] = v
        self._names.append(spec.name)

    def close(self) -> Path:
        return self._finish({"format": WEIGHTS_FORMAT, "schema_version": SCHEMA_VERSION, "tool_version": __version__,
                             **self._root, "weights_key": self.key, "layers": json.dumps(self._names)})


class TraceWriter(_AtomicH5):
    """Writes one trace, layer by layer, under a temporary name; renamed into place on ``close``.

    With ``weights_file`` (and its ``weights_key``) each layer's ``weights`` is an external link into
    that file, by base name, so a traces folder can be moved as a whole. The weights file must be
    complete before the trace is (write it first; ``WeightsWriter``)."""

    def __init__(self, path: Union[str, Path], root_attrs: dict[str, Any],
                 weights_file: Optional[Union[str, Path]] = None, weights_key: Optional[str] = None):
        super().__init__(path)
        self._root = dict(root_attrs)
        self._weights_file = Path(weights_file).name if weights_file is not None else None
        if self._weights_file is not None:
            if weights_key is None:
                raise ValueError("an external weights file needs its weights_key")
            self._root.update(weights_file=self._weights_file, weights_key=weights_key)

    def write_layer(self, index: int, spec: LayerSpec, activations: np.ndarray, act_fmt: FixedPoint,
                    weights: Optional[np.ndarray], weight_fmt: FixedPoint) -> None:
        """``weights`` is ignored (may be None) when the trace links to a weights file."""
        name = _group_name(spec.name)
        g = self._f["layers"].create_group(name)
        _write_dataset(g, "activations", activations, act_fmt)
        if self._weights_file is None:
            _write_dataset(g, "weights", weights, weight_fmt)
        else:
            g["weights"] = h5py.ExternalLink(self._weights_file, f"/layers/{name}/weights")
        attrs = {"index": index, **spec.to_attrs(), **_fmt_attrs("act", act_fmt), **_fmt_attrs("weight", weight_fmt)}
        for k, v in attrs.items():
            g.attrs[k] = v
        self._names.append(spec.name)

    def close(self) -> Path:
        return self._finish({"format": FORMAT, "schema_version": SCHEMA_VERSION, "tool_version": __version__,
                             **self._root, "layers": json.dumps(self._names)})


@dataclass
class LayerTrace:
    """One layer of a trace. ``activations``/``weights`` read from disk on first access."""

    spec: LayerSpec
    index: int
    act_format: FixedPoint
    weight_format: FixedPoint
    _group: Any
    _where: str
    _weights: Any = None     # the weights dataset: in _group, or in a linked weights file

    def _read(self, key: str) -> np.ndarray:
        try:
            return (self._weights if key == "weights" else self._group[key])[()]
        except (OSError, RuntimeError, KeyError) as e:
            raise SimulatorError(f"{self._where}: {key} cannot be read: {str(e).splitlines()[0]}") from None

    @property
    def activations(self) -> np.ndarray:
        """(N, C, H, W) or (N, C) integers; value = integer * act_format.scale."""
        return self._read("activations")

    @property
    def weights(self) -> np.ndarray:
        return self._read("weights")

    @property
    def batch(self) -> int:
        return int(self._group["activations"].shape[0])


class Trace:
    """A validated, lazily read trace. Use as a context manager or call ``close``."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self._weights_files: dict[Path, h5py.File] = {}
        if not self.path.is_file():
            raise SimulatorError(f"{self.path}: no such trace file")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise SimulatorError(f"{self.path}: not a readable HDF5 file (truncated or not HDF5): {str(e).splitlines()[0]}") from None
        try:
            self._validate_root()
            self.layer_names: list[str] = json.loads(self._f.attrs["layers"])
            self._layers = {n: self._load_layer(n) for n in self.layer_names}
        except SimulatorError:
            self.close()
            raise
        except (OSError, KeyError, RuntimeError, ValueError) as e:
            # a damaged file can open yet fail on its first object header or attribute
            self.close()
            detail = str(e.args[0] if isinstance(e, KeyError) and e.args else e)   # KeyError quotes its text
            raise SimulatorError(f"{self.path}: damaged trace: {(detail.splitlines() or [type(e).__name__])[0]}") from None

    def _validate_root(self) -> None:
        a = self._f.attrs
        if a.get("format") != FORMAT:
            raise SimulatorError(f"{self.path}: an HDF5 file but not a precision-sim trace (no format='{FORMAT}' attribute)")
        if int(a.get("schema_version", -1)) != SCHEMA_VERSION:
            raise SimulatorError(f"{self.path}: trace schema version {a.get('schema_version')} is not supported "
                                 f"(this tool reads version {SCHEMA_VERSION})")
        for key in ("layers", "trace_key"):
            if key not in a:
                raise SimulatorError(f"{self.path}: trace is missing the root attribute '{key}'")
        if "layers" not in self._f:
            raise SimulatorError(f"{self.path}: trace has no /layers group")

    def _load_layer(self, name: str) -> LayerTrace:
        where = f"{self.path}: layer '{name}'"
        g = self._f["layers"].get(name.replace("/", "|"))
        if g is None:
            raise SimulatorError(f"{where}: listed in the root attributes but missing from /layers")
        try:
            spec = LayerSpec.from_attrs(g.attrs)
            layer = LayerTrace(spec, int(g.attrs["index"]), _fmt_from("act", g.attrs), _fmt_from("weight", g.attrs), g, where)
        except (KeyError, ValueError, TypeError) as e:
            raise SimulatorError(f"{where}: bad or missing attribute: {e}") from None
        for key in ("activations", "weights"):
            if key not in g:
                raise SimulatorError(f"{where}: missing dataset '{key}'")
        link = g.get("weights", getlink=True)
        layer._weights = self._linked_weights(link, where) if isinstance(link, h5py.ExternalLink) else g["weights"]
        act, w = g["activations"].shape, layer._weights.shape
        if spec.kind == CONV:
            want_a = (spec.in_channels, *spec.input_hw)
            want_w = (spec.out_channels, spec.channels_per_group, *spec.kernel)
        else:
            want_a, want_w = (spec.in_channels,), (spec.out_channels, spec.in_channels)
        if tuple(act[1:]) != want_a or tuple(w) != want_w:
            raise SimulatorError(f"{where}: dataset shapes {act}/{w} do not match the layer's attributes "
                                 f"(activations (N, {', '.join(map(str, want_a))}), weights {want_w})")
        return layer

    def _linked_weights(self, link: h5py.ExternalLink, where: str) -> h5py.Dataset:
        """The dataset an external link names, read from the linked file *beside this trace*.

        HDF5 itself would look in $HDF5_EXT_PREFIX, then the trace's folder, then the current
        directory; opening the file ourselves pins it to the trace's folder and lets us check that
        it is the weights file this trace was written with (same ``weights_key``)."""
        target = Path(link.filename)
        target = target if target.is_absolute() else self.path.parent / target
        f = self._weights_files.get(target)
        if f is None:
            if not target.is_file():
                raise SimulatorError(f"{where}: weights file '{target}' is missing")
            try:
                f = h5py.File(target, "r")
            except OSError as e:
                raise SimulatorError(f"{where}: weights file '{target}' is not readable HDF5: "
                                     f"{str(e).splitlines()[0]}") from None
            self._weights_files[target] = f
            want = self._f.attrs.get("weights_key")
            # traces we write name their weights file's key; a foreign tool's link may point anywhere
            if want is not None and (f.attrs.get("format") != WEIGHTS_FORMAT or f.attrs.get("weights_key") != want):
                raise SimulatorError(f"{where}: weights file '{target}' is foreign (its weights_key is not "
                                     f"this trace's {want})")
        ds = f.get(link.path)
        if not isinstance(ds, h5py.Dataset):
            raise SimulatorError(f"{where}: weights file '{target}' has no dataset '{link.path}'")
        return ds

    @property
    def attrs(self) -> dict[str, Any]:
        out = {}
        for k, v in self._f.attrs.items():
            if isinstance(v, str) and v[:1] in "[{":
                try:
                    v = json.loads(v)
                except json.JSONDecodeError:
                    pass
            out[k] = v.item() if isinstance(v, np.generic) else v
        return out

    @property
    def key(self) -> str:
        return str(self._f.attrs["trace_key"])

    def layer(self, name: str) -> LayerTrace:
        if name not in self._layers:
            raise SimulatorError(f"{self.path}: no layer named '{name}'")
        return self._layers[name]

    def __iter__(self) -> Iterator[LayerTrace]:
        return (self._layers[n] for n in self.layer_names)

    def __len__(self) -> int:
        return len(self.layer_names)

    def close(self) -> None:
        for f in self._weights_files.values():
            f.close()
        self._weights_files.clear()
        self._f.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_trace(path: Union[str, Path]) -> Trace:
    return Trace(path)


def is_valid_trace(path: Path, key: Optional[str] = None) -> bool:
    """True when ``path`` is a complete trace (and has ``key``, if given)."""
    try:
        with Trace(path) as t:
            return key is None or t.key == key
    except SimulatorError:
        return False


def is_valid_weights(path: Path, key: str) -> bool:
    """True when ``path`` is a complete weights file with ``key`` (every listed layer present)."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != WEIGHTS_FORMAT or f.attrs.get("weights_key") != key:
                return False
            return all(isinstance(f.get(f"layers/{_group_name(n)}/weights"), h5py.Dataset)
                       for n in json.loads(f.attrs["layers"]))
    except (OSError, KeyError, RuntimeError, ValueError):
        return False
