"""A FINN-style dataflow accelerator on an FPGA (Umuroglu et al. FPGA 2017; Blott et al., FINN-R,
ACM TRETS 2018; the engine behind Su et al., ARC 2018).

Every compute layer gets its own matrix-vector unit, all layers run as a pipeline, one frame after
another. A unit of ``lanes`` multiply-accumulate lanes (FINN's PE x SIMD) takes
``ceil(MACs / lanes)`` cycles per frame (its folding); the pipeline's initiation interval is that of
its slowest layer. The lanes come out of a device budget:

* integer lanes cost LUTs by FINN-R's model (constants from the FINN compiler's MVAU
  ``lut_estimation``, as summarised in shared/reference/README.md):
  ``LUTs per lane = C1 * [(2*ceil((W+A)/6) - 1)*(W+A)  +  2*(W+A)]`` (multiplier plus the lane's
  share of the adder tree, ``(W+A)(2*SIMD-1)`` per PE, in the large-SIMD limit), and ``C0`` LUTs per
  layer; accumulator and threshold LUTs are left out;
* floating-point lanes map to DSP slices (plus some LUTs), per ``float_lanes`` in
  ``simulator/data/fpga_devices.yaml``.

``fold`` finds the smallest initiation interval whose lanes fit the budget (a binary search: the
cost of the lanes needed is monotone in the interval). Weights live in on-chip RAM while they fit
(largest layers first); the rest stream from DRAM every frame, so off-chip bandwidth can cap the
frame rate. Everything is the project's own model, hand-written; no library implements it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import SimulatorError
from .formats import FLOATS, storage_bits
from .layers import LayerSpec
from .quantize import LayerPrecision

# FINN-R (Blott et al. 2018) LUT model constants, as in the FINN compiler's MVAU lut_estimation:
C0_LUTS_PER_LAYER = 300        # fixed cost of one matrix-vector unit
C1_LUT_FACTOR = 1.1            # overhead factor on the datapath LUTs
DEVICE_FIELDS = ("luts", "dsps", "bram_kib", "clock_mhz", "dram_gbps")
_DEVICE_FILE = "fpga_devices.yaml"


@dataclass(frozen=True)
class FpgaDevice:
    """A device's budget: LUTs, DSP slices, on-chip RAM for weights, the clock and the DRAM bandwidth."""

    name: str
    luts: int
    dsps: int
    bram_kib: float
    clock_mhz: float
    dram_gbps: float
    source: str = ""
    description: str = ""
    usable_luts: float = 0.7       # fractions a design may spend (fpga_devices.yaml 'usable')
    usable_dsps: float = 0.9
    usable_bram: float = 0.8

    @property
    def lut_budget(self) -> float:
        return self.luts * self.usable_luts

    @property
    def dsp_budget(self) -> float:
        return self.dsps * self.usable_dsps

    @property
    def bram_budget_bits(self) -> float:
        return self.bram_kib * 8192 * self.usable_bram


@dataclass(frozen=True)
class LaneCost:
    """Resources of one multiply-accumulate lane."""

    luts: float
    dsps: float
    source: str


def _positive(value: Any, at: str, name: str, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SimulatorError(f"{at}: field '{name}': {value!r} is not a positive number")
    if integer and int(value) != value:
        raise SimulatorError(f"{at}: field '{name}': {value!r} is not a whole number")
    return value


def parse_device(name: str, entry: Any, where: str, usable: Optional[dict] = None) -> FpgaDevice:
    """One device from its YAML mapping; errors name the file, the device and the field."""
    at = f"{where}: device '{name}'"
    if not isinstance(entry, dict):
        raise SimulatorError(f"{at}: expected a mapping with {', '.join(DEVICE_FIELDS)}, source")
    unknown = set(entry) - set(DEVICE_FIELDS) - {"source", "description"}
    if unknown:
        raise SimulatorError(f"{at}: field '{sorted(unknown)[0]}': unknown; valid: {', '.join(DEVICE_FIELDS)}, "
                             f"source, description")
    for f in DEVICE_FIELDS:
        if f not in entry:
            raise SimulatorError(f"{at}: field '{f}' is missing")
        _positive(entry[f], at, f, integer=f in ("luts", "dsps"))
    fractions = {}
    for key, value in (usable or {}).items():
        if key == "source":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise SimulatorError(f"{where}: usable: field '{key}': {value!r} is not a fraction in (0, 1]")
        fractions[f"usable_{key}"] = float(value)
    return FpgaDevice(name=name, luts=int(entry["luts"]), dsps=int(entry["dsps"]), bram_kib=float(entry["bram_kib"]),
                      clock_mhz=float(entry["clock_mhz"]), dram_gbps=float(entry["dram_gbps"]),
                      source=str(entry.get("source", "")), description=str(entry.get("description", "")),
                      **fractions)


@lru_cache(maxsize=None)
def _preset_doc() -> dict:
    try:
        text = (resources.files("simulator") / "data" / _DEVICE_FILE).read_text(encoding="utf-8")
    except (NotADirectoryError, TypeError, ModuleNotFoundError, FileNotFoundError):
        text = (Path(__file__).parent / "data" / _DEVICE_FILE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def device_presets() -> dict[str, FpgaDevice]:
    doc = _preset_doc()
    usable = {k: v for k, v in doc.get("usable", {}).items()}
    return {str(n): parse_device(str(n), e, _DEVICE_FILE, usable) for n, e in doc["devices"].items()}


def float_lane_costs() -> dict[str, LaneCost]:
    return {n: LaneCost(float(e["luts"]), float(e["dsps"]), str(e["source"]))
            for n, e in _preset_doc()["float_lanes"].items()}


def load_device(name_or_path: str, **overrides: float) -> FpgaDevice:
    """A preset by name, or a YAML file holding one device's fields; ``overrides`` replace fields."""
    presets = device_presets()
    if name_or_path in presets:
        dev = presets[name_or_path]
    elif Path(name_or_path).suffix in (".yaml", ".yml"):
        p = Path(name_or_path)
        if not p.is_file():
            raise SimulatorError(f"device file {name_or_path}: no such file")
        try:
            entry = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise SimulatorError(f"device file {p}: not valid YAML ({str(e).splitlines()[0]})") from None
        dev = parse_device(p.stem, entry, str(p), _preset_doc().get("usable"))
    else:
        raise SimulatorError(f"--device: unknown FPGA '{name_or_path}'; presets: {', '.join(presets)} "
                             f"(or a .yaml file with {', '.join(DEVICE_FIELDS)})")
    for f, v in overrides.items():
        if f not in DEVICE_FIELDS:
            raise SimulatorError(f"device '{dev.name}': field '{f}': unknown; valid: {', '.join(DEVICE_FIELDS)}")
        _positive(v, f"device '{dev.name}'", f, integer=f in ("luts", "dsps"))
    return replace(dev, **overrides) if overrides else dev


# ---------------------------------------------------------------------------------------- lane cost

def lane_luts(weight_bits: int, act_bits: int) -> float:
    """FINN-R LUTs of one integer MAC lane: C1 * (multiplier + adder-tree share)."""
    s = weight_bits + act_bits
    return C1_LUT_FACTOR * ((2 * math.ceil(s / 6) - 1) * s + 2 * s)


def lane_cost(p: LayerPrecision) -> LaneCost:
    """Resources of one MAC lane at a layer's formats: floats on DSPs, everything else in LUTs at
    the storage widths (binary weights are 1 bit, ternary 2, powers of two their code width)."""
    a, w = p.activations, p.weights
    if a.format in FLOATS or w.format in FLOATS:
        f = max((x.format for x in (a, w) if x.format in FLOATS), key=lambda n: storage_bits_of(n))
        return float_lane_costs()[f]
    W, A = storage_bits(w), storage_bits(a)
    return LaneCost(lane_luts(W, A), 0.0, f"FINN-R LUT model at W={W}, A={A}")


def storage_bits_of(float_name: str) -> int:
    return {"float32": 32, "float16": 16, "bfloat16": 16}[float_name]


# ---------------------------------------------------------------------------------------- folding

@dataclass(frozen=True)
class FpgaLayer:
    layer: str
    macs: int
    weight_bits: int                # W and A, storage widths
    act_bits: int
    lanes: int
    cycles: int                     # per frame: ceil(macs / lanes)
    luts: float
    dsps: float
    weight_storage_bits: int
    on_chip: bool                   # weights held in on-chip RAM (else streamed from DRAM per frame)
    frames_per_s: float             # this layer alone: clock / cycles


@dataclass(frozen=True)
class FpgaResult:
    device: str
    layers: list[FpgaLayer]
    interval_cycles: int            # the pipeline's initiation interval: its slowest layer
    compute_frames_per_s: float
    memory_frames_per_s: float      # what DRAM bandwidth allows (inf when every weight is on chip)
    frames_per_s: float
    ops_per_s: float                # 2 ops (multiply, add) per MAC
    bound: str                      # "compute" or "memory"
    luts: float
    dsps: float
    weight_bits_on_chip: int
    weight_bits_off_chip: int
    macs: int

    def as_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [asdict(l) for l in self.layers]
        return d


def _lanes_for(interval: int, macs: list[int], max_lanes: list[int]) -> list[int]:
    return [min(m_l, -(-m // interval)) for m, m_l in zip(macs, max_lanes)]


def fold(layers: list[LayerSpec], precisions: dict[str, LayerPrecision], device: FpgaDevice,
         input_bits: Optional[int] = None) -> FpgaResult:
    """Lanes per layer, cycles per frame and throughput of ``layers`` on ``device``.

    A layer has at most one lane per weight (FINN's PE = filters, SIMD = dot-product length), so its
    fastest is one frame per ``windows`` cycles. The smallest interval whose lanes fit the LUT and
    DSP budgets wins; every layer then gets the lanes it needs for that interval."""
    if not layers:
        raise SimulatorError("fpga: the network has no compute layers")
    costs = [lane_cost(precisions[l.name]) for l in layers]
    macs = [l.macs for l in layers]
    max_lanes = [l.weight_count for l in layers]

    def fits(lanes: list[int]) -> bool:
        luts = sum(C0_LUTS_PER_LAYER + n * c.luts for n, c in zip(lanes, costs))
        dsps = sum(n * c.dsps for n, c in zip(lanes, costs))
        return luts <= device.lut_budget and dsps <= device.dsp_budget

    # no interval below the fully unrolled slowest layer's helps: extra lanes elsewhere would idle
    lo, hi = max(-(-m // m_l) for m, m_l in zip(macs, max_lanes)), max(macs)
    if not fits(_lanes_for(hi, macs, max_lanes)):
        need = sum(C0_LUTS_PER_LAYER + c.luts for c in costs)
        need_dsp = sum(c.dsps for c in costs)
        raise SimulatorError(f"fpga: device '{device.name}' cannot hold one lane per layer: needs {need:,.0f} LUTs "
                             f"and {need_dsp:,.0f} DSPs of a budget of {device.lut_budget:,.0f} and "
                             f"{device.dsp_budget:,.0f}")
    while lo < hi:                 # smallest interval that fits
        mid = (lo + hi) // 2
        if fits(_lanes_for(mid, macs, max_lanes)):
            hi = mid
        else:
            lo = mid + 1
    lanes = _lanes_for(lo, macs, max_lanes)
    clock_hz = device.clock_mhz * 1e6

    # weights on chip, largest layers first, while they fit the on-chip RAM budget
    wbits = [l.weight_count * storage_bits(precisions[l.name].weights) for l in layers]
    on_chip = [False] * len(layers)
    room = device.bram_budget_bits
    for i in sorted(range(len(layers)), key=lambda i: -wbits[i]):
        if wbits[i] <= room:
            on_chip[i], room = True, room - wbits[i]
    off_bits = sum(b for b, on in zip(wbits, on_chip) if not on)
    frame_bits = layers[0].activation_count * (input_bits or storage_bits(precisions[layers[0].name].activations))

    out = []
    for l, n, c, wb, on in zip(layers, lanes, costs, wbits, on_chip):
        cycles = -(-l.macs // n)
        p = precisions[l.name]
        out.append(FpgaLayer(l.name, l.macs, storage_bits(p.weights), storage_bits(p.activations), n, cycles,
                             C0_LUTS_PER_LAYER + n * c.luts, n * c.dsps, wb, on, clock_hz / cycles))
    interval = max(x.cycles for x in out)
    compute_fps = clock_hz / interval
    # every frame moves its input and the off-chip weights over the DRAM bus
    memory_fps = device.dram_gbps * 8e9 / (off_bits + frame_bits) if off_bits + frame_bits else math.inf
    fps = min(compute_fps, memory_fps)
    total_macs = sum(macs)
    return FpgaResult(device.name, out, interval, compute_fps, memory_fps, fps, 2.0 * total_macs * fps,
                      "compute" if compute_fps <= memory_fps else "memory",
                      sum(x.luts for x in out), sum(x.dsps for x in out),
                      sum(b for b, on in zip(wbits, on_chip) if on), off_bits, total_macs)
