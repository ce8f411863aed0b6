"""Training the project's own networks on scikit-learn's handwritten digits.

``python -m simulator.train lenet5`` (or ``vgg_small``) trains from the zoo's seeded initialisation
on the train part of the fixed digits split (``simulator.inputs.digits_split``), and writes
``simulator/data/<model>_digits.pt`` (a state_dict) with ``<model>_digits.json`` beside it: the
accuracy on every split, the recipe and the command that reproduces the file. Training is
deterministic: one thread, seeded initialisation and a seeded shuffling generator.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from .errors import SimulatorError
from .inputs import InputBatch, InputSpec, digits_split, load_inputs
from .models import ZOO, build_model

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Recipe:
    """How a network is trained: Adam at a cosine-decayed learning rate, mini-batches, epochs."""

    epochs: int = 30
    lr: float = 2e-3
    batch_size: int = 32
    weight_decay: float = 1e-4
    seed: int = 0


# Chosen so that each network trains in well under a minute on one CPU thread.
RECIPES: dict[str, Recipe] = {"lenet5": Recipe(epochs=30), "vgg_small": Recipe(epochs=20)}


def digits_batch(split: str, size: int = 32, channels: int = 1) -> InputBatch:
    """Every digit of one part of the fixed split, preprocessed as workloads see them."""
    n = len(digits_split()[split])
    return load_inputs(InputSpec(source="digits", split=split, count=n, size=size), channels, size)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per input, whether its label is among the ``k`` highest scores (bool, shape N)."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == labels[:, None]).any(dim=1)


@torch.no_grad()
def accuracy(model: nn.Module, batch: InputBatch, k: int = 1) -> float:
    """Top-k accuracy of ``model`` (in eval mode) on a labelled batch."""
    if batch.labels is None:
        raise SimulatorError("accuracy needs labelled inputs (the digits source)")
    was = model.training
    model.eval()
    correct = topk_correct(model(batch.images), batch.labels, k)
    out = int(correct.sum()) / len(correct)
    model.train(was)
    return out


def fit(model: nn.Module, data: InputBatch, recipe: Recipe,
        on_epoch: Optional[Callable[[int, float], None]] = None) -> nn.Module:
    """Train ``model`` in place on ``data`` with cross-entropy; returns it in eval mode.

    Anything attached to the model (e.g. WRPN's quantizing parametrizations) takes part, so
    quantization-aware training uses this same loop."""
    gen = torch.Generator().manual_seed(recipe.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = -(-len(data.images) // recipe.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(data.images), generator=gen)
        total = 0.0
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start:start + recipe.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(data.images[idx]), data.labels[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if on_epoch is not None:
            on_epoch(epoch, total / len(order))
    return model.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_digits(name: str, recipe: Optional[Recipe] = None, out_dir: Path = DATA_DIR,
                 verbose: bool = True) -> dict:
    """Train zoo model ``name`` on the digits, write its weights and accuracy record; returns the record."""
    if name not in ZOO:
        raise SimulatorError(f"unknown model '{name}'; valid names: {', '.join(ZOO)}")
    info = ZOO[name]
    if info.in_channels != 1 or info.num_classes != 10:
        raise SimulatorError(f"model '{name}' does not take 1-channel digits into 10 classes")
    recipe = recipe or RECIPES.get(name, Recipe())
    torch.set_num_threads(1)          # one thread: bit-identical weights on every run of this machine
    torch.manual_seed(recipe.seed)
    splits = {s: digits_batch(s, info.image_size) for s in ("train", "val", "test")}
    model = build_model(name, seed=recipe.seed)
    t0 = time.perf_counter()
    log = (lambda e, l: print(f"epoch {e + 1}/{recipe.epochs}: loss {l:.4f}", file=sys.stderr)) if verbose else None
    fit(model, splits["train"], recipe, log)
    seconds = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}_digits.pt"
    torch.save(model.state_dict(), weights)
    record = {
        "model": name,
        "weights": weights.name,
        "weights_sha256": _sha256(weights),
        "data": "scikit-learn load_digits (8x8, 0..16) upscaled bilinearly to 32x32, mapped to [-1, 1]",
        "split": {"seed": 0, **{s: len(b.labels) for s, b in splits.items()}},
        "recipe": {"optimizer": "Adam, cosine learning-rate decay, cross-entropy", **vars(recipe)},
        "accuracy": {s: {"top1": accuracy(model, b, 1), "top5": accuracy(model, b, 5)} for s, b in splits.items()},
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "command": f"python -m simulator.train {name}",
    }
    (out_dir / f"{name}_digits.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulator.train",
                                description="train a zoo network on the digits and write simulator/data/<model>_digits.pt")
    p.add_argument("model", choices=sorted(RECIPES), help="network to train")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--out", default=str(DATA_DIR), help="output folder (default: the packaged data folder)")
    args = p.parse_args(argv)
    try:
        recipe = RECIPES[args.model]
        if args.epochs is not None:
            recipe = Recipe(**{**vars(recipe), "epochs": args.epochs})
        rec = train_digits(args.model, recipe, Path(args.out))
    except SimulatorError as e:
        print(f"error: {e}", file=sys.stderr)
        return SimulatorError.exit_code
    acc = rec["accuracy"]
    print(f"{args.model}: val top-1 {acc['val']['top1']:.4f}, test top-1 {acc['test']['top1']:.4f} "
          f"({rec['train_seconds']} s); wrote {Path(args.out) / rec['weights']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
