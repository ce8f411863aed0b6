"""Compute engines, by the name an accelerator's ``engine`` field gives them."""
from __future__ import annotations

from ..config import AcceleratorConfig
from ..errors import SimulatorError
from .base import Engine, passes, steps
from .bit_parallel import BitParallelEngine
from .bit_serial import BitSerialEngine, serial_dot
from .bitfusion import BitFusionEngine
from .dynamic import DynamicEngine
from .loom import LoomEngine
from .pragmatic import PragmaticEngine, pragmatic_dot

ENGINES: dict[str, type[Engine]] = {cls.name: cls for cls in (BitParallelEngine, BitSerialEngine, DynamicEngine,
                                                              PragmaticEngine, LoomEngine, BitFusionEngine)}


def make_engine(config: AcceleratorConfig) -> Engine:
    """The engine that models ``config``; an unknown ``engine`` is a user error naming the valid ones."""
    cls = ENGINES.get(config.engine)
    if cls is None:
        raise SimulatorError(f"accelerator {config.name!r}: field 'engine': unknown engine {config.engine!r} "
                             f"(valid: {', '.join(sorted(ENGINES))})")
    return cls(config)


__all__ = ["ENGINES", "Engine", "BitParallelEngine", "BitSerialEngine", "DynamicEngine", "PragmaticEngine",
           "LoomEngine", "BitFusionEngine", "make_engine", "passes", "steps", "serial_dot", "pragmatic_dot"]
