"""Per-layer precision profiles: the uniform shorthand, lists, mappings with module prefixes,
the conv/fc scope of lists, full tensor entries, and the errors of each."""
from __future__ import annotations

import pydantic
import pytest

from simulator.errors import SimulatorError
from simulator.layers import CONV, FC, LayerSpec, shapes_of
from simulator.models import build_model
from simulator.profiles import ProfileSpec, parse_profile, precision_table, resolve_profile
from simulator.quantize import LayerPrecision, TensorPrecision


def _spec(name: str, kind: str = CONV) -> LayerSpec:
    if kind == FC:
        return LayerSpec(name, FC, 8, 4, (1, 1), (1, 1), (0, 0), 1, (1, 1), (1, 1))
    return LayerSpec(name, CONV, 4, 4, (3, 3), (1, 1), (1, 1), 1, (6, 6), (6, 6))


@pytest.fixture(scope="module")
def lenet_layers() -> list[LayerSpec]:
    return shapes_of(build_model("lenet5"), (1, 32, 32))


# An inception-like network: module names with dots, and a sibling whose name extends a module's.
NESTED = [_spec("stem"), _spec("block.a"), _spec("block.b.x"), _spec("blockx"), _spec("fc", FC)]


def _bits(precisions: dict[str, LayerPrecision], what: str = "activations") -> dict[str, int]:
    return {n: getattr(p, what).bits for n, p in precisions.items()}


def test_uniform_shorthand(lenet_layers):
    profile = parse_profile("uniform-7")
    precisions = resolve_profile("uniform-7", profile, lenet_layers)
    assert list(precisions) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert all(p == LayerPrecision(TensorPrecision(7), TensorPrecision(7)) for p in precisions.values())


@pytest.mark.parametrize("bad", ["uniform-0", "uniform-", "uniform8", "16", "int8"])
def test_bad_shorthand_is_refused(bad):
    with pytest.raises(ValueError, match=f"'{bad}' is not a profile"):
        parse_profile(bad)
    with pytest.raises(pydantic.ValidationError):
        ProfileSpec.model_validate(bad)


def test_shorthand_validates_as_a_profile_spec_too():
    assert ProfileSpec.model_validate("uniform-12") == parse_profile("uniform-12")


def test_list_indexes_the_selected_layers_in_order(lenet_layers):
    profile = parse_profile({"activations": [9, 8, 7, 6, 5], "weights": 11})
    precisions = resolve_profile("p", profile, lenet_layers)
    assert _bits(precisions) == {"conv1": 9, "conv2": 8, "fc1": 7, "fc2": 6, "fc3": 5}
    assert set(_bits(precisions, "weights").values()) == {11}


def test_conv_scope_list_and_default_for_fc(lenet_layers):
    profile = parse_profile({"layers": "conv", "activations": [9, 5], "weights": 16, "default": 12})
    precisions = resolve_profile("stripes", profile, lenet_layers)
    assert _bits(precisions) == {"conv1": 9, "conv2": 5, "fc1": 12, "fc2": 12, "fc3": 12}
    assert set(_bits(precisions, "weights").values()) == {16}


def test_fc_scope_list(lenet_layers):
    profile = parse_profile({"layers": "fc", "weights": [3, 4, 5], "default": 10})
    precisions = resolve_profile("p", profile, lenet_layers)
    assert _bits(precisions, "weights") == {"conv1": 10, "conv2": 10, "fc1": 3, "fc2": 4, "fc3": 5}
    assert set(_bits(precisions).values()) == {10}      # activations left out: default everywhere


def test_list_length_mismatch_names_profile_and_counts(lenet_layers):
    profile = parse_profile({"layers": "conv", "activations": [9, 8, 7]})
    with pytest.raises(SimulatorError) as e:
        resolve_profile("stripes-99", profile, lenet_layers)
    msg = str(e.value)
    assert "stripes-99" in msg and "activations" in msg
    assert "3 precisions" in msg and "2 conv layer(s)" in msg and "conv1, conv2" in msg
    assert "\n" not in msg


def test_mapping_with_default_and_prefix_keys():
    profile = parse_profile({"activations": {"default": 6, "block": 4, "fc": 9}})
    precisions = resolve_profile("p", profile, NESTED)
    # 'block' covers block.a and block.b.x, but not 'blockx'
    assert _bits(precisions) == {"stem": 6, "block.a": 4, "block.b.x": 4, "blockx": 6, "fc": 9}


def test_mapping_without_default_uses_the_profile_default():
    profile = parse_profile({"weights": {"block.b": 3}, "default": 14})
    precisions = resolve_profile("p", profile, NESTED)
    assert _bits(precisions, "weights") == {"stem": 14, "block.a": 14, "block.b.x": 3, "blockx": 14, "fc": 14}


def test_mapping_unknown_layer_names_profile_and_layer():
    profile = parse_profile({"activations": {"conv9": 4}})
    with pytest.raises(SimulatorError) as e:
        resolve_profile("mine", profile, NESTED)
    msg = str(e.value)
    assert "'mine'" in msg and "'conv9'" in msg and "stem" in msg and "\n" not in msg


def test_tensor_entries_with_frac_and_sign():
    profile = parse_profile({
        "activations": {"stem": {"bits": 8, "frac": 3, "signed": False}, "default": {"bits": 10}},
        "weights": [{"bits": 6, "frac": 5, "signed": True}, 4, 4, 4, 4],
    })
    precisions = resolve_profile("p", profile, NESTED)
    assert precisions["stem"].activations == TensorPrecision(8, 3, False)
    assert precisions["fc"].activations == TensorPrecision(10)
    assert precisions["stem"].weights == TensorPrecision(6, 5, True)
    assert precisions["fc"].weights == TensorPrecision(4)
    table = precision_table(precisions)
    assert table["stem"] == {"activations": {"bits": 8, "frac": 3, "signed": False},
                             "weights": {"bits": 6, "frac": 5, "signed": True}}


@pytest.mark.parametrize("bad", [
    {"activations": 0},
    {"activations": [8, -1]},
    {"activations": {"stem": {"bits": 8, "fracc": 2}}},
    {"layers": "pool"},
    {"activationz": 8},
])
def test_invalid_profile_mappings(bad):
    with pytest.raises(pydantic.ValidationError):
        parse_profile(bad)
