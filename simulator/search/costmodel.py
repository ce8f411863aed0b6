"""Per-layer cost tables: the simulated cost of every (layer, activation bits, weight bits) candidate,
computed once, so that a search costs a few accuracy evaluations and no simulation per step.

For each accelerator x memory system the engines, the memory model and the energy accounting run
directly on each layer's ``LayerSpec`` at every candidate (p_a, p_w): closed form for the engines
that do not look at values (bit-parallel, bit-serial, Bit Fusion). Value-aware engines (dynamic,
pragmatic, Loom) need activations: they are taken from one trace of the workload's inputs exported
at ``REFERENCE_BITS`` (formats explicit: the integer bits of each tensor's range, the rest fraction
bits), and requantized to each candidate width by a rounding right shift. **Approximation**: a real
trace at the candidate profile would also carry the rounding of the earlier layers into this
layer's values; the shift keeps the values of the reference network. The cost of a whole profile
reported by a search comes from the full simulator (``common.profile_cost``), not from these tables.

**Coupling.** A layer writes its output at the next layer's activation width, so its DRAM writes,
stalls and energy depend on a precision that is not its own. To make costs additive, each layer is
simulated with its output at ``REFERENCE_OUT`` bits, and the change a consumer's width makes to its
producer's cost, measured with the producer at ``REFERENCE_OUT`` bits too, is charged to the
consumer: cost_l(a, w) = sim_l(a, w, out=R) + [sim_{l-1}(R, R, out=a) - sim_{l-1}(R, R, out=R)].
This is exact for DRAM traffic whenever the producer's tiling does not change with its output
width; for cycles it ignores how much of the write is hidden behind compute at the producer's real
widths. The network's last layer writes its logits at ``simulate.OUT_BITS_LAST``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..energy import layer_energy, load_table
from ..engines import make_engine
from ..errors import SimulatorError
from ..layers import LayerSpec
from ..memory import resolve_dram, simulate_memory
from ..quantize import LayerPrecision, TensorPrecision
from ..simulate import OUT_BITS_LAST
from ..workload import Workload
from .common import TENSORS, TensorRange, min_bits
from .objectives import ENGINE_METRICS, Objective, Term, parse_objective

REFERENCE_BITS = 16     # width of the trace value-aware engines requantize from
REFERENCE_OUT = 8       # output width each layer is tabulated at (see the module docstring)
DEFAULT_BITS = tuple(range(2, 17))

Bits = dict[str, tuple[int, int]]       # layer -> (activation bits, weight bits)


def requantize(q: np.ndarray, from_bits: int, to_bits: int, signed: bool) -> np.ndarray:
    """Integers of a ``from_bits`` format with I integer bits as integers of a ``to_bits`` format with
    the same I: a right shift by the difference, rounding half up, saturated to the new range."""
    q = np.asarray(q, dtype=np.int64)
    s = from_bits - to_bits
    if s < 0:
        return q << -s
    if s > 0:
        q = (q + (1 << (s - 1))) >> s
    lo, hi = (-(1 << (to_bits - 1)), (1 << (to_bits - 1)) - 1) if signed else (0, (1 << to_bits) - 1)
    return np.clip(q, lo, hi)


def fixed_precisions(bits: Bits, ranges: dict[tuple[str, str], TensorRange]) -> dict[str, LayerPrecision]:
    """A profile with every format explicit: each tensor keeps the integer bits of its range."""
    def tp(layer: str, tensor: str, b: int) -> TensorPrecision:
        r = ranges[(layer, tensor)]
        return TensorPrecision(b, b - r.integer_bits, r.signed)
    return {n: LayerPrecision(tp(n, "activations", a), tp(n, "weights", w)) for n, (a, w) in bits.items()}


@dataclass
class CostModel:
    """Cost tables of one workload's layers at candidate widths, for every objective term.

    ``act_bits[l]`` / ``weight_bits[l]`` are layer l's candidate widths (from ``bits``, at least the
    fewest a signed tensor can have); ``table(term)[l]`` is an (A_l, W_l) array of that term's cost
    of layer l, additive over layers (``peak-memory`` excepted: see ``peak``).
    """

    workload: Workload
    specs: list[LayerSpec]
    ranges: dict[tuple[str, str], TensorRange]
    bits: Sequence[int] = DEFAULT_BITS
    value_inputs: Optional[int] = None            # inputs value-aware engines average over (default: all)
    act_bits: list[list[int]] = field(init=False)
    weight_bits: list[list[int]] = field(init=False)
    simulations: int = field(init=False, default=0)
    seconds: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        def cands(layer: str, tensor: str) -> list[int]:
            lo = min_bits(self.ranges[(layer, tensor)].signed)
            out = sorted({b for b in self.bits if b >= lo})
            if not out:
                raise SimulatorError(f"no candidate width of {layer} {tensor} is at least {lo} bits")
            return out
        self.act_bits = [cands(s.name, "activations") for s in self.specs]
        self.weight_bits = [cands(s.name, "weights") for s in self.specs]
        self._tables: dict[str, list[np.ndarray]] = {}
        self._values: Optional[list[tuple[np.ndarray, np.ndarray]]] = None
        energy = self.workload.energy
        if energy.table != "default":
            energy = energy.model_copy(update={"table": str(self.workload.resolve_path(energy.table))})
        self._energy = load_table(energy)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def objective(self, text: Union[str, Objective]) -> Objective:
        return text if isinstance(text, Objective) else parse_objective(self.workload, text)

    # -------------------------------------------------------------------------------- tables

    def table(self, term: Term) -> list[np.ndarray]:
        """Per layer, the (A_l, W_l) costs of ``term`` (consumer-attributed output writes)."""
        if term.column not in self._tables:
            if term.metric in ENGINE_METRICS:
                self._engine_tables(term.accelerator, term.memory)
            else:
                self._tables[term.column] = self._network_table(term.metric)
        return self._tables[term.column]

    def _network_table(self, metric: str) -> list[np.ndarray]:
        out = []
        for s, A, W in zip(self.specs, self.act_bits, self.weight_bits):
            a, w = np.array(A, float)[:, None], np.array(W, float)[None, :]
            if metric == "footprint":
                t = s.activation_count * a + s.weight_count * w
            elif metric == "bops":
                t = s.macs * a * w
            elif metric == "model-size":
                t = s.weight_count * w + 0 * a
            elif metric == "peak-memory":
                t = 0 * a * w           # not additive: see ``peak``
            else:
                raise SimulatorError(f"no cost table for metric '{metric}'")
            out.append(np.broadcast_to(t, (len(A), len(W))).astype(float))
        return out

    def _layer_values(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer, the (activations, weights) integers of a trace at ``REFERENCE_BITS`` (exported
        once through the normal pipeline; content-addressed, so reused on later runs)."""
        if self._values is None:
            from ..export import export
            from ..traces import open_trace
            from .common import profile_spec
            ref = fixed_precisions({n: (REFERENCE_BITS, REFERENCE_BITS) for n in self.names}, self.ranges)
            name = f"costaware-ref{REFERENCE_BITS}"
            wl = self.workload.model_copy(update={"profiles": {name: profile_spec(ref)}})
            path = export(wl, [name], progress=False)[name]
            n = self.value_inputs
            with open_trace(path) as t:
                self._values = [(layer.activations[:n].astype(np.int64), layer.weights.astype(np.int64))
                                for layer in t]
        return self._values

    def _engine_tables(self, accelerator: str, memory: str) -> None:
        import time
        t0 = time.perf_counter()
        acc = next(a for a in self.workload.accelerators if a.name == accelerator)
        mem = next(m for m in self.workload.memory if m.name == memory)
        engine = make_engine(acc)
        dram = resolve_dram(mem)
        pj_bit = dram.energy_pj_per_bit if dram else 0.0
        values = self._layer_values() if engine.needs_values else None

        def run(li: int, a: int, w: int, outs: Sequence[int]) -> np.ndarray:
            """(len(outs), 3) cycles, energy, dram of layer li at (a, w), averaged over inputs."""
            s = self.specs[li]
            ra, rw = self.ranges[(s.name, "activations")], self.ranges[(s.name, "weights")]
            if values is None:
                counters = [engine.compute(s, a, w)]
            else:
                acts, wts = values[li]
                qa = requantize(acts, REFERENCE_BITS, a, ra.signed)
                qw = requantize(wts, REFERENCE_BITS, w, rw.signed) if engine.needs_weights else None
                counters = [engine.compute(s, a, w, qa[n], qw, act_signed=ra.signed, weight_signed=rw.signed)
                            for n in range(qa.shape[0])]
            res = np.zeros((len(outs), 3))
            for c in counters:
                for k, o in enumerate(outs):
                    m = simulate_memory(s, a, w, o, c.compute_cycles, mem, acc.frequency_mhz)
                    e = layer_energy(c, None if dram is None else m, pj_bit, acc.frequency_mhz, self._energy)
                    res[k] += (m.total_cycles, e["total"], m.dram_bits)
                    self.simulations += 1
            return res / len(counters)

        last = len(self.specs) - 1
        tables = {m: [] for m in ENGINE_METRICS}
        for li, (A, W) in enumerate(zip(self.act_bits, self.weight_bits)):
            out = OUT_BITS_LAST if li == last else REFERENCE_OUT
            t = np.zeros((len(A), len(W), 3))
            for i, a in enumerate(A):
                for j, w in enumerate(W):
                    t[i, j] = run(li, a, w, [out])[0]
            if li > 0:
                # the producer's output write at this layer's activation width, charged here
                p = li - 1
                ref_a = min(self.act_bits[p], key=lambda b: abs(b - REFERENCE_OUT))
                ref_w = min(self.weight_bits[p], key=lambda b: abs(b - REFERENCE_OUT))
                prod = run(p, ref_a, ref_w, [REFERENCE_OUT, *A])
                t += (prod[1:] - prod[0])[:, None, :]
            for k, m in enumerate(ENGINE_METRICS):
                tables[m].append(t[:, :, k])
        for m in ENGINE_METRICS:
            self._tables[Term(m, accelerator, memory).column] = tables[m]
        self.seconds += time.perf_counter() - t0

    # -------------------------------------------------------------------------------- costs

    def layer_costs(self, objective: Union[str, Objective]) -> list[np.ndarray]:
        """Per layer, the additive part of ``objective`` as (A_l, W_l) arrays."""
        obj = self.objective(objective)
        out = [np.zeros((len(A), len(W))) for A, W in zip(self.act_bits, self.weight_bits)]
        for c, term in obj.terms:
            if term.additive:
                for o, t in zip(out, self.table(term)):
                    o += c * t
        return out

    def peak_weight(self, objective: Union[str, Objective]) -> float:
        """Weight of the ``peak-memory`` term in ``objective`` (0 when absent)."""
        return sum(c for c, t in self.objective(objective).terms if t.metric == "peak-memory")

    def live_coefficients(self) -> list[tuple[int, int]]:
        """Per layer l: live bits = in_l * a_l + out_l * a_{l+1} (a_{L} = OUT_BITS_LAST), as (in_l, out_l)."""
        return [(s.activation_count, s.output_count) for s in self.specs]

    def peak(self, act: Sequence[int]) -> float:
        coef = self.live_coefficients()
        nxt = list(act[1:]) + [OUT_BITS_LAST]
        return float(max(i * a + o * b for (i, o), a, b in zip(coef, act, nxt)))

    def index(self, bits: Bits) -> list[tuple[int, int]]:
        """Candidate indices of a profile's widths (an error names a width outside the candidates)."""
        out = []
        for s, A, W in zip(self.specs, self.act_bits, self.weight_bits):
            a, w = bits[s.name]
            if a not in A or w not in W:
                raise SimulatorError(f"layer {s.name}: ({a}, {w}) bits lie outside the candidate widths "
                                     f"{A[0]}..{A[-1]} / {W[0]}..{W[-1]}")
            out.append((A.index(a), W.index(w)))
        return out

    def cost(self, objective: Union[str, Objective], bits: Bits) -> float:
        """The model's cost of a whole profile: the sum of its layers' table entries (plus the
        weighted peak live memory)."""
        obj = self.objective(objective)
        tables = self.layer_costs(obj)
        total = sum(float(t[i, j]) for t, (i, j) in zip(tables, self.index(bits)))
        pw = self.peak_weight(obj)
        if pw:
            total += pw * self.peak([bits[n][0] for n in self.names])
        return total

    def columns(self, objectives: Sequence[Union[str, Objective]], bits: Bits) -> dict[str, float]:
        """The model's cost of ``bits`` for every term of ``objectives``."""
        out = {}
        for o in objectives:
            for _, term in self.objective(o).terms:
                out[term.column] = self.cost(term.column, bits)
        return out


def cost_model_for(workload: Union[Workload, str], bits: Sequence[int] = DEFAULT_BITS, device: Optional[str] = None,
                   value_inputs: Optional[int] = None) -> CostModel:
    """A ``CostModel`` of a workload with trained weights, tensor ranges observed on its validation split."""
    from ..accuracy import evaluator_for
    from ..workload import load_workload
    from .common import tensor_ranges
    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    val = evaluator_for(wl, "val", device=device)
    return CostModel(wl, [val.specs[n] for n in val.layer_names], tensor_ranges(val), bits, value_inputs)


def cost(workload: Union[Workload, str], objective: str, bits: Sequence[int] = DEFAULT_BITS,
         model: Optional[CostModel] = None) -> Callable[[Union[Bits, dict[str, LayerPrecision]]], float]:
    """A plain function ``cost(profile) -> float`` of ``objective`` on ``workload`` for other tools.

    ``profile`` maps each layer to (activation bits, weight bits), or is a precisions dict; the
    value comes from the per-layer cost tables (built once, on the first call's objective terms)."""
    cm = model or cost_model_for(workload, bits)
    obj = cm.objective(objective)
    for _, term in obj.terms:
        cm.table(term)

    def f(profile: Union[Bits, dict[str, LayerPrecision]]) -> float:
        b = {n: (p.activations.bits, p.weights.bits) if isinstance(p, LayerPrecision) else tuple(p)
             for n, p in profile.items()}
        missing = [n for n in cm.names if n not in b]
        if missing:
            raise SimulatorError(f"profile has no bits for layer(s) {', '.join(missing)}")
        return cm.cost(obj, b)
    return f


__all__ = ["CostModel", "cost", "cost_model_for", "fixed_precisions", "requantize", "REFERENCE_BITS",
           "REFERENCE_OUT", "DEFAULT_BITS", "TENSORS"]
