"""Scripted comparisons: selection by name or engine kind, side-by-side tables, files."""
from __future__ import annotations

import json
import math

import pytest

from simulator.compare import compare
from simulator.errors import SimulatorError
from simulator.workload import workload_from_dict

from test_simulate import _workload


@pytest.fixture(scope="module")
def comp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    wl = workload_from_dict(_workload(tmp), str(tmp / "tiny.yaml"))
    return compare(wl, profiles=["uniform-16", "uniform-8"], engines=["bit-serial", "dadn"], memories=["on-chip"],
                   progress=False)


def test_selection_keeps_the_order_and_the_baseline(comp):
    assert comp.profiles == ["uniform-16", "uniform-8"]
    assert comp.accelerators == ["str", "dadn"] and comp.memories == ["on-chip"]
    assert comp.run.workload.baseline == "dadn"      # the workload's baseline survives when selected
    assert {r.profile for r in comp.records} == {"uniform-16", "uniform-8"}


def test_speedup_is_against_the_baseline_at_the_first_profile(comp):
    rows, cols = comp.side_by_side("on-chip", "speedup")
    cyc, _ = comp.side_by_side("on-chip", "cycles")
    total = rows[-1]
    assert total["layer"] == "TOTAL" and cols[1:] == ["uniform-16 str", "uniform-16 dadn", "uniform-8 str",
                                                      "uniform-8 dadn"]
    base = cyc[-1]["uniform-16 dadn"]
    for c in cols[1:]:
        assert math.isclose(total[c], base / cyc[-1][c])
    conv1 = next(r for r in rows if r["layer"] == "conv1")
    assert math.isclose(conv1["uniform-8 str"], 2 * conv1["uniform-16 str"])


def test_bits_and_footprint_tables(comp):
    rows, cols = comp.side_by_side("on-chip", "bits")
    assert cols == ["layer", "uniform-16", "uniform-8"] and rows[0]["uniform-8"] == "8/8"
    fp, _ = comp.side_by_side("on-chip", "footprint")
    assert math.isclose(fp[-1]["uniform-8"] * 2, fp[-1]["uniform-16"])


def test_unknown_names_list_the_valid_ones(tmp_path):
    wl = workload_from_dict(_workload(tmp_path), str(tmp_path / "tiny.yaml"))
    with pytest.raises(SimulatorError, match=r"no accelerator or engine named 'loomx'; valid: .*bit-serial.*dadn"):
        compare(wl, engines=["loomx"], progress=False)
    with pytest.raises(SimulatorError, match=r"tiny.yaml: no profile named 'u9'; valid: mixed, uniform-16, uniform-8"):
        compare(wl, profiles=["u9"], progress=False)
    with pytest.raises(SimulatorError, match="unknown metric"):
        compare(wl, profiles=["uniform-8"], memories=["on-chip"], progress=False).side_by_side("on-chip", "joules")


def test_files_and_dataframe(comp, tmp_path):
    csv_path, json_path = comp.write(tmp_path)
    meta = json.loads(json_path.read_text())
    assert meta["profiles"] == ["uniform-16", "uniform-8"] and meta["accelerators"] == ["str", "dadn"]
    assert len(csv_path.read_text().splitlines()) == len(comp.records) + 1
    pd = pytest.importorskip("pandas")
    df = comp.dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) == len(comp.records)


def test_accuracy_where_known(tmp_path):
    """A trained network on labelled digits reports held-out accuracy per profile; others report none."""
    from pathlib import Path
    from simulator.workload import load_workload
    root = Path(__file__).resolve().parents[1]
    wl = load_workload(root / "workloads" / "lenet5.yaml")
    wl = wl.model_copy(update={"traces_dir": str(tmp_path / "t"), "results_dir": str(tmp_path / "r")})
    comp = compare(wl, profiles=["uniform-16", "uniform-99"], engines=["stripes"], progress=False)
    a16, a99 = comp.accuracy["uniform-16"], comp.accuracy["uniform-99"]
    assert a16.n == 360 and abs(a16.top1 - a16.float_top1) <= 1 / 360      # 16 bits: float's accuracy
    assert 0.97 <= a99.relative_top1 <= 1.01 and a99.mismatch > 0          # 5 bits: some inputs change class
    meta = json.loads(comp.write(tmp_path / "o")[1].read_text())
    assert meta["accuracy"]["uniform-99"]["n"] == 360


def test_no_accuracy_without_labels(comp):
    assert comp.accuracy == {}
