"""The model zoo: layer structure, MAC totals, seeded initialisation, width, weights and errors."""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from simulator.errors import SimulatorError
from simulator.layers import CONV, FC, LayerSpec, shapes_of
from simulator.models import ZOO, build_model

GIGA = 1e9


@pytest.fixture(scope="module")
def zoo_specs() -> Callable[[str, int | None], list[LayerSpec]]:
    """Per-layer specs of each zoo model at a given input side, building each model only once."""
    models: dict[str, nn.Module] = {}
    cache: dict[tuple[str, int], list[LayerSpec]] = {}

    def get(name: str, size: int | None = None) -> list[LayerSpec]:
        info = ZOO[name]
        size = info.image_size if size is None else size
        if (name, size) not in cache:
            if name not in models:
                models[name] = build_model(name)
            cache[(name, size)] = shapes_of(models[name], (info.in_channels, size, size))
        return cache[(name, size)]

    return get


def _total_macs(specs: list[LayerSpec]) -> int:
    return sum(s.macs for s in specs)


def _names(specs: list[LayerSpec], kind: str) -> list[str]:
    return [s.name for s in specs if s.kind == kind]


# ------------------------------------------------------------------------------- structure

def test_zoo_lists_the_papers_networks_with_their_defaults() -> None:
    # the papers' networks, plus vgg_small: the deeper digits network trained by the project
    assert set(ZOO) == {"lenet5", "alexnet", "vgg16", "vgg19", "nin", "googlenet", "resnet18", "resnet50",
                        "mobilenet_v2", "vgg_small"}
    assert ZOO["alexnet"].image_size == 227 and ZOO["lenet5"].image_size == 32
    assert ZOO["lenet5"].input_shape == (1, 32, 32) and ZOO["lenet5"].num_classes == 10
    assert all(info.image_size == 224 for n, info in ZOO.items() if n not in ("alexnet", "lenet5", "vgg_small"))
    assert ZOO["vgg_small"].input_shape == (1, 32, 32)
    assert all(info.description for info in ZOO.values())


@pytest.mark.parametrize("name,stages", [("vgg16", (2, 2, 3, 3, 3)), ("vgg19", (2, 2, 4, 4, 4))])
def test_vgg_layers(zoo_specs, name: str, stages: tuple[int, ...]) -> None:
    specs = zoo_specs(name)
    expected = [f"conv{s}_{i}" for s, n in enumerate(stages, start=1) for i in range(1, n + 1)]
    assert _names(specs, CONV) == expected                     # 13 (vgg16) / 16 (vgg19) convs
    assert _names(specs, FC) == ["fc6", "fc7", "fc8"]
    assert all(s.kernel == (3, 3) and s.padding == (1, 1) for s in specs if s.kind == CONV)
    assert specs[-3].in_channels == 512 * 7 * 7 and specs[-1].out_channels == 1000


def test_alexnet_is_the_grouped_caffe_definition(zoo_specs) -> None:
    specs = zoo_specs("alexnet")
    assert _names(specs, CONV) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert _names(specs, FC) == ["fc6", "fc7", "fc8"]
    convs = [s for s in specs if s.kind == CONV]
    assert [s.groups for s in convs] == [1, 2, 1, 2, 2]
    assert [s.out_channels for s in convs] == [96, 256, 384, 384, 256]
    assert convs[0].kernel == (11, 11) and convs[0].stride == (4, 4)
    # Caffe's feature-map sizes at 227: 55 after conv1, 27 after pool1, 13 after pool2.
    assert [s.output_hw for s in convs] == [(55, 55), (27, 27), (13, 13), (13, 13), (13, 13)]
    # Hand arithmetic (Ox*Oy*K*C/groups*Kx*Ky) for every layer at 227.
    assert [s.macs for s in specs] == [
        55 * 55 * 96 * 3 * 121, 27 * 27 * 256 * 48 * 25, 13 * 13 * 384 * 256 * 9, 13 * 13 * 384 * 192 * 9,
        13 * 13 * 256 * 192 * 9, 256 * 36 * 4096, 4096 * 4096, 4096 * 1000]


def test_nin_has_twelve_convolutions_and_no_fc(zoo_specs) -> None:
    specs = zoo_specs("nin")
    assert _names(specs, CONV) == ["conv1", "cccp1", "cccp2", "conv2", "cccp3", "cccp4",
                                   "conv3", "cccp5", "cccp6", "conv4", "cccp7", "cccp8"]
    assert _names(specs, FC) == []
    assert specs[-1].out_channels == 1000 and specs[-2].out_channels == 1024
    assert all(s.kernel == (1, 1) for s in specs if s.name.startswith("cccp"))


def test_googlenet_has_conv1_conv2_and_nine_inception_modules(zoo_specs) -> None:
    specs = zoo_specs("googlenet")
    convs = _names(specs, CONV)
    assert convs[:3] == ["conv1", "conv2_reduce", "conv2"]
    modules = list(dict.fromkeys(n.split(".")[0] for n in convs[3:]))
    assert modules == [f"inception_{t}" for t in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert len(convs) == 3 + 9 * 6
    by_name = {s.name: s for s in specs}
    # Paper table 1: 3a concatenates 64+128+32+32 = 256 channels, 5b gives 1024 to the classifier.
    assert by_name["inception_3b.b1"].in_channels == 256
    assert by_name["inception_3a.b3"].kernel == (5, 5) and by_name["inception_3a.b3"].padding == (2, 2)
    assert _names(specs, FC) == ["fc"] and by_name["fc"].in_channels == 1024
    assert by_name["inception_5b.b1"].input_hw == (7, 7)


def test_resnet_and_mobilenet_structure(zoo_specs) -> None:
    r18, r50, mb = zoo_specs("resnet18"), zoo_specs("resnet50"), zoo_specs("mobilenet_v2")
    assert len(_names(r18, CONV)) == 1 + 16 + 3 and _names(r18, FC) == ["fc"]   # + 3 projection shortcuts
    assert len(_names(r50, CONV)) == 1 + 48 + 4 and _names(r50, FC) == ["fc"]
    assert "layer1.0.conv1" in _names(r18, CONV) and "layer2.0.downsample.0" in _names(r18, CONV)
    assert r50[-1].in_channels == 2048
    depthwise = [s for s in mb if s.name.endswith("depthwise")]
    assert len(depthwise) == 17
    assert all(s.groups == s.in_channels == s.out_channels and s.kernel == (3, 3) for s in depthwise)
    assert mb[-1].in_channels == 1280


def test_every_model_uses_explicit_integer_padding() -> None:
    for name in ("lenet5", "nin", "googlenet", "resnet18", "mobilenet_v2"):
        for module in build_model(name).modules():
            if isinstance(module, nn.Conv2d):
                assert isinstance(module.padding, tuple) and all(isinstance(p, int) for p in module.padding)


# ------------------------------------------------------------------------------- MAC totals

# Published totals (multiply-accumulates for one image) and the tolerance each is tested with.
# VGG, ResNet and MobileNetV2 figures as usually quoted (reference/README.md; MobileNetV2 paper
# table 3: 300M multiply-adds). GoogLeNet's paper gives a "1.5 billion multiply-adds" budget; its
# table 1 channels give 1.58 G without the auxiliary classifiers, hence the wider tolerance.
@pytest.mark.parametrize("name,gmac,tol", [
    ("vgg19", 19.6, 0.03), ("vgg16", 15.5, 0.03), ("resnet50", 4.1, 0.03), ("resnet18", 1.8, 0.03),
    ("mobilenet_v2", 0.30, 0.03), ("googlenet", 1.5, 0.06),
])
def test_total_macs_match_published_figures(zoo_specs, name: str, gmac: float, tol: float) -> None:
    measured = _total_macs(zoo_specs(name)) / GIGA
    assert measured == pytest.approx(gmac, rel=tol)


@pytest.mark.parametrize("size", [227, 224])
def test_alexnet_macs_at_227_and_224(zoo_specs, size: int) -> None:
    # The grouped Caffe AlexNet does 0.724 GMAC at 227 and 0.721 GMAC at 224 (with Caffe's ceil-mode
    # pooling only conv1 differs: 55x55 vs 54x54 windows); the single-tower figure quoted is 0.72.
    assert _total_macs(zoo_specs("alexnet", size)) / GIGA == pytest.approx(0.72, rel=0.03)


def test_lenet5_macs_by_hand(zoo_specs) -> None:
    specs = zoo_specs("lenet5")
    assert [s.name for s in specs] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert _total_macs(specs) == 28 * 28 * 6 * 25 + 10 * 10 * 16 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10


# ------------------------------------------------------------------------------- initialisation

def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_seeded_initialisation_is_deterministic_and_leaves_global_rng_alone() -> None:
    rng_before = torch.get_rng_state()
    a, b, c = (_weights(build_model("lenet5", seed=s)) for s in (7, 7, 8))
    assert torch.equal(rng_before, torch.get_rng_state())
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
    assert not torch.equal(a["fc1.weight"], c["fc1.weight"])


def test_initialisation_is_kaiming_normal_with_zero_bias_and_identity_batchnorm() -> None:
    r18 = build_model("resnet18", seed=1)
    assert not r18.training
    w = r18.get_submodule("layer3.0.conv2").weight          # 256 filters, fan_in 256*3*3
    assert w.mean().item() == pytest.approx(0.0, abs=2e-4)
    assert w.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    bn = r18.get_submodule("layer3.0.bn2")
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert torch.all(bn.running_mean == 0) and torch.all(bn.running_var == 1)
    lenet = build_model("lenet5")
    assert all(torch.all(m.bias == 0) for m in lenet.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    # Grouped fan_in: each depthwise filter sees 1*3*3 inputs.
    dw = build_model("mobilenet_v2").get_submodule("blocks.1.depthwise").weight
    assert dw.std().item() == pytest.approx(math.sqrt(2 / 9), rel=0.1)


# ------------------------------------------------------------------------------- width, classes, channels

@pytest.mark.parametrize("name", ["resnet18", "googlenet", "mobilenet_v2", "lenet5"])
def test_width_two_quadruples_inner_layers(zoo_specs, name: str) -> None:
    info = ZOO[name]
    base = zoo_specs(name)
    wide = shapes_of(build_model(name, width=2.0), info.input_shape)
    assert [s.name for s in wide] == [s.name for s in base]
    assert wide[0].in_channels == info.in_channels and wide[-1].out_channels == info.num_classes
    assert wide[0].macs == 2 * base[0].macs and wide[-1].macs == 2 * base[-1].macs
    # Depthwise layers are the exception: one input channel per filter, so they only double.
    inner = [(b, w) for b, w in zip(base[1:-1], wide[1:-1]) if b.channels_per_group > 1 or b.groups == 1]
    assert all(w.macs == 4 * b.macs for b, w in inner)
    depthwise = [(b, w) for b, w in zip(base, wide) if b.groups > 1 and b.channels_per_group == 1]
    assert all(w.macs == 2 * b.macs for b, w in depthwise)


def test_fractional_width_keeps_alexnet_groups_divisible() -> None:
    specs = shapes_of(build_model("alexnet", width=0.3), (3, 224, 224))
    assert [s.out_channels for s in specs if s.kind == CONV] == [28, 76, 116, 116, 76]
    assert all(s.in_channels % s.groups == 0 and s.out_channels % s.groups == 0 for s in specs)
    assert specs[0].in_channels == 3 and specs[-1].out_channels == 1000


def test_num_classes_and_in_channels_overrides() -> None:
    model = build_model("lenet5", num_classes=7, in_channels=3)
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 7)
    specs = shapes_of(build_model("nin", num_classes=10, width=0.25), (3, 224, 224))
    assert specs[-1].out_channels == 10 and specs[0].out_channels == 24


# ------------------------------------------------------------------------------- weights and errors

@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_weights_round_trip(tmp_path, name: str) -> None:
    source = build_model(name, seed=3)
    path = tmp_path / f"{name}.pt"
    torch.save(source.state_dict(), path)
    loaded = build_model(name, seed=0, weights=str(path))
    assert not loaded.training
    expected = source.state_dict()
    assert all(torch.equal(expected[k], v) for k, v in loaded.state_dict().items())
    x = torch.randn(2, *ZOO[name].input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(SimulatorError, match="unknown model 'vgg20'") as err:
        build_model("vgg20")
    assert all(name in str(err.value) for name in ZOO)


def test_missing_weights_file_names_the_path(tmp_path) -> None:
    path = tmp_path / "nowhere" / "w.pt"
    with pytest.raises(SimulatorError, match="not found") as err:
        build_model("lenet5", weights=path)
    assert str(path) in str(err.value)


def _saved(tmp_path, state: dict[str, torch.Tensor], filename: str):
    path = tmp_path / filename
    torch.save(state, path)
    return path


def test_mismatched_state_dict_names_file_and_first_key(tmp_path) -> None:
    good = build_model("lenet5").state_dict()
    missing = _saved(tmp_path, {k: v for k, v in good.items() if k != "conv2.weight"}, "missing.pt")
    with pytest.raises(SimulatorError, match=r"missing\.pt.*missing key 'conv2\.weight'"):
        build_model("lenet5", weights=missing)
    extra = _saved(tmp_path, {**good, "conv9.weight": torch.zeros(1)}, "extra.pt")
    with pytest.raises(SimulatorError, match=r"extra\.pt.*unexpected key 'conv9\.weight'"):
        build_model("lenet5", weights=extra)
    shaped = _saved(tmp_path, build_model("lenet5", num_classes=5).state_dict(), "shape.pt")
    with pytest.raises(SimulatorError, match=r"shape\.pt.*'fc3\.weight' has shape \(5, 84\)"):
        build_model("lenet5", weights=shaped)


def test_unreadable_weights_and_bad_arguments_are_user_errors(tmp_path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(SimulatorError, match="junk.pt"):
        build_model("lenet5", weights=junk)
    with pytest.raises(SimulatorError, match="width"):
        build_model("lenet5", width=0)
    with pytest.raises(SimulatorError, match="num_classes"):
        build_model("lenet5", num_classes=0)
