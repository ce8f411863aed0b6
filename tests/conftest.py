"""Shared fixtures for the front half of the pipeline: small workloads written into tmp_path.

Every workload here writes its traces under the test's own tmp_path (``traces_dir`` is absolute),
so no test touches the repository's ``traces/``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def lenet_workload(traces_dir: Path, **overrides: Any) -> dict:
    """A LeNet-5 workload on seeded noise: the fastest network the zoo has (1x32x32 inputs)."""
    data: dict[str, Any] = {
        "name": "lenet-test",
        "model": {"name": "lenet5", "seed": 0},
        "input": {"source": "random", "count": 1, "seed": 1},
        "profiles": {"u8": "uniform-8"},
        "traces_dir": str(traces_dir),
    }
    data.update(overrides)
    return data


@pytest.fixture
def lenet(tmp_path: Path) -> Callable[..., dict]:
    """``lenet(**overrides)``: a LeNet-5 workload mapping whose traces go to ``tmp_path/traces``."""
    return lambda **overrides: lenet_workload(tmp_path / "traces", **overrides)


@pytest.fixture
def write_workload(tmp_path: Path) -> Callable[..., Path]:
    """Write a workload mapping (default: ``lenet_workload``) to ``tmp_path/<file>`` and return its path."""

    def write(data: dict | None = None, file: str = "workload.yaml", **overrides: Any) -> Path:
        data = lenet_workload(tmp_path / "traces", **overrides) if data is None else data
        path = tmp_path / file
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for ``python -m simulator`` run from another directory: the repository on the
    path explicitly, so the checkout under test is the one imported."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env



@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch intra-op thread for a test module: small batches gain nothing from more on 2 cores."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained_lenet():
    """The LeNet-5 the project trained on the digits (simulator/data/lenet5_digits.pt)."""
    from simulator.models import build_model
    from simulator.train import DATA_DIR
    return build_model("lenet5", weights=DATA_DIR / "lenet5_digits.pt")


@pytest.fixture(scope="module")
def val(trained_lenet):
    """An accuracy evaluator of the trained LeNet-5 on the validation digits (one per test module,
    so evaluation counts stay per module)."""
    from simulator.accuracy import Evaluator
    from simulator.train import digits_batch
    return Evaluator(trained_lenet, digits_batch("val"), device="cpu")
