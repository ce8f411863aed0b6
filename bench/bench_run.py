"""Benchmark of the main job: `python -m simulator run WORKLOAD`, with its traces cold (exported)
and reused, and the simulation alone, plus peak memory (max RSS) of each run.

    python bench/bench_run.py [workloads/vgg19.yaml] [--repeat 3]

Prints a table and writes bench/results/run_<name>.json. Not a timed test: figures depend on the
machine; compare ratios measured in one run.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _run_child(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "dt = time.perf_counter() - t; "
            "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, p.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, check=True)
    dt, rss, rc = out.stdout.split()
    if int(rc) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(args)}")
    return float(dt), float(rss)


def _simulation_alone(workload: Path, repeat: int) -> list[float]:
    from simulator.export import export
    from simulator.simulate import simulate
    from simulator.workload import load_workload
    wl = load_workload(workload)
    traces = export(wl, progress=False)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for name, path in traces.items():
            simulate(path, wl.accelerators, wl.memory, wl.energy, wl.baseline_accelerator.name, name, wl.name)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload", nargs="?", default=str(ROOT / "workloads" / "vgg19.yaml"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    src = Path(args.workload).resolve()
    data = yaml.safe_load(src.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data.update(traces_dir=str(tmp / "traces"), results_dir=str(tmp / "results"))
        wl_path = tmp / src.name
        wl_path.write_text(yaml.safe_dump(data))
        cmd = [sys.executable, "-m", "simulator", "run", str(wl_path), "--summary"]
        cold = _run_child(cmd, ROOT)
        reused = [_run_child(cmd, ROOT) for _ in range(args.repeat)]
        sim = _simulation_alone(wl_path, args.repeat)
        trace_mib = sum(p.stat().st_size for p in (tmp / "traces").glob("*.h5")) / 2**20
    figures = {
        "workload": str(src.relative_to(ROOT)) if src.is_relative_to(ROOT) else str(src),
        "cold_s": round(cold[0], 2), "cold_peak_rss_mib": round(cold[1]),
        "reused_s_median": round(statistics.median(t for t, _ in reused), 2),
        "reused_peak_rss_mib": round(max(r for _, r in reused)),
        "simulation_alone_s_median": round(statistics.median(sim), 3),
        "traces_mib": round(trace_mib, 1),
        "repeat": args.repeat, "python": platform.python_version(), "machine": platform.machine(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
    }
    out = ROOT / "bench" / "results" / f"run_{data['name']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    w = max(map(len, figures))
    for k, v in figures.items():
        print(f"{k.ljust(w)}  {v}")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
