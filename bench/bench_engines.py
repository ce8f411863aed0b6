"""Benchmark of the compute engines on real traces: AlexNet (227) and VGG-19 (224), one photograph,
Stripes' per-layer profile (stripes-100), every engine with its default configuration, both memory
systems of the workloads (on chip and DDR4).

    python bench/bench_engines.py [--networks alexnet,vgg19] [--skip-twins]

For each network: every engine alone and all together, each in a fresh process, timing the first
``simulate`` call (cold: Numba's cache loaded, or with ``compile`` an empty cache so every kernel is
compiled) and the best of two later calls (warm); peak RSS of that process. Then, on one
representative layer (AlexNet conv3), each kernel against its NumPy twin from tests/test_kernels.py.
Prints a table and writes bench/results/engines.json. Not a timed test: figures depend on the
machine and its load; compare ratios measured in one run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"alexnet": ROOT / "workloads" / "alexnet.yaml", "vgg19": ROOT / "workloads" / "vgg19.yaml"}
PROFILE = "stripes-100"
ENGINE_NAMES = ("bit-parallel", "bit-serial", "dynamic", "pragmatic", "loom", "bitfusion")
GOALS = {"alexnet": 2.0, "vgg19": 10.0, "rss_mib": 2048}


def trace_for(network: str) -> Path:
    """Export (or reuse) the network's stripes-100 trace."""
    from simulator.export import export
    from simulator.workload import load_workload
    wl = load_workload(WORKLOADS[network])
    return export(wl, profiles=[PROFILE], progress=False)[PROFILE]


def worker(network: str, trace: str, engines: list[str]) -> dict:
    """In a fresh process: cold and warm ``simulate`` of ``engines`` on ``trace``; peak RSS."""
    import resource
    from simulator.config import AcceleratorConfig
    from simulator.simulate import simulate
    from simulator.workload import load_workload
    memories = load_workload(WORKLOADS[network]).memory
    accs = [AcceleratorConfig(name=e, engine=e) for e in engines]
    t0 = time.perf_counter()
    simulate(trace, accs, memories, profile=PROFILE)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(2):
        t0 = time.perf_counter()
        simulate(trace, accs, memories, profile=PROFILE)
        warm.append(time.perf_counter() - t0)
    return {"cold_s": cold, "warm_s": min(warm),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(network: str, trace: Path, engines: list[str], compile_cold: bool = False) -> dict:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if compile_cold:
            env["NUMBA_CACHE_DIR"] = cache          # an empty cache: every kernel compiles
        out = subprocess.run([sys.executable, __file__, "--worker", network, str(trace), ",".join(engines)],
                             capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def twin_speedups() -> list[dict]:
    """Each kernel against its twin on AlexNet conv3 (256 x 13 x 13, 3x3, pad 1; 384 filters)."""
    import numpy as np
    sys.path.insert(0, str(ROOT / "tests"))
    import test_kernels as T
    from simulator import kernels as K
    from simulator.engines.dynamic import conv_groups, coverage
    from simulator.traces import open_trace

    with open_trace(trace_for("alexnet")) as t:
        layer = next(l for l in t if l.spec.name == "conv3")
        spec, x, w = layer.spec, layer.activations[0].astype(np.int64), layer.weights
        fc6 = next(l for l in t if l.spec.name == "fc6")
        fc_x = fc6.activations[0].astype(np.int64).reshape(-1, 1, 1)
    xp = next(conv_groups(spec, x)).padded
    geometry = (*spec.output_hw, *spec.stride, *spec.kernel)
    cover = coverage(spec)
    hi, lo = K.brick_widths(xp, 16, False)
    cost = K.brick_terms_cycles(xp, 16, 2, False)
    s_n = 9 * 16
    ones = np.ones((1, s_n), np.int64)
    fc_costs = np.tile(np.maximum(K.brick_widths(fc_x, 16, False)[0][:, 0, 0].astype(np.int64), 1), 16)
    cases = [
        ("brick_widths", lambda: K.brick_widths(xp, 16, False), lambda: T.twin_brick_widths(xp, 16, False)),
        ("brick_terms_cycles", lambda: K.brick_terms_cycles(xp, 16, 2, False),
         lambda: T.twin_brick_terms_cycles(xp, 16, 2, False)),
        ("covered_widths", lambda: K.covered_widths(xp, cover, False, False, 1),
         lambda: T.twin_covered(xp, geometry, lambda v: T.twin_own_width(v, False, False))),
        ("covered_terms", lambda: K.covered_terms(xp, cover, False),
         lambda: T.twin_covered(xp, geometry, lambda v: len(T.twin_terms(v, False)))),
        ("conv_cycles (dynamic, R=0)", lambda: K.conv_cycles(hi, lo, False, *geometry, 16, 16, 1, ones, 0),
         lambda: T.twin_conv_cycles(hi, lo, False, *geometry, 16, 16, 1, ones, 0)),
        ("conv_cycles (pragmatic, R=1)", lambda: K.conv_cycles(cost, cost, False, *geometry, 16, 1, 1, ones, 1),
         lambda: T.twin_conv_cycles(cost, cost, False, *geometry, 16, 1, 1, ones, 1)),
        ("weight_tile_widths", lambda: K.weight_tile_widths(w, 128, 16, True),
         lambda: T.twin_weight_tile_widths(w, 128, 16, True)),
        ("staggered_cycles_var (fc6)", lambda: K.staggered_cycles_var(fc_costs, 16),
         lambda: T.twin_staggered(list(fc_costs), 16)),
    ]
    rows = []
    for name, kernel, twin in cases:
        kernel()                                   # compile or load
        best = min(_timed(kernel) for _ in range(5))
        t_twin = _timed(twin)
        rows.append({"kernel": name, "kernel_ms": best * 1e3, "twin_ms": t_twin * 1e3, "speedup": t_twin / best})
    return rows


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", default="alexnet,vgg19")
    ap.add_argument("--skip-twins", action="store_true")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        network, trace, engines = args.worker
        print(json.dumps(worker(network, trace, engines.split(","))))
        return

    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "platform": platform.platform()},
                     "profile": PROFILE, "goals": GOALS, "networks": {}}
    print(f"{'network':8} {'engine':13} {'cold s':>8} {'warm s':>8} {'peak RSS MiB':>13}")
    for network in args.networks.split(","):
        trace = trace_for(network)
        rows = {}
        for engine in ENGINE_NAMES:
            rows[engine] = run_worker(network, trace, [engine])
        rows["all"] = run_worker(network, trace, list(ENGINE_NAMES))
        rows["all (compile)"] = run_worker(network, trace, list(ENGINE_NAMES), compile_cold=True)
        for name, r in rows.items():
            print(f"{network:8} {name:13} {r['cold_s']:8.2f} {r['warm_s']:8.2f} {r['peak_rss_mib']:13.0f}")
        results["networks"][network] = {"trace": str(trace), "engines": rows}
    if not args.skip_twins:
        results["kernel_vs_twin"] = twin_speedups()
        print(f"\n{'kernel (AlexNet conv3)':30} {'kernel ms':>10} {'twin ms':>10} {'speed-up':>9}")
        for r in results["kernel_vs_twin"]:
            print(f"{r['kernel']:30} {r['kernel_ms']:10.2f} {r['twin_ms']:10.1f} {r['speedup']:9.0f}")
    out = ROOT / "bench" / "results" / "engines.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
