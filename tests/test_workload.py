"""Workload files: the shipped examples load, and every mistake is one line naming the file and
the key path (unknown keys list the valid ones, wrong types name the expected one)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import torch

from simulator.errors import SimulatorError
from simulator.export import build_network
from simulator.models import build_model
from simulator.profiles import parse_profile
from simulator.workload import Workload, load_workload, workload_from_dict

REPO = Path(__file__).resolve().parents[1]


def _error(path: Path) -> str:
    with pytest.raises(SimulatorError) as e:
        load_workload(path)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    return msg


# ------------------------------------------------------------------------------- good files

def test_shipped_workloads_load():
    vgg = load_workload(REPO / "workloads" / "vgg19.yaml")
    assert vgg.model.name == "vgg19" and vgg.input.size == 224
    assert list(vgg.profiles) == ["uniform-16", "stripes-100", "stripes-99"]
    assert vgg.profiles["uniform-16"] == parse_profile("uniform-16")
    assert vgg.profiles["stripes-100"].layers == "conv" and len(vgg.profiles["stripes-100"].activations) == 16
    assert vgg.baseline_accelerator.name == "dadiannao"
    with resources.as_file(resources.files("simulator") / "data" / "default.yaml") as p:
        default = load_workload(p)
    assert default.model.name == "alexnet" and default.profiles["stripes-100"].activations == [9, 8, 5, 5, 7]


def test_defaults(write_workload):
    wl = load_workload(write_workload({"name": "x", "model": {"name": "lenet5"}}))
    assert list(wl.profiles) == ["uniform-16"] and wl.profiles["uniform-16"].default == 16
    assert [a.name for a in wl.accelerators] == ["dadiannao", "stripes"]
    assert wl.traces_dir == "traces" and wl.input.count == 1


def test_relative_paths_resolve_against_the_workload_file(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "w.yaml").write_text("name: x\nmodel: {name: lenet5, weights: w.pt}\n")
    wl = load_workload(sub / "w.yaml")
    assert wl.resolve_path("w.pt") == sub / "w.pt"
    assert wl.resolve_path(str(tmp_path / "abs.pt")) == tmp_path / "abs.pt"


def test_workload_from_dict_names_its_source():
    with pytest.raises(SimulatorError, match=r"^mine: model: required key is missing$"):
        workload_from_dict({"name": "x"}, "mine")
    assert isinstance(workload_from_dict({"name": "x", "model": {"name": "lenet5"}}), Workload)


# ------------------------------------------------------------------------------- mistakes

def test_unknown_top_level_key_lists_valid_keys(write_workload, lenet):
    msg = _error(write_workload(lenet(profiless={"a": "uniform-8"})))
    assert "profiless: unknown key" in msg
    for key in ("name", "model", "input", "profiles", "accelerators", "memory", "traces_dir"):
        assert key in msg.split("valid keys:")[1]
    assert "source_path" not in msg


def test_unknown_model_key(write_workload, lenet):
    msg = _error(write_workload(lenet(model={"nme": "lenet5"})))
    assert "model.nme: unknown key; valid keys: name, weights, width, num_classes, seed" in msg


def test_unknown_key_in_a_list_item(write_workload, lenet):
    msg = _error(write_workload(lenet(accelerators=[{"name": "a", "engine": "bit-serial", "tilez": 4}])))
    assert "accelerators.0.tilez: unknown key" in msg
    assert "tiles" in msg and "columns" in msg and "engine" in msg


def test_unknown_key_inside_a_profile(write_workload, lenet):
    msg = _error(write_workload(lenet(profiles={"p": {"activations": {"conv1": {"bits": 3, "fracc": 1}}}})))
    assert "profiles.p.activations.conv1.fracc: unknown key; valid keys: bits, frac, signed" in msg
    assert "TensorEntry" not in msg


def test_wrong_type_names_the_expected_type(write_workload, lenet):
    msg = _error(write_workload(lenet(input={"source": "random", "count": "abc"})))
    assert "input.count:" in msg and "integer" in msg and "'abc'" in msg


def test_wrong_type_in_a_profile_has_a_clean_path(write_workload, lenet):
    msg = _error(write_workload(lenet(profiles={"p": {"activations": "abc"}})))
    assert "profiles.p.activations:" in msg and "constrained" not in msg


def test_bad_enum_lists_choices(write_workload, lenet):
    msg = _error(write_workload(lenet(input={"source": "webcam"})))
    assert "input.source:" in msg and "'random'" in msg and "'webcam'" in msg


@pytest.mark.parametrize("drop, path", [("name", "name"), ("model", "model")])
def test_missing_required_key(write_workload, lenet, drop, path):
    data = lenet()
    del data[drop]
    assert f"{path}: required key is missing" in _error(write_workload(data))


def test_missing_nested_required_key(write_workload, lenet):
    assert "model.name: required key is missing" in _error(write_workload(lenet(model={"seed": 3})))


def test_bad_profile_shorthand_names_the_profile(write_workload, lenet):
    msg = _error(write_workload(lenet(profiles={"good": "uniform-8", "bad": "uniform-x"})))
    assert "profiles.bad:" in msg and "'uniform-x' is not a profile" in msg


def test_invalid_yaml_names_the_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nmodel: {name: lenet5\n  seed: [1,\n")
    msg = _error(p)
    assert "not valid YAML" in msg and "line" in msg


def test_not_a_mapping(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    assert "must be a YAML mapping" in _error(p)


def test_missing_file(tmp_path):
    assert "no such workload file" in _error(tmp_path / "nope.yaml")


def test_unknown_baseline(write_workload, lenet):
    wl = load_workload(write_workload(lenet(baseline="tpu")))
    with pytest.raises(SimulatorError, match="baseline: no accelerator named 'tpu'"):
        wl.baseline_accelerator


# ------------------------------------------------------------------------------- errors found when building

def _build_error(path: Path) -> str:
    with pytest.raises(SimulatorError) as e:
        build_network(load_workload(path))
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


def test_unknown_model_name(write_workload, lenet):
    msg = _build_error(write_workload(lenet(model={"name": "lenet6"})))
    assert "model.name: unknown model 'lenet6'" in msg and "lenet5" in msg


def test_missing_weights_file(write_workload, lenet):
    msg = _build_error(write_workload(lenet(model={"name": "lenet5", "weights": "missing.pt"})))
    assert "model.weights: no such file" in msg and "missing.pt" in msg


def test_weights_file_is_loaded(write_workload, lenet, tmp_path):
    torch.save(build_model("lenet5", seed=5).state_dict(), tmp_path / "w.pt")
    net = build_network(load_workload(write_workload(lenet(model={"name": "lenet5", "weights": "w.pt"}))))
    assert torch.equal(net.model.conv1.weight, build_model("lenet5", seed=5).conv1.weight)
    assert net.identity["weights_sha256"] is not None
