"""The simulations behind ``figures --all``: the zoo workloads, a roofline run of one workload over
every DRAM preset, and a uniform-precision sweep. This is the only module of the package that runs
the simulator (and so imports torch, lazily); the figures themselves read the folders it writes.

Traces are content-addressed by the workload name, model, inputs and profile, not by the memory
systems, so the roofline and sweep variants keep the workload's name and reuse its traces; their
folders are told apart by a suffix.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from ..errors import SimulatorError

ZOO = ("alexnet", "vgg16", "vgg19", "nin", "googlenet", "resnet18", "resnet50", "mobilenet_v2")
ROOFLINE_SUFFIX = "-roofline"
SWEEP_SUFFIX = "-precision"
SWEEP_BITS = (4, 8, 12, 16)
DERIVED_SUFFIXES = (ROOFLINE_SUFFIX, SWEEP_SUFFIX)   # folders the zoo figure leaves out


def zoo_workload_paths(names: Sequence[str] = ZOO, folder: Union[str, Path] = "workloads") -> list[Path]:
    return [Path(folder) / f"{n}.yaml" if not str(n).endswith((".yaml", ".yml")) else Path(n) for n in names]


def _load(path: Union[str, Path, None]):
    from ..workload import load_workload
    if path is None:     # the packaged AlexNet example
        with resources.as_file(resources.files("simulator") / "data" / "default.yaml") as p:
            return load_workload(p)
    return load_workload(path)


def _results_dir(wl, results_dir: Optional[Union[str, Path]], suffix: str = "") -> Path:
    root = Path(results_dir) if results_dir is not None else Path(wl.results_dir)
    return root / f"{wl.name}{suffix}"


def run_zoo(paths: Sequence[Union[str, Path]], results_dir: Optional[Union[str, Path]] = None,
            note: Callable[[str], None] = print) -> list[Path]:
    """Run every workload file (missing ones are skipped with a note); returns the results folders."""
    from tqdm import tqdm

    from ..simulate import run_workload
    out = []
    bar = tqdm(list(paths), desc="zoo", unit="workload")
    for p in bar:
        p = Path(p)
        bar.set_postfix_str(p.stem)
        if not p.is_file():
            note(f"skipped {p}: no such workload file")
            continue
        wl = _load(p)
        result = run_workload(wl, progress=False)
        d = _results_dir(wl, results_dir)
        result.write(d)
        out.append(d)
    return out


def run_roofline(path: Union[str, Path, None], results_dir: Optional[Union[str, Path]] = None,
                 profile: Optional[str] = None) -> Path:
    """Simulate one workload at one profile over every DRAM preset (same buffers as the workload's
    first DRAM memory, else 2 MiB + 2 MiB) and write ``<results>/<name>-roofline/``."""
    from ..config import MemoryConfig
    from ..memory import DRAM_PRESETS
    from ..simulate import run_workload
    from .loading import published_profile
    wl = _load(path)
    profile = profile or published_profile(list(wl.profiles))
    if profile not in wl.profiles:
        raise SimulatorError(f"{wl.source_path}: no profile named '{profile}'; profiles are: {', '.join(wl.profiles)}")
    chip = next((m for m in wl.memory if not m.on_chip), None)
    act_kib = chip.activation_buffer_kib if chip else 2048.0
    weight_kib = chip.weight_buffer_kib if chip else 2048.0
    memories = [MemoryConfig(name=name, dram=name, activation_buffer_kib=act_kib, weight_buffer_kib=weight_kib)
                for name in DRAM_PRESETS]
    variant = wl.model_copy(update={"memory": memories})
    result = run_workload(variant, profiles=[profile], progress=False)
    d = _results_dir(wl, results_dir, ROOFLINE_SUFFIX)
    result.write(d)
    return d


def run_sweep(path: Union[str, Path, None], bits: Sequence[int] = SWEEP_BITS,
              results_dir: Optional[Union[str, Path]] = None) -> Path:
    """Simulate one workload at uniform-N profiles (N in ``bits``) on its own accelerators and
    memories and write ``<results>/<name>-precision/`` (the data of the precision figure)."""
    from ..profiles import parse_profile
    from ..simulate import run_workload
    wl = _load(path)
    profiles = {f"uniform-{b}": parse_profile(f"uniform-{b}") for b in bits}
    variant = wl.model_copy(update={"profiles": profiles})
    result = run_workload(variant, progress=False)
    d = _results_dir(wl, results_dir, SWEEP_SUFFIX)
    result.write(d)
    return d
