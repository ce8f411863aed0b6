"""HDF5 traces: bit-exact round trip, storage dtypes, attributes, lazy reading, reuse by content
hash, atomic writing, weights shared through a linked weights file, and one-line errors for
damaged or foreign files."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from simulator.errors import SimulatorError
from simulator.export import build_network, export, trace_key, weights_key
from simulator.layers import CONV, FC
from simulator.models import build_model
from simulator.profiles import resolve_profile
from simulator.quantize import quantized, storage_dtype
from simulator.traces import FORMAT, SCHEMA_VERSION, Trace, TraceWriter, is_valid_trace, open_trace
from simulator.workload import load_workload, workload_from_dict

DOC = Path(__file__).resolve().parents[1] / "docs" / "traces.md"

MIXED = {"layers": "conv", "activations": [6, 9], "weights": {"default": 8, "fc3": {"bits": 12, "frac": 10}},
         "default": 11}


def _workload(tmp: Path, **overrides):
    data = {"name": "lenet-trace", "model": {"name": "lenet5", "seed": 0},
            "input": {"source": "random", "count": 2, "seed": 1},
            "profiles": {"mixed": MIXED, "u4": "uniform-4"}, "traces_dir": str(tmp / "traces")}
    data.update(overrides)
    path = tmp / "w.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_workload(path)


def _direct_run(workload, profile: str) -> dict:
    """The integers ``quantized`` produces for each layer, without any file in between."""
    network = build_network(workload)
    precisions = resolve_profile(profile, workload.profiles[profile], network.layers)
    seen = {}

    def on_layer(index, spec, act_q, act_fmt, w_q, w_fmt):
        seen[spec.name] = (index, spec, act_q.numpy().copy(), act_fmt, w_q.numpy().copy(), w_fmt)

    with quantized(network.model, precisions, on_layer=on_layer) as q:
        q(network.inputs.images)
    return seen


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exported")
    wl = _workload(tmp)
    return wl, export(wl, progress=False)


def _weights_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.weights.h5"))


def _stat(p: Path) -> tuple[int, int]:
    s = p.stat()
    return s.st_ino, s.st_mtime_ns


# ------------------------------------------------------------------------------- contents

@pytest.mark.parametrize("profile", ["mixed", "u4"])
def test_round_trip_is_bit_exact(exported, profile):
    wl, paths = exported
    direct = _direct_run(wl, profile)
    with open_trace(paths[profile]) as trace:
        assert trace.layer_names == ["conv1", "conv2", "fc1", "fc2", "fc3"] == list(direct)
        for layer in trace:
            index, spec, act, act_fmt, w, w_fmt = direct[layer.spec.name]
            assert (layer.index, layer.spec, layer.act_format, layer.weight_format) == (index, spec, act_fmt, w_fmt)
            np.testing.assert_array_equal(layer.activations.astype(np.int64), act)
            np.testing.assert_array_equal(layer.weights.astype(np.int64), w)
            assert layer.activations.shape[0] == layer.batch == 2


def test_datasets_use_the_smallest_integer_dtype(exported):
    wl, paths = exported
    with open_trace(paths["mixed"]) as trace:
        dtypes = {l.spec.name: (l.activations.dtype, l.weights.dtype) for l in trace}
        for layer in trace:
            assert dtypes[layer.spec.name] == (storage_dtype(layer.act_format), storage_dtype(layer.weight_format))
    # conv1 sees signed noise at 6 bits; conv2 ReLU outputs at 9 unsigned bits (0..511: int16 holds
    # them); fc1 11 unsigned activation bits and 8-bit weights; fc3 12-bit weights
    assert dtypes["conv1"][0] == np.int8 and dtypes["conv2"][0] == np.int16
    assert dtypes["fc1"] == (np.int16, np.int8) and dtypes["fc3"][1] == np.int16
    assert (trace_formats := _formats(paths["u4"])) and all(v == (np.int8, np.int8) for v in trace_formats.values())


def _formats(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {n: (f[f"layers/{n}/activations"].dtype, f[f"layers/{n}/weights"].dtype) for n in f["layers"]}


def test_layer_and_root_attributes(exported):
    wl, paths = exported
    with h5py.File(paths["mixed"], "r") as f:
        root = dict(f.attrs)
        conv2, fc3 = f["layers/conv2"].attrs, f["layers/fc3"].attrs
        assert conv2["kind"] == CONV and list(conv2["kernel"]) == [5, 5] and list(conv2["stride"]) == [1, 1]
        assert list(conv2["padding"]) == [0, 0] and conv2["groups"] == 1 and conv2["index"] == 1
        assert list(conv2["input_hw"]) == [14, 14] and list(conv2["output_hw"]) == [10, 10]
        assert (conv2["act_bits"], conv2["act_signed"], conv2["weight_bits"]) == (9, False, 8)
        assert conv2["act_scale"] == 2.0 ** -int(conv2["act_frac"])
        assert fc3["kind"] == FC and (fc3["weight_bits"], fc3["weight_frac"]) == (12, 10)
        assert fc3["weight_scale"] == 2.0 ** -10 and fc3["act_bits"] == 11
        assert f["layers/conv1/activations"].compression == "gzip"
    assert root["format"] == FORMAT and root["schema_version"] == SCHEMA_VERSION
    assert json.loads(root["layers"]) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert root["profile"] == "mixed" and root["workload"] == "lenet-trace" and root["seed"] == 0
    assert paths["mixed"].name == f"lenet-trace--mixed--{root['trace_key'][:16]}.h5"
    with open_trace(paths["mixed"]) as trace:
        a = trace.attrs
        assert a["precisions"]["fc3"]["weights"] == {"bits": 12, "frac": 10, "signed": None}
        assert a["inputs"]["source"] == "random" and len(a["input_ids"]) == 2
        assert a["model"]["name"] == "lenet5" and trace.key == root["trace_key"]


def test_grouped_strided_padded_layers(tmp_path):
    """AlexNet's grouped conv2 and strided conv1, at 1/16 width on 67x67 noise (tiny)."""
    wl = workload_from_dict({"name": "alex", "model": {"name": "alexnet", "width": 0.0625},
                             "input": {"source": "random", "size": 67},
                             "profiles": {"u8": "uniform-8"}, "traces_dir": str(tmp_path)})
    path = export(wl, progress=False)["u8"]
    with open_trace(path) as trace:
        conv1, conv2 = trace.layer("conv1").spec, trace.layer("conv2").spec
        assert (conv1.kernel, conv1.stride, conv1.padding, conv1.groups) == ((11, 11), (4, 4), (0, 0), 1)
        assert (conv2.kernel, conv2.stride, conv2.padding, conv2.groups) == ((5, 5), (1, 1), (2, 2), 2)
        assert trace.layer("conv2").weights.shape == (conv2.out_channels, conv2.in_channels // 2, 5, 5)
        fc6 = trace.layer("fc6")
        assert fc6.spec.in_channels == trace.layer("conv5").spec.out_channels * 36
        assert fc6.activations.shape == (1, fc6.spec.in_channels)


def test_reader_is_lazy(exported, monkeypatch):
    wl, paths = exported
    reads = []
    original = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__", lambda self, key: reads.append(self.name) or original(self, key))
    with open_trace(paths["u4"]) as trace:
        specs = [layer.spec for layer in trace]
        assert len(specs) == 5 and reads == []
        trace.layer("fc2").weights
        assert reads == ["/layers/fc2/weights"]


def test_unknown_layer_name(exported):
    with open_trace(exported[1]["u4"]) as trace:
        with pytest.raises(SimulatorError, match="no layer named 'conv7'"):
            trace.layer("conv7")


# ------------------------------------------------------------------------------- reuse, force, atomic

def test_second_export_reuses_the_trace(tmp_path):
    wl = _workload(tmp_path)
    first = export(wl, progress=False)
    stats = {n: _stat(p) for n, p in first.items()}
    second = export(wl, progress=False)
    assert second == first
    assert {n: _stat(p) for n, p in second.items()} == stats
    forced = export(wl, profiles=["u4"], force=True, progress=False)
    assert forced["u4"] == first["u4"] and _stat(forced["u4"])[0] != stats["u4"][0]
    assert _stat(first["mixed"]) == stats["mixed"]       # --force touches only the named profile
    # the two profiles' weight precisions differ: one weights file each, beside the traces
    weights = _weights_files(tmp_path / "traces")
    assert len(weights) == 2
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == sorted(
        [p.name for p in first.values()] + [p.name for p in weights])


def _key(tmp: Path, **overrides) -> str:
    wl = _workload(tmp, **overrides)
    network = build_network(wl)
    return trace_key(network, resolve_profile("u4", wl.profiles["u4"], network.layers))


def test_the_key_covers_everything_that_changes_the_tensors(tmp_path):
    base = _key(tmp_path)
    assert _key(tmp_path) == base
    assert _key(tmp_path, profiles={"u4": "uniform-5"}) != base
    assert _key(tmp_path, profiles={"u4": {"activations": 4, "weights": 4, "default": 4, "layers": "conv"}}) == base
    assert _key(tmp_path, model={"name": "lenet5", "seed": 1}) != base
    assert _key(tmp_path, input={"source": "random", "count": 2, "seed": 2}) != base
    assert _key(tmp_path, input={"source": "random", "count": 3, "seed": 1}) != base
    assert _key(tmp_path, traces_dir=str(tmp_path / "elsewhere"), name="renamed") == base
    weights = tmp_path / "w.pt"
    torch.save(build_model("lenet5", seed=7).state_dict(), weights)
    with_weights = _key(tmp_path, model={"name": "lenet5", "weights": "w.pt"})
    assert with_weights != base
    torch.save(build_model("lenet5", seed=8).state_dict(), weights)     # same path, new bytes
    assert _key(tmp_path, model={"name": "lenet5", "weights": "w.pt"}) != with_weights


def test_a_changed_profile_writes_a_new_file(tmp_path):
    first = export(_workload(tmp_path), profiles=["u4"], progress=False)["u4"]
    second = export(_workload(tmp_path, profiles={"u4": "uniform-5"}), progress=False)["u4"]
    assert first != second and first.is_file() and second.is_file()


def test_a_crash_while_writing_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    original = TraceWriter.write_layer

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TraceWriter, "write_layer", failing)
    wl = _workload(tmp_path)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export(wl, profiles=["u4"], progress=False)
    assert list((tmp_path / "traces").iterdir()) == []      # neither the trace nor its temporary file
    monkeypatch.setattr(TraceWriter, "write_layer", original)
    path = export(wl, profiles=["u4"], progress=False)["u4"]
    assert is_valid_trace(path)


def test_a_stale_trace_under_the_name_is_rewritten(tmp_path):
    path = export(_workload(tmp_path), profiles=["u4"], progress=False)["u4"]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert not is_valid_trace(path)
    again = export(_workload(tmp_path), profiles=["u4"], progress=False)["u4"]
    assert again == path and is_valid_trace(path)


# ------------------------------------------------------------------------------- the shared weights file

SAME_WEIGHTS = {"a6": {"activations": 6, "weights": 8, "default": 8},
                "a9": {"activations": 9, "weights": 8, "default": 8},
                "w5": {"activations": 9, "weights": 5, "default": 8}}


def _inline_size(trace: Path, tmp: Path) -> int:
    """The size of ``trace`` with its weights copied in (what the export wrote before linking)."""
    inline = tmp / "inline.h5"
    with h5py.File(trace, "r") as src, h5py.File(inline, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for name, g in src["layers"].items():
            out = dst.create_group(f"layers/{name}")
            for k, v in g.attrs.items():
                out.attrs[k] = v
            for key in ("activations", "weights"):
                d = g[key]
                out.create_dataset(key, data=d[()], chunks=True, fletcher32=True, compression=d.compression,
                                   compression_opts=d.compression_opts, shuffle=d.shuffle)
    return inline.stat().st_size


def test_equal_weight_precisions_share_one_weights_file(tmp_path):
    wl = _workload(tmp_path, profiles={n: SAME_WEIGHTS[n] for n in ("a6", "a9")})
    paths = export(wl, progress=False)
    folder = tmp_path / "traces"
    (weights,) = _weights_files(folder)
    network = build_network(wl)
    key = weights_key(network, resolve_profile("a6", wl.profiles["a6"], network.layers))
    assert key == weights_key(network, resolve_profile("a9", wl.profiles["a9"], network.layers))
    assert weights.name == f"lenet5--{key[:16]}.weights.h5"
    for profile, path in paths.items():
        with h5py.File(path, "r") as f:
            assert f.attrs["weights_file"] == weights.name and f.attrs["weights_key"] == key
            for name, g in f["layers"].items():
                link = g.get("weights", getlink=True)
                assert isinstance(link, h5py.ExternalLink)
                assert (link.filename, link.path) == (weights.name, f"/layers/{name}/weights")
        # LeNet's weights dwarf two inputs' activations: a trace is well under half an inline one,
        # and what it no longer holds is most of the weights file
        inline = _inline_size(path, tmp_path)
        assert path.stat().st_size * 2 < inline and inline - path.stat().st_size > weights.stat().st_size // 2
        direct = _direct_run(wl, profile)
        with open_trace(path) as trace:
            for layer in trace:
                np.testing.assert_array_equal(layer.weights.astype(np.int64), direct[layer.spec.name][4])
                assert layer.weights.dtype == storage_dtype(layer.weight_format)


def test_another_weight_precision_gets_its_own_weights_file(tmp_path):
    export(_workload(tmp_path, profiles={n: SAME_WEIGHTS[n] for n in ("a6", "a9")}), progress=False)
    (first,) = _weights_files(tmp_path / "traces")
    before = _stat(first)
    paths = export(_workload(tmp_path, profiles=SAME_WEIGHTS), progress=False)
    assert len(_weights_files(tmp_path / "traces")) == 2 and _stat(first) == before     # reused, not rewritten
    direct = _direct_run(_workload(tmp_path, profiles=SAME_WEIGHTS), "w5")
    with open_trace(paths["w5"]) as trace:
        assert trace.attrs["weights_file"] != first.name
        for layer in trace:
            assert layer.weight_format.bits == 5
            np.testing.assert_array_equal(layer.weights.astype(np.int64), direct[layer.spec.name][4])


def test_a_missing_weights_file_fails_and_export_rewrites_it(tmp_path):
    wl = _workload(tmp_path, profiles={n: SAME_WEIGHTS[n] for n in ("a6", "a9")})
    paths = export(wl, progress=False)
    (weights,) = _weights_files(tmp_path / "traces")
    weights.unlink()
    for path in paths.values():
        msg = _open_error(path)
        assert "layer 'conv1'" in msg and f"weights file '{weights}' is missing" in msg
    again = export(wl, progress=False)
    assert again == paths and weights.is_file()
    assert _weights_files(tmp_path / "traces") == [weights]
    direct = _direct_run(wl, "a9")
    for path in again.values():
        assert is_valid_trace(path)
        with open_trace(path) as trace:
            for layer in trace:
                np.testing.assert_array_equal(layer.weights.astype(np.int64), direct[layer.spec.name][4])


def test_a_foreign_weights_file_under_the_name_is_rejected(tmp_path):
    wl = _workload(tmp_path, profiles=SAME_WEIGHTS)
    paths = export(wl, progress=False)
    with h5py.File(paths["a6"], "r") as f:
        mine = tmp_path / "traces" / f.attrs["weights_file"]
    with h5py.File(paths["w5"], "r") as f:
        other = tmp_path / "traces" / f.attrs["weights_file"]
    shutil.copy(other, mine)          # the right name, another key
    msg = _open_error(paths["a6"])
    assert "layer 'conv1'" in msg and f"weights file '{mine}' is foreign" in msg
    export(wl, progress=False)
    assert is_valid_trace(paths["a6"]) and is_valid_trace(paths["w5"])


def test_a_moved_traces_folder_opens_from_another_directory(tmp_path, monkeypatch):
    wl = _workload(tmp_path, profiles={"a6": SAME_WEIGHTS["a6"]})
    path = export(wl, progress=False)["a6"]
    direct = _direct_run(wl, "a6")
    moved = tmp_path / "moved" / "deeper"
    moved.parent.mkdir()
    (tmp_path / "traces").rename(moved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with open_trace(moved / path.name) as trace:
        for layer in trace:
            np.testing.assert_array_equal(layer.weights.astype(np.int64), direct[layer.spec.name][4])
    # plain h5py follows the link too: HDF5 looks for a relative link's file beside the linking file
    with h5py.File(moved / path.name, "r") as f:
        np.testing.assert_array_equal(f["layers/fc3/weights"][()].astype(np.int64), direct["fc3"][4])
    # and by a relative path from another directory
    monkeypatch.chdir(tmp_path / "moved")
    with open_trace(Path("deeper") / path.name) as trace:
        assert trace.layer("conv2").weights.shape == (16, 6, 5, 5)


def test_a_crash_while_writing_the_weights_file_leaves_nothing(tmp_path, monkeypatch):
    from simulator.traces import WeightsWriter

    def failing(self, *args, **kwargs):
        raise RuntimeError("weights on fire")

    monkeypatch.setattr(WeightsWriter, "write_layer", failing)
    with pytest.raises(RuntimeError, match="weights on fire"):
        export(_workload(tmp_path), profiles=["u4"], progress=False)
    assert list((tmp_path / "traces").iterdir()) == []


def test_a_crash_after_the_weights_file_keeps_it_for_reuse(tmp_path, monkeypatch):
    """The weights file is complete (renamed) before the trace is closed; a failing trace close
    leaves the weights file valid, and the next export reuses it."""
    original = TraceWriter.close

    def failing(self):
        raise RuntimeError("trace on fire")

    monkeypatch.setattr(TraceWriter, "close", failing)
    wl = _workload(tmp_path)
    with pytest.raises(RuntimeError, match="trace on fire"):
        export(wl, profiles=["u4"], progress=False)
    (weights,) = _weights_files(tmp_path / "traces")
    before = _stat(weights)
    monkeypatch.setattr(TraceWriter, "close", original)
    path = export(wl, profiles=["u4"], progress=False)["u4"]
    assert is_valid_trace(path) and _stat(weights) == before


# ------------------------------------------------------------------------------- damaged and foreign files

def _open_error(path: Path) -> str:
    with pytest.raises(SimulatorError) as e:
        Trace(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    assert not is_valid_trace(path)
    return msg


def test_truncated_trace(exported, tmp_path):
    copy = tmp_path / "half.h5"
    shutil.copy(exported[1]["mixed"], copy)
    os.truncate(copy, copy.stat().st_size // 2)
    assert "truncated" in _open_error(copy)


def test_foreign_hdf5_file(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(10)
    assert "not a precision-sim trace" in _open_error(path)


def test_not_hdf5_at_all(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("just text\n")
    assert "not a readable HDF5 file" in _open_error(path)


def test_missing_file(tmp_path):
    assert "no such trace file" in _open_error(tmp_path / "gone.h5")


def _damaged_copy(exported, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "edited.h5"
    shutil.copy(exported[1]["mixed"], copy)
    for w in _weights_files(exported[1]["mixed"].parent):     # the copy links to them by base name
        shutil.copy(w, tmp_path / w.name)
    with h5py.File(copy, "r+") as f:
        edit(f)
    return copy


def test_layer_missing_a_dataset_names_the_layer(exported, tmp_path):
    path = _damaged_copy(exported, tmp_path, lambda f: f.__delitem__("layers/conv2/weights"))
    msg = _open_error(path)
    assert "layer 'conv2'" in msg and "missing dataset 'weights'" in msg


def test_layer_missing_its_group(exported, tmp_path):
    path = _damaged_copy(exported, tmp_path, lambda f: f.__delitem__("layers/fc1"))
    assert "layer 'fc1'" in _open_error(path)


def test_layer_with_a_missing_attribute(exported, tmp_path):
    path = _damaged_copy(exported, tmp_path, lambda f: f["layers/fc2"].attrs.__delitem__("act_frac"))
    msg = _open_error(path)
    assert "layer 'fc2'" in msg and "act_frac" in msg


def test_shape_mismatch_names_the_layer(exported, tmp_path):
    def edit(f):
        del f["layers/fc2/activations"]
        f["layers/fc2/activations"] = np.zeros((2, 7), dtype=np.uint8)
    msg = _open_error(_damaged_copy(exported, tmp_path, edit))
    assert "layer 'fc2'" in msg and "do not match" in msg


def test_unsupported_schema_version(exported, tmp_path):
    path = _damaged_copy(exported, tmp_path, lambda f: f.attrs.__setitem__("schema_version", 99))
    assert "schema version 99" in _open_error(path)


def test_corrupt_bytes_in_the_metadata(exported, tmp_path):
    """Zeroed bytes inside the file's metadata: a one-line error, never an h5py traceback."""
    src = exported[1]["u4"].read_bytes()
    messages = []
    for offset in range(512, 2048, 128):
        damaged = tmp_path / f"zeroed-{offset}.h5"
        damaged.write_bytes(src[:offset] + bytes(256) + src[offset + 256:])
        try:
            with open_trace(damaged) as trace:
                for layer in trace:
                    layer.activations, layer.weights
        except SimulatorError as e:
            assert "\n" not in str(e) and str(damaged) in str(e)
            messages.append(str(e))
    assert any("damaged trace" in m for m in messages), messages


# ------------------------------------------------------------------------------- the documented schema

def test_the_documented_example_writes_a_readable_trace(tmp_path, monkeypatch):
    """docs/traces.md's example, run as written: another tool's trace is read like our own."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {"__name__": "doc_example"})
    written = sorted(tmp_path.glob("*.h5"))
    assert len(written) == 1
    with open_trace(written[0]) as trace:
        layers = list(trace)
        assert [l.spec.kind for l in layers] == [CONV, FC]
        for layer in layers:
            assert layer.activations.dtype == storage_dtype(layer.act_format)
            assert layer.activations.min() >= layer.act_format.qmin
            assert layer.activations.max() <= layer.act_format.qmax
