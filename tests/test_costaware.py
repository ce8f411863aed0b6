"""Cost-aware search: the exact allocator against brute force, objectives and their errors, the cost
tables against the simulator, greedy / exact profiles meeting their target, the command and figure."""
from __future__ import annotations

import argparse
import itertools
import json

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.accuracy import Evaluator
from simulator.errors import SimulatorError
from simulator.models import build_model
from simulator.search import search
from simulator.search.command import add_parser
from simulator.search.common import profile_cost, tensor_ranges
from simulator.search.costaware import greedy_search
from simulator.search.costmodel import REFERENCE_OUT, CostModel, cost, fixed_precisions, requantize
from simulator.search.exact import Peak, allocate, allocation_value, exact_search, measured_sensitivity, noise_sensitivity
from simulator.search.objectives import parse_objective, simulated_costs
from simulator.search.pareto import data_for_pareto, draw_pareto
from simulator.train import DATA_DIR, digits_batch
from simulator.workload import load_workload


# one intra-op thread (tests/conftest.py): these small batches gain nothing from more on shared cores
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------- exact allocation

def brute_force(costs, noise, budget, peak=None):
    """The cheapest cost of every choice within the budget (None when none fits)."""
    cells = [list(itertools.product(range(t.shape[0]), range(t.shape[1]))) for t in costs]
    best = None
    for choice in itertools.product(*cells):
        c, n = allocation_value(costs, noise, choice, peak)
        if n <= budget and (best is None or c < best):
            best = c
    return best


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), layers=st.integers(1, 3), with_peak=st.booleans(),
       scale=st.sampled_from([1.0, 1e4, 1e8]), quantile=st.floats(0.0, 1.0))
def test_exact_allocator_finds_the_brute_force_optimum(seed, layers, with_peak, scale, quantile) -> None:
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(1, 4)), int(rng.integers(1, 4))) for _ in range(layers)]
    costs = [rng.integers(0, 60, size=s).astype(float) * scale for s in shapes]
    noise = [rng.random(s) * 10.0 ** -rng.integers(0, 8) for s in shapes]
    peak = None
    if with_peak:
        acts = [sorted(rng.choice(np.arange(2, 17), size=s[0], replace=False).tolist()) for s in shapes]
        peak = Peak(float(rng.choice([0.5, 3.0])) * scale, [(int(rng.integers(1, 99)), int(rng.integers(1, 99)))
                                                           for _ in shapes], acts)
    values = sorted({allocation_value(costs, noise, ch, peak)[1] for ch in
                     itertools.product(*[list(itertools.product(range(a), range(b))) for a, b in shapes])})
    budget = float(np.quantile(values, quantile)) * (1 + 1e-3)
    # a budget within the solver's feasibility tolerance of a choice's noise is a coin toss: move off it
    assume_clear = min(abs(v - budget) for v in values) > 1e-4 * budget
    if not assume_clear:
        budget *= 1.01
    best = brute_force(costs, noise, budget, peak)
    al = allocate(costs, noise, budget, peak)
    if best is None:
        assert al is None
        return
    assert al is not None and al.noise <= budget
    assert al.cost == pytest.approx(best, rel=1e-9, abs=1e-9)


def test_allocator_spends_free_bits_on_accuracy_and_reports_infeasible() -> None:
    # layer 0: the weight width (columns) costs nothing, so the least-noise column is taken
    costs = [np.array([[5.0, 5.0, 5.0], [1.0, 1.0, 1.0]])]
    noise = [np.array([[0.3, 0.2, 0.1], [0.6, 0.5, 0.4]])]
    al = allocate(costs, noise, 0.45)
    assert al.choice == ((1, 2),) and al.cost == 1.0
    assert allocate(costs, noise, 0.05) is None


# ------------------------------------------------------------------------- objectives

@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    wl = load_workload("workloads/lenet5.yaml")
    return wl.model_copy(update={"traces_dir": str(tmp_path_factory.mktemp("traces")),
                                 "input": wl.input.model_copy(update={"count": 1})})


def test_objectives_parse_names_engines_memories_and_sums(workload) -> None:
    assert parse_objective(workload, "cycles:stripes").name == "cycles:stripes@on-chip"
    assert parse_objective(workload, "cycles:bit-serial@ddr4").name == "cycles:stripes@ddr4"
    assert parse_objective(workload, "dram:dadiannao").name == "dram:dadiannao@ddr4"   # first memory with a DRAM
    o = parse_objective(workload, "cycles:stripes+0.5*energy:loom")
    assert [c for c, _ in o.terms] == [1.0, 0.5] and o.value({"cycles:stripes@on-chip": 10, "energy:loom@on-chip": 4}) == 12
    assert parse_objective(workload, "bops").columns() == ["bops"]


@pytest.mark.parametrize("text, names", [
    ("latency:stripes", ["cycles:<accelerator>", "energy:<accelerator>", "bops", "model-size", "peak-memory"]),
    ("cycles:eyeriss", ["dadiannao", "stripes", "loom", "bitfusion", "bit-serial"]),
    ("cycles:stripes@hbm", ["on-chip", "ddr4"]),
    ("cycles", ["needs an accelerator", "dadiannao, stripes, loom, bitfusion"]),
    ("bops:stripes", ["'bops'"]),
])
def test_unknown_objective_names_the_valid_ones(workload, text, names) -> None:
    with pytest.raises(SimulatorError) as e:
        parse_objective(workload, text)
    for n in names:
        assert n in str(e.value)


# ------------------------------------------------------------------------- cost tables

@pytest.fixture(scope="module")
def model(workload, val) -> CostModel:
    return CostModel(workload, [val.specs[n] for n in val.layer_names], tensor_ranges(val))


def test_requantize_shifts_rounds_and_saturates() -> None:
    q = np.array([-32768, -3, -2, 1, 2, 3, 32767])
    assert requantize(q, 16, 15, True).tolist() == [-16384, -1, -1, 1, 1, 2, 16383]
    assert requantize(np.array([255, 0, 127]), 8, 4, False).tolist() == [15, 0, 8]
    assert requantize(np.array([3]), 4, 6, False).tolist() == [12]


def test_network_metric_tables_follow_their_formulas(model) -> None:
    bits = {n: (4 + i, 3 + i) for i, n in enumerate(model.names)}
    specs = model.specs
    assert model.cost("bops", bits) == sum(s.macs * (4 + i) * (3 + i) for i, s in enumerate(specs))
    assert model.cost("model-size", bits) == sum(s.weight_count * (3 + i) for i, s in enumerate(specs))
    assert model.cost("footprint", bits) == sum(s.activation_count * (4 + i) + s.weight_count * (3 + i)
                                                for i, s in enumerate(specs))
    live = [s.activation_count * (4 + i) + s.output_count * ((5 + i) if i + 1 < len(specs) else 16)
            for i, s in enumerate(specs)]
    assert model.cost("peak-memory", bits) == max(live)


def test_cost_tables_equal_the_simulator_at_the_reference_widths(workload, model, val) -> None:
    """With every activation at the width the tables charge output writes at, the additive model
    is the simulator itself (closed-form engines; DRAM included); away from it, within a few %."""
    objs = ["cycles:stripes", "cycles:dadiannao@ddr4", "energy:bitfusion@ddr4", "dram:stripes@ddr4"]
    for bits, tol in (({n: (REFERENCE_OUT, 6) for n in model.names}, 1e-9),
                      ({n: (3 + i, 5) for i, n in enumerate(model.names)}, 0.05)):
        sim = profile_cost(workload, f"ref{tol}", fixed_precisions(bits, model.ranges))
        costs = simulated_costs(sim.rows, bits, model.specs)
        for o in objs:
            col = parse_objective(workload, o).name
            assert model.cost(o, bits) == pytest.approx(costs[col], rel=tol), col


def test_stripes_cycles_ignore_weights_and_bit_parallel_on_chip_ignores_everything(model) -> None:
    for t in model.layer_costs("cycles:stripes"):
        assert np.all(t == t[:, :1])                      # weight bits (<= 16) cost no Stripes cycles
    for t in model.layer_costs("cycles:dadiannao@on-chip"):
        assert np.all(t == t.flat[0])


def test_plain_cost_function_takes_bits_or_precisions(workload, model) -> None:
    f = cost(workload, "cycles:bitfusion", model=model)
    bits = {n: (8, 8) for n in model.names}
    assert f(bits) == f(fixed_precisions(bits, model.ranges)) == model.cost("cycles:bitfusion", bits)
    # Bit Fusion fuses at 2/4/8/16 bits: 5 bits cost what 8 do
    assert f({n: (5, 5) for n in model.names}) == f(bits) > f({n: (4, 4) for n in model.names})
    with pytest.raises(SimulatorError, match="conv1"):
        f({n: (8, 8) for n in model.names[1:]})


# ------------------------------------------------------------------------- searches meet their target

def fresh_val(precisions):
    model = build_model("lenet5", weights=DATA_DIR / "lenet5_digits.pt")
    return Evaluator(model, digits_batch("val"), device="cpu")(precisions)


@pytest.fixture(scope="module")
def gains_sens(val, model):
    return noise_sensitivity(val, model)


@pytest.mark.parametrize("objective", ["cycles:stripes", "cycles:dadiannao@ddr4", "cycles:loom", "peak-memory"])
def test_exact_profile_meets_target_and_beats_uniform_on_its_objective(val, model, gains_sens, objective) -> None:
    r = exact_search(val, model, objective, 0.99, gains_sens)
    assert fresh_val(fixed_precisions(r.bits, model.ranges)).meets(0.99)
    uniform = {n: (5, 5) for n in model.names}                    # LeNet's uniform-99 width
    assert r.model_cost <= model.cost(objective, uniform)
    assert r.tried and all(t["meets"] == (t["top1"] >= 0.99 * val.float_top1 - 1e-9) for t in r.tried)


@pytest.mark.parametrize("objective", ["cycles:bitfusion", "bops"])
def test_greedy_profile_meets_target_and_only_lowers(val, model, objective) -> None:
    r = greedy_search(val, model, objective, 0.99)
    assert fresh_val(fixed_precisions(r.bits, model.ranges)).meets(0.99)
    assert all(a <= r.start_bits and w <= r.start_bits for a, w in r.bits.values())
    if objective == "cycles:bitfusion":
        # only Bit Fusion's fused widths are worth stopping at: one bit above one never saves a cycle
        assert model.cost(objective, r.bits) == r.model_cost


def test_exact_with_measured_sensitivity_meets_target(val, model) -> None:
    sens = measured_sensitivity(val, model)
    assert sens.evaluations > 0 and all(np.all(np.diff(a) <= 0) for a in sens.act)   # non-increasing in width
    r = exact_search(val, model, "cycles:stripes", 0.99, sens)
    assert fresh_val(fixed_precisions(r.bits, model.ranges)).meets(0.99)


# ------------------------------------------------------------------------- API, command, figure

def test_search_api_compares_with_judd_sakr_and_bops(workload) -> None:
    report = search(workload, "exact", (0.99,), objective="cycles:stripes")
    (p,) = report.profiles
    assert p.val.meets(0.99) and p.test is not None and p.details["costs"]["cycles:stripes@on-chip"] > 0
    methods = {r.method for r in report.references}
    assert {"judd", "sakr", "uniform", "bops-optimal"} <= methods
    (row,) = report.details["ratios"]
    assert {"vs judd", "vs sakr", "vs exact-bops"} <= set(row)
    with pytest.raises(SimulatorError, match="accelerators: dadiannao, stripes, loom, bitfusion, dadiannao-128; engines"):
        search(workload, "exact", (0.99,), objective="cycles:nothing")


def test_command_engines_all_prints_the_matrix_and_draws_pareto(workload, tmp_path, capsys) -> None:
    path = tmp_path / "w.yaml"
    data = yaml.safe_load(open("workloads/lenet5.yaml"))
    data["model"]["weights"] = str(DATA_DIR / "lenet5_digits.pt")
    data["traces_dir"] = workload.traces_dir
    data["input"]["count"] = 1
    data["accelerators"] = [a for a in data["accelerators"] if a["name"] in ("dadiannao", "stripes")]
    path.write_text(yaml.safe_dump(data))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", str(path), "--method", "greedy", "--engines", "all", "--target", "0.99",
                              "--out", str(tmp_path / "found.yaml"), "--results-root", str(tmp_path / "res"),
                              "--no-compare"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "engine x engine" in out and "left out" in out and "cycles:dadiannao@on-chip" in out
    folder = tmp_path / "res" / "search" / data["name"]
    doc = json.loads((folder / "greedy-cycles-stripes-at-on-chip.json").read_text())
    assert doc["method"] == "greedy:cycles:stripes@on-chip" and doc["profiles"][0]["costs"]
    assert {"target", "top1", "footprint_reduction_vs_fp32", "layers"} <= set(doc["profiles"][0])
    pareto = data_for_pareto(folder)
    assert "cycles:stripes@on-chip" in pareto["panels"]
    files = draw_pareto(pareto, tmp_path / "fig")
    assert all(f.stat().st_size > 0 for f in files)
    bad = parser.parse_args(["search", str(path), "--method", "exact", "--objective", "speed:stripes"])
    with pytest.raises(SimulatorError, match="unknown metric"):
        bad.func(bad)
