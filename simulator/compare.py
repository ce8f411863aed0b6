"""Side-by-side comparison of precision profiles and engines on one workload, for scripts and the
``compare`` command. Traces are exported once per profile and reused, so a notebook can sweep
profiles and hardware in a loop without re-exporting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .errors import SimulatorError
from .results import LayerRecord, record_dicts, totals, write_csv, write_json
from .simulate import RunResult, run_workload
from .workload import Workload, load_workload


def _select(items: Sequence[Any], wanted: Optional[Sequence[str]], what: str, keys) -> list[Any]:
    if not wanted:
        return list(items)
    out = []
    for w in wanted:
        hit = [i for i in items if w in keys(i)]
        if not hit:
            valid = sorted({k for i in items for k in keys(i)})
            raise SimulatorError(f"no {what} named '{w}'; valid: {', '.join(valid)}")
        out += [h for h in hit if h not in out]
    return out


@dataclass
class Comparison:
    """Records of the selected profiles x accelerators x memories, with helpers to tabulate them."""

    run: RunResult
    profiles: list[str]
    accelerators: list[str]
    memories: list[str]
    accuracy: dict[str, Any] = field(default_factory=dict)   # profile -> Accuracy (held-out digits) where known

    @property
    def records(self) -> list[LayerRecord]:
        return self.run.records

    def totals(self) -> list[dict[str, Any]]:
        return totals(self.records)

    METRICS = {"bits": "bits a/w", "cycles": "Total Cycles", "speedup": "speedup", "energy": "energy uJ",
               "footprint": "footprint KiB", "bound": "bound"}

    def side_by_side(self, memory: str, metric: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Rows (one per layer, then TOTAL) and columns of one metric: a column per profile for
        ``bits`` and ``footprint``, per profile x accelerator for the others. Value-aware engines
        report the mean over inputs. ``speedup`` is against the baseline accelerator running the
        first profile, so profiles can be compared with each other too."""
        if metric not in self.METRICS:
            raise SimulatorError(f"unknown metric '{metric}'; valid: {', '.join(self.METRICS)}")
        per_profile = metric in ("bits", "footprint")
        recs = [r for r in self.records if r.memory == memory]
        n_inputs = {a: len({r.input for r in recs if r.accelerator == a}) or 1 for a in self.accelerators}
        base = self.run.workload.baseline_accelerator.name
        rows: dict[str, dict[str, Any]] = {}
        sums: dict[tuple, float] = {}
        layer_cycles: dict[tuple, float] = {}
        for r in recs:
            row = rows.setdefault(r.layer, {"layer": r.layer})
            col = r.profile if per_profile else f"{r.profile} {r.accelerator}"
            n = n_inputs[r.accelerator]
            for what, v in (("cycles", r.total_cycles), ("energy", r.energy_total_pj / 1e6)):
                sums[(r.profile, r.accelerator, what)] = sums.get((r.profile, r.accelerator, what), 0) + v / n
            if metric == "bits":
                row[col] = f"{r.act_bits}/{r.weight_bits}"
            elif metric == "footprint":
                row[col] = (r.footprint_weight_bits + r.footprint_act_bits) / 8192
            elif metric == "cycles":
                row[col] = row.get(col, 0) + r.total_cycles / n
            elif metric == "energy":
                row[col] = row.get(col, 0) + r.energy_total_pj / 1e6 / n
            elif metric == "bound":
                row[col] = r.bound
            else:
                layer_cycles[(r.profile, r.accelerator, r.layer)] = \
                    layer_cycles.get((r.profile, r.accelerator, r.layer), 0) + r.total_cycles / n
        ref = self.profiles[0]
        if metric == "speedup":      # against the baseline accelerator at the first (reference) profile
            for (p, a, layer), cyc in layer_cycles.items():
                b = layer_cycles.get((ref, base, layer))
                rows[layer][f"{p} {a}"] = b / cyc if b and cyc else float("nan")
        cols = list(self.profiles) if per_profile else [f"{p} {a}" for p in self.profiles for a in self.accelerators]
        total: dict[str, Any] = {"layer": "TOTAL"}
        for c in cols:
            if metric == "footprint":
                total[c] = sum(row.get(c, 0) for row in rows.values())
            elif metric in ("cycles", "energy"):
                p, a = c.split(" ", 1)
                total[c] = sums.get((p, a, metric), 0)
            elif metric == "speedup":
                p, a = c.split(" ", 1)
                cyc = sums.get((p, a, "cycles"))
                total[c] = sums.get((ref, base, "cycles"), float("nan")) / cyc if cyc else float("nan")
        return [*rows.values(), total], ["layer", *cols]

    def dataframe(self):
        """The records as a pandas DataFrame (pandas is an optional extra)."""
        try:
            import pandas as pd
        except ImportError:
            raise SimulatorError("Comparison.dataframe needs pandas: pip install pandas") from None
        return pd.DataFrame(record_dicts(self.records))

    def write(self, out_dir: Union[str, Path, None] = None) -> tuple[Path, Path]:
        wl = self.run.workload
        d = Path(out_dir) if out_dir else Path(wl.results_dir) / wl.name / "compare"
        csv_path = write_csv(d / "layers.csv", self.records)
        json_path = write_json(d / "compare.json", {**self.run.config(), "profiles": self.profiles,
                                                    "accelerators": self.accelerators, "memories": self.memories,
                                                    "accuracy": {p: a.as_dict() for p, a in self.accuracy.items()},
                                                    "totals": self.totals()})
        return csv_path, json_path


def profile_accuracies(wl: Workload, profiles: Sequence[str]) -> dict[str, Any]:
    """Held-out accuracy of each profile where it is known: a trained model (``model.weights``) on
    labelled inputs (the digits), evaluated on the test split with formats calibrated on the
    validation split, as ``search`` reports it. Empty otherwise."""
    if wl.input.source != "digits" or not wl.model.weights:
        return {}
    from .accuracy import evaluator_for
    from .export import build_network
    from .profiles import resolve_profile
    net = build_network(wl)
    ev = evaluator_for(wl, "test", calibration="val", model=net.model)
    return {p: ev(resolve_profile(p, wl.profiles[p], net.layers)) for p in profiles}


def compare(workload: Union[Workload, str, Path], profiles: Optional[Sequence[str]] = None,
            engines: Optional[Sequence[str]] = None, memories: Optional[Sequence[str]] = None,
            progress: bool = True) -> Comparison:
    """Simulate the chosen profiles on the chosen accelerators (by accelerator name or engine kind)
    and memory systems of ``workload``; the first chosen accelerator is the speedup baseline unless
    the workload's baseline is among them."""
    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    where = wl.source_path or "workload"
    try:
        profs = _select(list(wl.profiles), profiles, "profile", lambda p: {p})
        accs = _select(wl.accelerators, engines, "accelerator or engine", lambda a: {a.name, a.engine})
        mems = _select(wl.memory, memories, "memory", lambda m: {m.name})
    except SimulatorError as e:
        raise SimulatorError(f"{where}: {e}") from None
    names = [a.name for a in accs]
    baseline = wl.baseline if wl.baseline in names else names[0]
    sub = wl.model_copy(update={"profiles": {p: wl.profiles[p] for p in profs}, "accelerators": accs,
                                "memory": mems, "baseline": baseline})
    run = run_workload(sub, progress=progress)
    return Comparison(run, profs, names, [m.name for m in mems], profile_accuracies(sub, profs))
