"""Accuracy under a profile: the one quantizer, the caches, calibration on another split."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from simulator.accuracy import Evaluator, evaluator_for, precision_key
from simulator.errors import SimulatorError
from simulator.inputs import InputBatch
from simulator.quantize import LayerPrecision, TensorPrecision, quantized
from simulator.train import DATA_DIR, accuracy, digits_batch
from simulator.workload import workload_from_dict

LAYERS = ["conv1", "conv2", "fc1", "fc2", "fc3"]



# one intra-op thread (tests/conftest.py): these small batches gain nothing from more on shared cores
pytestmark = pytest.mark.usefixtures("one_torch_thread")

def lp(a: int, w: int, frac_a=None, frac_w=None) -> LayerPrecision:
    return LayerPrecision(TensorPrecision(a, frac_a), TensorPrecision(w, frac_w))


def test_float_accuracy_is_the_models(trained_lenet, val) -> None:
    assert val.float_top1 == pytest.approx(accuracy(trained_lenet, digits_batch("val")))
    assert val.float_top5 == pytest.approx(accuracy(trained_lenet, digits_batch("val"), 5))
    assert val.layer_names == LAYERS and val.n == 359
    assert val({}).top1 == val.float_top1 and val({}).mismatch == 0.0


def test_results_are_cached_by_precisions(trained_lenet) -> None:
    ev = Evaluator(trained_lenet, digits_batch("val"), device="cpu")
    a = {"conv1": lp(6, 6), "fc1": lp(5, 4)}
    b = {"fc1": lp(5, 4), "conv1": lp(6, 6)}            # same profile, other order
    first = ev(a)
    assert (ev.evaluations, ev.hits) == (1, 0)
    assert ev(b) is first and (ev.evaluations, ev.hits) == (1, 1)
    ev({"conv1": lp(6, 5), "fc1": lp(5, 4)})
    assert (ev.evaluations, ev.hits) == (2, 1)
    assert precision_key(a) == precision_key(b) != precision_key({"conv1": lp(6, 6)})


@pytest.mark.parametrize("precisions", [
    {"conv1": lp(4, 4)}, {"conv2": lp(3, 5)}, {"fc2": lp(2, 3)}, {"fc3": lp(3, 2)},
    {"conv2": lp(5, 3), "fc1": lp(3, 3)}, {n: lp(4, 4) for n in LAYERS}])
def test_prefix_reuse_gives_what_the_quantizer_gives_on_the_whole_network(trained_lenet, val, precisions) -> None:
    batch = digits_batch("val")
    with quantized(trained_lenet, precisions) as q, torch.no_grad():
        logits = q(batch.images)
    with torch.no_grad():
        float_pred = trained_lenet(batch.images).argmax(1)
    got = val(precisions)
    assert got.top1 == pytest.approx(float((logits.argmax(1) == batch.labels).float().mean()))
    assert got.mismatch == pytest.approx(float((logits.argmax(1) != float_pred).float().mean()))


def test_accuracy_falls_with_precision_and_32_bits_is_float(val) -> None:
    assert val({n: lp(32, 32) for n in LAYERS}).top1 == val.float_top1
    assert val({n: lp(2, 2) for n in LAYERS}).top1 < 0.5 < val({n: lp(8, 8) for n in LAYERS}).top1


def test_resolved_formats_reproduce_the_accuracy(val) -> None:
    p = {n: lp(5, 5) for n in LAYERS}
    fixed = val.resolve(p)
    assert all(t.frac is not None and t.signed is not None for q in fixed.values() for t in (q.activations, q.weights))
    assert fixed["conv1"].activations.signed and not fixed["conv2"].activations.signed   # image vs after ReLU
    assert val(fixed).top1 == val(p).top1 and val(fixed).mismatch == val(p).mismatch


def test_calibration_split_fixes_formats(trained_lenet, val) -> None:
    test = Evaluator(trained_lenet, digits_batch("test"), calibration=digits_batch("val"), device="cpu")
    p = {n: lp(6, 6) for n in LAYERS}
    assert test.formats(p) == val.formats(p)             # observed on val, held on test
    assert test(p).n == 360


def test_top5_only_where_it_applies() -> None:
    net = nn.Sequential(OrderedDict([("fc", nn.Linear(4, 3))]))
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    ev = Evaluator(net, InputBatch(x, torch.zeros(20, dtype=torch.int64), [str(i) for i in range(20)]), device="cpu")
    acc = ev({"fc": lp(8, 8)})
    assert ev.float_top5 is None and acc.top5 is None and acc.relative_top5 is None


def test_meets_is_relative_to_float() -> None:
    from simulator.accuracy import Accuracy
    a = Accuracy(0.971, None, 0.98, None, 0.01, 100)
    assert a.meets(0.99) and not a.meets(1.0)
    assert Accuracy(0.98, None, 0.98, None, 0.0, 100).meets(1.0)


def test_unknown_layer_and_unlabelled_inputs_are_user_errors(val, tmp_path) -> None:
    with pytest.raises(SimulatorError, match="no layer named 'fc9'"):
        val({"fc9": lp(8, 8)})
    wl = workload_from_dict({"name": "x", "model": {"name": "lenet5", "weights": str(DATA_DIR / "lenet5_digits.pt")},
                             "input": {"source": "random"}}, str(tmp_path / "w.yaml"))
    with pytest.raises(SimulatorError, match="labelled inputs"):
        evaluator_for(wl)
    wl = workload_from_dict({"name": "x", "model": {"name": "lenet5"}, "input": {"source": "digits"}},
                            str(tmp_path / "w.yaml"))
    with pytest.raises(SimulatorError, match="trained weights"):
        evaluator_for(wl)
