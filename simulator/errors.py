"""The one error type shown to users: a single line naming the file, field or layer at fault."""
from __future__ import annotations


class SimulatorError(Exception):
    """Bad input or a broken file. The CLI prints ``error: <message>`` and exits with code 2."""

    exit_code = 2
