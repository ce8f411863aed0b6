"""The `export` and `inspect` commands: help, a real export + inspect, batches, the LeNet-5 layer
and MAC counts, and bad input giving exit code 2 with one `error:` line and no traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
import yaml

from simulator.cli import main
from simulator.inspect_trace import essential_bits, trace_stats

# LeNet-5 on 32x32 (LeCun et al. 1998, with the zoo's layer sizes): MACs per input, by hand:
# Ox*Oy * K * C * Ky*Kx for convolutions, K * C for fully connected layers.
LENET_MACS = {
    "conv1": 28 * 28 * 6 * 1 * 5 * 5,      # 117,600
    "conv2": 10 * 10 * 16 * 6 * 5 * 5,     # 240,000
    "fc1": 120 * 400,
    "fc2": 84 * 120,
    "fc3": 10 * 84,
}


def _cli(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _traces(folder: Path) -> list[Path]:
    """The trace files in ``folder``, without the weights files they link to."""
    return sorted(p for p in folder.glob("*.h5") if not p.name.endswith(".weights.h5"))


def _one_error_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# ------------------------------------------------------------------------------- subprocess: the real command

def test_help(tmp_path, subprocess_env):
    for args in (["--help"], ["export", "--help"], ["inspect", "--help"]):
        r = _cli(args, tmp_path, subprocess_env)
        assert r.returncode == 0 and "usage:" in r.stdout, r.stderr
    assert "--force" in _cli(["export", "--help"], tmp_path, subprocess_env).stdout


def test_export_then_inspect(tmp_path, subprocess_env):
    (tmp_path / "lenet.yaml").write_text(yaml.safe_dump({
        "name": "lenet-cli", "model": {"name": "lenet5"}, "input": {"source": "random", "count": 3},
        "profiles": {"u8": "uniform-8", "stripes": {"layers": "conv", "activations": [7, 5], "default": 10}},
        "traces_dir": "out"}))      # relative: under the current directory
    r = _cli(["export", "lenet.yaml"], tmp_path, subprocess_env)
    assert r.returncode == 0, r.stderr
    traces = _traces(tmp_path / "out")
    assert [t.name.split("--")[1] for t in traces] == ["stripes", "u8"]
    assert all(f"{t.relative_to(tmp_path)}" in r.stdout for t in traces)

    r = _cli(["inspect", str(traces[0])], tmp_path, subprocess_env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["layer", "kind"]
    rows = {l.split()[0]: l.split() for l in lines[2:7]}
    assert list(rows) == list(LENET_MACS)
    assert rows["conv1"][2] == "3x1x32x32" and rows["fc1"][2] == "3x400"   # batch of 3
    assert rows["conv2"][3] == "16x6x5x5"
    for name, macs in LENET_MACS.items():
        assert rows[name][5] == f"{3 * macs:,}"
    assert rows["conv1"][6].endswith(tuple(f"7.{f}" for f in range(-8, 16)))   # s7.F / u7.F
    assert rows["conv2"][6][1:].startswith("5.") and rows["fc1"][6][1:].startswith("10.")
    assert lines[7].startswith("5 layers")

    # exporting again reuses both files
    before = {t: t.stat().st_mtime_ns for t in traces}
    assert _cli(["export", "lenet.yaml", "--profiles", "u8"], tmp_path, subprocess_env).returncode == 0
    assert {t: t.stat().st_mtime_ns for t in traces} == before

    # the folder moved as a whole and read from elsewhere: the links to the weights files follow it
    (tmp_path / "out").rename(tmp_path / "moved")
    (tmp_path / "cwd").mkdir()
    moved = tmp_path / "moved" / traces[0].name
    r = _cli(["inspect", str(moved)], tmp_path / "cwd", subprocess_env)
    assert r.returncode == 0 and r.stdout.splitlines()[2:7] == lines[2:7], r.stderr


def test_inspect_a_trace_whose_weights_file_is_gone(write_workload, tmp_path, capsys):
    assert _run_main(["export", str(write_workload())], capsys)[0] == 0
    (trace,) = _traces(tmp_path / "traces")
    (weights,) = (tmp_path / "traces").glob("*.weights.h5")
    weights.unlink()
    rc, _, err = _run_main(["inspect", str(trace)], capsys)
    line = _one_error_line(err)
    assert rc == 2 and str(trace) in line and "layer 'conv1'" in line and f"'{weights}' is missing" in line
    assert _run_main(["export", str(write_workload())], capsys)[0] == 0
    assert weights.is_file() and _run_main(["inspect", str(trace)], capsys)[0] == 0


def test_bad_workload_in_a_subprocess(tmp_path, subprocess_env):
    (tmp_path / "bad.yaml").write_text("name: x\nmodel: {name: lenet5}\ninput: {count: abc}\ntraces_dir: t\n")
    r = _cli(["export", "bad.yaml"], tmp_path, subprocess_env)
    assert r.returncode == 2
    assert "input.count" in _one_error_line(r.stderr)
    assert not (tmp_path / "t").exists()


# ------------------------------------------------------------------------------- in process: bad input

def _run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("overrides, expect", [
    ({"profiless": {"a": "uniform-8"}}, "profiless: unknown key; valid keys:"),
    ({"model": {"nme": "lenet5"}}, "model.nme: unknown key"),
    ({"accelerators": [{"name": "a", "engine": "bit-serial", "tilez": 2}]}, "accelerators.0.tilez: unknown key"),
    ({"input": {"source": "random", "count": "abc"}}, "input.count:"),
    ({"profiles": {"p": "uniform-x"}}, "profiles.p: 'uniform-x' is not a profile"),
    ({"profiles": {"p": {"layers": "conv", "activations": [8, 8, 8]}}}, "activations lists 3 precisions"),
    ({"profiles": {"p": {"activations": {"conv9": 4}}}}, "no layer named 'conv9'"),
    ({"model": {"name": "lenet6"}}, "unknown model 'lenet6'"),
    ({"model": {"name": "lenet5", "weights": "nope.pt"}}, "model.weights: no such file"),
    ({"input": {"source": "folder", "path": "no-such-dir"}}, "no-such-dir"),
])
def test_bad_workloads_exit_2_with_one_line(write_workload, tmp_path, capsys, overrides, expect):
    path = write_workload(**overrides)
    rc, out, err = _run_main(["export", str(path)], capsys)
    assert rc == 2
    line = _one_error_line(err)
    assert expect in line and str(path) in line
    assert not (tmp_path / "traces").exists() or not any((tmp_path / "traces").iterdir())


def test_weights_that_do_not_fit_the_model(write_workload, tmp_path, capsys):
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "other.pt")
    path = write_workload(model={"name": "lenet5", "weights": "other.pt"})
    rc, _, err = _run_main(["export", str(path)], capsys)
    line = _one_error_line(err)
    assert rc == 2 and str(path) in line and "does not match the model" in line


def test_missing_required_key_and_bad_yaml(tmp_path, capsys):
    (tmp_path / "noname.yaml").write_text("model: {name: lenet5}\n")
    (tmp_path / "broken.yaml").write_text("name: [x\n")
    for file, expect in (("noname.yaml", "name: required key is missing"), ("broken.yaml", "not valid YAML"),
                         ("absent.yaml", "no such workload file")):
        rc, _, err = _run_main(["export", str(tmp_path / file)], capsys)
        assert rc == 2 and expect in _one_error_line(err) and file in err


def test_unknown_profile_on_the_command_line(write_workload, capsys):
    rc, _, err = _run_main(["export", str(write_workload()), "--profiles", "u8,nope"], capsys)
    assert rc == 2 and "no profile named 'nope'" in _one_error_line(err)


@pytest.mark.parametrize("make, expect", [
    (lambda p: p.write_text("text\n"), "not a readable HDF5 file"),
    (lambda p: h5py.File(p, "w").create_dataset("x", data=[1, 2]).file.close(), "not a precision-sim trace"),
    (lambda p: None, "no such trace file"),
])
def test_inspect_bad_files(tmp_path, capsys, make, expect):
    path = tmp_path / "t.h5"
    make(path)
    rc, _, err = _run_main(["inspect", str(path)], capsys)
    assert rc == 2 and expect in _one_error_line(err) and str(path) in err


def test_inspect_a_truncated_trace(write_workload, tmp_path, capsys):
    assert _run_main(["export", str(write_workload())], capsys)[0] == 0
    (trace,) = _traces(tmp_path / "traces")
    trace.write_bytes(trace.read_bytes()[: trace.stat().st_size // 2])
    rc, _, err = _run_main(["inspect", str(trace)], capsys)
    assert rc == 2 and "truncated" in _one_error_line(err)


# ------------------------------------------------------------------------------- batches and statistics

def test_batch_of_three_and_lenet_golden_counts(write_workload, tmp_path, capsys):
    rc, out, _ = _run_main(["export", str(write_workload(input={"source": "random", "count": 3, "seed": 4}))], capsys)
    assert rc == 0
    (trace,) = _traces(tmp_path / "traces")
    with h5py.File(trace, "r") as f:
        assert f["layers/conv1/activations"].shape == (3, 1, 32, 32)
        assert f["layers/fc3/activations"].shape == (3, 84)
        assert f["layers/conv2/weights"].shape == (16, 6, 5, 5)
    rows = trace_stats(trace)
    assert [r["layer"] for r in rows] == list(LENET_MACS)
    assert {r["layer"]: r["macs"] for r in rows} == {n: 3 * m for n, m in LENET_MACS.items()}
    assert sum(LENET_MACS.values()) == 416_520
    for r in rows:
        assert r["act_min"] <= r["act_max"] and 0 <= r["act_zeros"] <= 1
        assert 0 <= r["act_essential_bits"] <= r["act_needed_bits"] <= 8
    assert rows[1]["act_min"] == 0.0 and rows[1]["act_format"].startswith("u8.")   # after ReLU


def test_essential_bits():
    import numpy as np
    assert essential_bits(np.array([0, 1, 3, 8, 255, -5])).tolist() == [0, 1, 2, 1, 8, 2]
