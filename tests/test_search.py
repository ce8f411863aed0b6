"""Precision search: each method's profile meets its target on the validation split, the noise gains
against hand-derived gradients, the Sakr allocation rule, profile YAML and cost, WRPN's quantizer."""
from __future__ import annotations

import argparse
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from simulator.accuracy import Evaluator
from simulator.errors import SimulatorError
from simulator.models import build_model
from simulator.profiles import resolve_profile
from simulator.quantize import LayerPrecision, TensorPrecision
from simulator.search import search
from simulator.search.command import add_parser
from simulator.search.common import TensorRange, profile_cost, profile_spec, profiles_yaml, tensor_ranges, uniform
from simulator.search.judd import SensitivityTable, judd_search, sensitivity
from simulator.search.sakr import (NoiseGains, allocation, mismatch_bound, noise_gains, offsets,
                                   per_sample_weight_grad_sq, sakr_search, target_mismatch)
from simulator.search.uniform import uniform_search
from simulator.search.wrpn import make_wrpn, wrpn_activations, wrpn_weights
from simulator.train import DATA_DIR, digits_batch
from simulator.workload import load_workload, workload_from_dict

TARGETS = (0.99, 1.0)


# one intra-op thread (tests/conftest.py): these tiny batches gain nothing from more on shared cores
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fresh_val_accuracy(precisions: dict[str, LayerPrecision]):
    """Re-measured with a new evaluator: the claim is checked without the search's own cache."""
    model = build_model("lenet5", weights=DATA_DIR / "lenet5_digits.pt")
    return Evaluator(model, digits_batch("val"), device="cpu")(precisions)


# ------------------------------------------------------------------------- targets met on validation

@pytest.mark.parametrize("target", TARGETS)
def test_uniform_profile_meets_target_and_one_bit_less_does_not(val, target) -> None:
    r = uniform_search(val, target)
    assert fresh_val_accuracy(r.precisions).meets(target)
    assert not r.table[r.bits - 1].meets(target)
    assert {p.activations.bits for p in r.precisions.values()} == {r.bits}


@pytest.fixture(scope="module")
def table(val) -> SensitivityTable:
    return sensitivity(val)


@pytest.mark.parametrize("target", TARGETS)
def test_judd_profile_meets_target(val, table, target) -> None:
    r = judd_search(val, target, table)
    acc = fresh_val_accuracy(r.precisions)
    assert acc.meets(target) and acc.top1 == r.accuracy.top1
    # the descent ends where no single bit can go: dropping any one fraction bit misses the target
    for (layer, tensor), (i, f) in r.choice.items():
        t = getattr(r.precisions[layer], tensor)
        if t.bits - 1 >= (2 if t.signed else 1):
            less = TensorPrecision(t.bits - 1, t.frac - 1, t.signed)
            p = dict(r.precisions)
            p[layer] = LayerPrecision(less, p[layer].weights) if tensor == "activations" else LayerPrecision(p[layer].activations, less)
            assert not val(p).meets(target)


def test_judd_is_smaller_than_uniform_in_footprint(val, table) -> None:
    counts = {n: (s.activation_count, s.weight_count) for n, s in val.specs.items()}

    def bits(p):
        return sum(counts[n][0] * q.activations.bits + counts[n][1] * q.weights.bits for n, q in p.items())
    for target in TARGETS:
        assert bits(judd_search(val, target, table).precisions) < bits(uniform_search(val, target).precisions)


def test_sensitivity_minimum_needs_every_larger_count_to_pass() -> None:
    t = ("conv1", "activations")
    table = SensitivityTable(1.0, {t: TensorRange(3, True)},
                             fraction={t: {8: 1.0, 7: 1.0, 6: 0.995, 5: 1.0, 4: 0.9}}, integer={t: {3: 1.0}})
    assert table.minimum(t, "fraction", 1.0) == 7       # 5 passes again, but 6 did not
    assert table.minimum(t, "fraction", 0.99) == 5
    assert table.minimum(t, "integer", 1.0) == 3


@pytest.fixture(scope="module")
def gains(val) -> NoiseGains:
    return noise_gains(val.model, val.images)


@pytest.mark.parametrize("target", TARGETS)
def test_sakr_profile_meets_target_and_its_bound(val, gains, target) -> None:
    r = sakr_search(val, target, gains)
    assert fresh_val_accuracy(r.precisions).meets(target)
    assert r.bound_at_b_min <= r.target_mismatch
    ranges = tensor_ranges(val)
    assert mismatch_bound(allocation(r.b_min - 1, r.offsets, ranges), gains, ranges) > r.target_mismatch
    assert r.target_mismatch == pytest.approx(target_mismatch(target, val.float_top1, val.n))


# ------------------------------------------------------------------------- noise gains by hand

def two_layer(w1: np.ndarray, w2: np.ndarray) -> nn.Module:
    net = nn.Sequential(OrderedDict([("fc1", nn.Linear(w1.shape[1], w1.shape[0], bias=False)),
                                     ("fc2", nn.Linear(w2.shape[1], w2.shape[0], bias=False))])).double()
    with torch.no_grad():
        net.fc1.weight.copy_(torch.from_numpy(w1))
        net.fc2.weight.copy_(torch.from_numpy(w2))
    return net


def gains_by_hand(w1: np.ndarray, w2: np.ndarray, xs: np.ndarray) -> dict[str, float]:
    """z = W2 W1 x. For d = z_i - z_y = v.h with v = W2[i] - W2[y], h = W1 x:
    dd/dx = W1^T v, dd/dh = v, dd/dW1 = v x^T (|.|^2 = |v|^2 |x|^2), dd/dW2 = (e_i - e_y) h^T (2 |h|^2)."""
    e = dict.fromkeys(("a1", "a2", "w1", "w2"), 0.0)
    for x in xs:
        h = w1 @ x
        z = w2 @ h
        y = int(np.argmax(z))
        for i in range(len(z)):
            if i == y:
                continue
            v = w2[i] - w2[y]
            d2 = (z[i] - z[y]) ** 2
            e["a1"] += np.sum((w1.T @ v) ** 2) / (24 * d2)
            e["a2"] += np.sum(v ** 2) / (24 * d2)
            e["w1"] += np.sum(v ** 2) * np.sum(x ** 2) / (24 * d2)
            e["w2"] += 2 * np.sum(h ** 2) / (24 * d2)
    return {k: v / len(xs) for k, v in e.items()}


def test_noise_gains_of_a_two_by_two_network_worked_by_hand() -> None:
    # W1 = I, W2 = [[2, 0], [0, 1]], x = (1, 1): z = (2, 1), y = 0, the only other class is 1.
    # d = z_1 - z_0 = -1; v = W2[1] - W2[0] = (-2, 1): |dd/dx|^2 = |dd/dh|^2 = 5, |dd/dW1|^2 = 5 * 2 = 10,
    # |dd/dW2|^2 = 2 |h|^2 = 4; each divided by 24 d^2 = 24.
    net = two_layer(np.eye(2), np.array([[2.0, 0.0], [0.0, 1.0]]))
    g = noise_gains(net, torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    assert g.activations == pytest.approx({"fc1": 5 / 24, "fc2": 5 / 24})
    assert g.weights == pytest.approx({"fc1": 10 / 24, "fc2": 4 / 24})


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(1, 5), n_hidden=st.integers(1, 5), classes=st.integers(2, 5),
       batch=st.integers(1, 6))
def test_noise_gains_match_the_analytic_gradients(seed, n_in, n_hidden, classes, batch) -> None:
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(n_hidden, n_in)), rng.normal(size=(classes, n_hidden))
    xs = rng.normal(size=(batch, n_in))
    g = noise_gains(two_layer(w1, w2), torch.from_numpy(xs), chunk=4)
    want = gains_by_hand(w1, w2, xs)
    assert g.activations["fc1"] == pytest.approx(want["a1"], rel=1e-6)
    assert g.activations["fc2"] == pytest.approx(want["a2"], rel=1e-6)
    assert g.weights["fc1"] == pytest.approx(want["w1"], rel=1e-6)
    assert g.weights["fc2"] == pytest.approx(want["w2"], rel=1e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), c=st.floats(0.1, 10.0))
def test_noise_gains_scale_as_the_formula_says(seed, c) -> None:
    """Scaling W1 by c scales d by c: E_A1 and E_W2 keep, E_A2 and E_W1 shrink by c^2.
    Scaling the input by c: E_W1 and E_W2 keep, E_A1 and E_A2 shrink by c^2."""
    rng = np.random.default_rng(seed)
    w1, w2, xs = rng.normal(size=(3, 4)), rng.normal(size=(3, 3)), torch.from_numpy(rng.normal(size=(5, 4)))
    base = noise_gains(two_layer(w1, w2), xs)
    scaled_w = noise_gains(two_layer(c * w1, w2), xs)
    scaled_x = noise_gains(two_layer(w1, w2), c * xs)
    assert scaled_w.activations["fc1"] == pytest.approx(base.activations["fc1"], rel=1e-6)
    assert scaled_w.weights["fc2"] == pytest.approx(base.weights["fc2"], rel=1e-6)
    assert scaled_w.activations["fc2"] == pytest.approx(base.activations["fc2"] / c ** 2, rel=1e-6)
    assert scaled_w.weights["fc1"] == pytest.approx(base.weights["fc1"] / c ** 2, rel=1e-6)
    assert scaled_x.weights["fc1"] == pytest.approx(base.weights["fc1"], rel=1e-6)
    assert scaled_x.activations["fc1"] == pytest.approx(base.activations["fc1"] / c ** 2, rel=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), groups=st.sampled_from([1, 2]), stride=st.integers(1, 2), pad=st.integers(0, 1))
def test_per_sample_conv_weight_gradient_matches_autograd_one_sample_at_a_time(seed, groups, stride, pad) -> None:
    gen = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(4, 6, 3, stride=stride, padding=pad, groups=groups).double()
    x = torch.randn(3, 4, 6, 6, generator=gen, dtype=torch.float64)
    gy = torch.randn(conv(x).shape, generator=gen, dtype=torch.float64)
    got = per_sample_weight_grad_sq(conv, x, gy)
    for n in range(3):
        (gw,) = torch.autograd.grad((conv(x[n:n + 1]) * gy[n:n + 1]).sum(), conv.weight)
        assert float(got[n]) == pytest.approx(float(gw.pow(2).sum()), rel=1e-9)


def test_sakr_offsets_and_bound_follow_the_rule() -> None:
    # folded gains E * 4^(I-1): 1*4^0, 16*4^0, 1*4^2 -> offsets round(log2 sqrt(.)) = 0, 2, 2
    gains = NoiseGains({"a": 1.0, "b": 16.0}, {"a": 1.0, "b": 1.0}, 1)
    ranges = {("a", "activations"): TensorRange(1, True), ("b", "activations"): TensorRange(1, False),
              ("a", "weights"): TensorRange(3, True), ("b", "weights"): TensorRange(1, True)}
    offs = offsets(gains, ranges)
    assert offs == {("a", "activations"): 0, ("b", "activations"): 2, ("a", "weights"): 2, ("b", "weights"): 0}
    bits = allocation(4, offs, ranges)
    assert bits == {("a", "activations"): 4, ("b", "activations"): 6, ("a", "weights"): 6, ("b", "weights"): 4}
    # Delta = 2^-(B - I): 4^-3 * 1 + 4^-5 * 16 + 4^-3 * 1 + 4^-3 * 1
    assert mismatch_bound(bits, gains, ranges) == pytest.approx(3 * 4.0 ** -3 + 16 * 4.0 ** -5)
    assert target_mismatch(0.99, 0.9, 100) == pytest.approx(0.009)
    assert target_mismatch(1.0, 0.9, 100) == pytest.approx(0.005)


# ------------------------------------------------------------------------- profiles, cost, API, command

def test_profile_spec_round_trips_through_a_workload(val, tmp_path) -> None:
    p = val.resolve(uniform(val.layer_names, 6))
    text = profiles_yaml({"found": profile_spec(p, source="test")})
    data = {"name": "t", "model": {"name": "lenet5"}, **yaml.safe_load(text)}
    wl = workload_from_dict(data, str(tmp_path / "w.yaml"))
    assert resolve_profile("found", wl.profiles["found"], list(val.specs.values())) == p


@pytest.fixture(scope="module")
def lenet_workload(tmp_path_factory):
    wl = load_workload("workloads/lenet5.yaml")
    return wl.model_copy(update={"traces_dir": str(tmp_path_factory.mktemp("traces")),
                                 "input": wl.input.model_copy(update={"count": 1})})


def test_profile_cost_has_both_engines_and_saves_footprint(lenet_workload, val) -> None:
    cost = profile_cost(lenet_workload, "u6", val.resolve(uniform(val.layer_names, 6)))
    dadn, stripes = cost.row("dadiannao"), cost.row("stripes")
    assert cost.footprint_reduction_vs_fp32 == pytest.approx(1 - 6 / 32)
    assert stripes["total_cycles"] < dadn["total_cycles"] and stripes["speedup"] > 1


def test_search_api_measures_test_split_and_cost(lenet_workload) -> None:
    report = search(lenet_workload, "uniform", (0.99,))
    (p,) = report.profiles
    assert p.name == "uniform-99" and p.val.meets(0.99) and p.test is not None and p.test.n == 360
    assert p.cost is not None and report.evaluations >= 1 and report.seconds["search"] > 0
    assert "uniform-99" in yaml.safe_load(report.yaml())["profiles"]


def test_search_command_prints_profiles_and_writes_yaml(lenet_workload, tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "w.yaml"
    data = yaml.safe_load(open("workloads/lenet5.yaml"))
    data["model"]["weights"] = str(DATA_DIR / "lenet5_digits.pt")
    data["traces_dir"] = lenet_workload.traces_dir
    path.write_text(yaml.safe_dump(data))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "found.yaml"
    args = parser.parse_args(["search", str(path), "--method", "uniform", "--target", "0.99", "--out", str(out),
                              "--no-cost"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "uniform-99" in text and "test top-1" in text and "evaluations" in text
    assert yaml.safe_load(out.read_text())["profiles"]["uniform-99"]["activations"]["conv1"]["bits"] >= 2
    assert out.with_suffix(".json").is_file()
    bad = parser.parse_args(["search", str(path), "--method", "uniform", "--target", "1.5"])
    with pytest.raises(SimulatorError, match="target"):
        bad.func(bad)


# ------------------------------------------------------------------------- WRPN

def test_wrpn_quantizers_take_the_papers_grids() -> None:
    w = torch.tensor([-1.7, -0.6, -0.2, 0.2, 0.4, 0.9, 1.3])
    assert wrpn_weights(w, 2).tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0]           # ternary
    q4 = wrpn_weights(w, 4) * 7
    assert torch.allclose(q4, q4.round()) and q4.abs().max() == 7
    a = torch.tensor([-0.5, 0.1, 0.5, 0.8, 1.5])
    q = wrpn_activations(a, 2) * 3
    assert q.tolist() == pytest.approx([0, 0, 2, 2, 3])          # 1.5 rounds to even, as torch.round


def test_wrpn_straight_through_gradient_passes_inside_the_clip_only() -> None:
    w = torch.tensor([-1.5, -0.3, 0.4, 2.0], requires_grad=True)
    wrpn_weights(w, 4).sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    a = torch.tensor([-0.2, 0.3, 0.7, 1.2], requires_grad=True)
    wrpn_activations(a, 4).sum().backward()
    assert a.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_wrpn_model_uses_quantized_weights_and_activations() -> None:
    model = make_wrpn(build_model("lenet5", width=2.0), bits=2)
    for name in ("conv1", "fc1"):
        m = model.get_submodule(name)
        levels = torch.unique(m.weight.detach())
        assert len(levels) <= 3 and math.log2(float(levels.abs().max())).is_integer()   # ternary x 2^k
    seen = []
    model.get_submodule("fc2").register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    model(torch.randn(2, 1, 32, 32))
    assert set((seen[0] * 3).round().unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}


@pytest.mark.slow
def test_wrpn_low_precision_training_learns() -> None:
    from simulator.search.wrpn import wrpn_table
    from simulator.train import Recipe
    rows = wrpn_table("lenet5", widths=(1.0,), bits=(None, 4), recipe=Recipe(epochs=5))
    assert all(r.test_top1 > 0.9 for r in rows)
