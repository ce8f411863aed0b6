"""The ``formats`` and ``fpga`` subcommands: ``add_parser`` registers both with the CLI.

The studies themselves, with their Python API, are ``simulator.formats_study`` and
``simulator.fpga_study``.
"""
from __future__ import annotations

import argparse

from .format_costs import DEFAULT_POINTS, TEMPLATE_MEMORY
from .formats_study import cmd_formats
from .fpga_study import DEFAULT_BITS, DEFAULT_TARGET, DEFAULT_WIDTHS, cmd_fpga


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``formats`` and ``fpga``; each sets ``func`` to its command."""
    f = subparsers.add_parser(
        "formats", help="accuracy, energy, footprint and area per number format (Hashemi et al., DATE 2017)",
        description="Every layer of the workload's network at each number format, on the core's bit-parallel "
                    "template (same buffers, same DRAM model), normalised to float32. Writes "
                    "<results>/<workload>/formats.csv, .json and .png/.pdf.")
    f.add_argument("workload", help="workload YAML file (accuracy needs the digits input and trained weights)")
    f.add_argument("--formats", default=",".join(DEFAULT_POINTS),
                   help="comma-separated format points: float32, float16, bfloat16, fixedN, pow2-N, binary, "
                        "binary-filter, ternary, ternary-filter, wrpn-N (default: %(default)s)")
    f.add_argument("--dram", default=TEMPLATE_MEMORY.dram, help="DRAM preset behind the buffers, or none "
                                                                "(default: %(default)s)")
    f.add_argument("--no-accuracy", action="store_true", help="costs only")
    f.add_argument("--seed", type=int, default=0, help="seed of WRPN training for wrpn-N points")
    f.add_argument("--epochs", type=int, help="override the training recipe's epochs (wrpn-N points)")
    f.add_argument("--out", help="output folder (default: <results_dir>/<workload name>)")
    f.set_defaults(func=cmd_formats)

    g = subparsers.add_parser(
        "fpga", help="accuracy vs throughput of widened reduced-precision networks on an FPGA (Su et al., ARC 2018)",
        description="For each width multiplier and precision: WRPN quantization-aware training (cached under "
                    "<results>/<workload>/qat/), the FINN-style dataflow engine's throughput on the device and "
                    "the template's energy; the Pareto front of accuracy against frames/s. Writes "
                    "<results>/<workload>/fpga-<device>.csv, .json and .png/.pdf.")
    g.add_argument("workload", help="workload YAML file (accuracy needs the digits input)")
    g.add_argument("--device", default="zynq-7020", help="FPGA preset (zynq-7020, ku115, u250) or a device YAML file "
                                                         "(default: %(default)s)")
    g.add_argument("--widths", default=",".join(f"{w:g}" for w in DEFAULT_WIDTHS),
                   help="width multipliers (default: %(default)s)")
    g.add_argument("--bits", default=",".join(map(str, DEFAULT_BITS)),
                   help="weight = activation bits; 32 is float32 (default: %(default)s)")
    g.add_argument("--act-bits", help=argparse.SUPPRESS)
    g.add_argument("--seeds", default="0", help="training seeds averaged per point (default: %(default)s)")
    g.add_argument("--epochs", type=int, help="override the training recipe's epochs")
    g.add_argument("--target", type=float, default=DEFAULT_TARGET,
                   help="accuracy target of the summary line (default: %(default)s)")
    g.add_argument("--no-accuracy", action="store_true", help="throughput and energy only (no training)")
    g.add_argument("--out", help="output folder (default: <results_dir>/<workload name>)")
    g.set_defaults(func=cmd_fpga)
