"""Training on the digits: the committed weights, their recorded accuracy, determinism."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from simulator.errors import SimulatorError
from simulator.inputs import digits_split
from simulator.models import build_model
from simulator.train import DATA_DIR, Recipe, accuracy, digits_batch, fit, topk_correct, train_digits

MODELS = ("lenet5", "vgg_small")



# one intra-op thread (tests/conftest.py): these small batches gain nothing from more on shared cores
pytestmark = pytest.mark.usefixtures("one_torch_thread")

def test_topk_correct_by_hand() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.5], [0.2, 0.3, 0.1]])
    labels = torch.tensor([1, 2, 2])
    assert topk_correct(logits, labels, 1).tolist() == [True, False, False]
    assert topk_correct(logits, labels, 2).tolist() == [True, True, False]
    assert topk_correct(logits, labels, 5).tolist() == [True, True, True]     # k capped at the classes


def test_digits_batch_is_the_whole_fixed_split() -> None:
    split = digits_split()
    for part in ("train", "val", "test"):
        b = digits_batch(part)
        assert b.images.shape == (len(split[part]), 1, 32, 32) and len(b.labels) == len(split[part])
    ids = {i for p in ("train", "val", "test") for i in digits_batch(p).ids}
    assert len(ids) == sum(len(v) for v in split.values())          # no digit in two parts


@pytest.mark.parametrize("name", MODELS)
def test_committed_weights_match_their_record(name: str) -> None:
    record = json.loads((DATA_DIR / f"{name}_digits.json").read_text())
    path = DATA_DIR / record["weights"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["weights_sha256"]
    assert record["command"] == f"python -m simulator.train {name}"
    model = build_model(name, weights=path)
    for split in ("val", "test"):
        assert accuracy(model, digits_batch(split)) == pytest.approx(record["accuracy"][split]["top1"], abs=1e-9)
    assert record["accuracy"]["test"]["top1"] > 0.95          # a real classifier, not chance (0.1)


def test_fit_is_deterministic_and_learns() -> None:
    data = digits_batch("train")
    recipe = Recipe(epochs=2, seed=3)
    a = fit(build_model("lenet5", seed=3), data, recipe)
    b = fit(build_model("lenet5", seed=3), data, recipe)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert accuracy(a, digits_batch("val")) > 0.5


def test_unknown_or_unsuitable_model_is_a_user_error() -> None:
    with pytest.raises(SimulatorError, match="unknown model"):
        train_digits("nope")
    with pytest.raises(SimulatorError, match="1-channel digits"):
        train_digits("alexnet")


@pytest.mark.slow
def test_training_reproduces_the_committed_lenet(tmp_path) -> None:
    record = train_digits("lenet5", out_dir=tmp_path, verbose=False)
    committed = json.loads((DATA_DIR / "lenet5_digits.json").read_text())
    assert record["weights_sha256"] == committed["weights_sha256"]
