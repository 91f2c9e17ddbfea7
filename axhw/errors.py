"""User-facing errors.

Every mistake a user can make (a bad file, a missing tool, an unknown name) raises
an :class:`AxhwError` subclass whose message says what was wrong, where, and what
to do.  The CLI prints the message and exits with status 2; bugs still raise
normally with a traceback.
"""

from __future__ import annotations

__all__ = [
    "AxhwError",
    "ToolMissingError",
    "VerilogError",
    "CharacterizationError",
    "DatabaseError",
    "SynthesisError",
    "ConfigError",
    "DataError",
    "ArgumentTypeError",
]


class AxhwError(Exception):
    """Base class of every error caused by user input or the user's environment."""


class ToolMissingError(AxhwError):
    """An external program (iverilog, yosys, sta, a C compiler) is not installed."""


class VerilogError(AxhwError):
    """A Verilog source cannot be parsed or does not describe a supported multiplier."""


class CharacterizationError(AxhwError):
    """Simulating a design failed or produced unusable output (X/Z, wrong width)."""


class DatabaseError(AxhwError):
    """A multiplier database entry is missing, stale, corrupt or unknown."""


class SynthesisError(AxhwError):
    """Synthesis, timing or power analysis failed."""


class ConfigError(AxhwError):
    """A layer configuration, search setting or option value is invalid."""


class DataError(AxhwError):
    """A data set or checkpoint cannot be found or read."""


class ArgumentTypeError(ConfigError, TypeError):
    """A Python API argument has the wrong type (e.g. a model name where a ``nn.Module`` is expected).

    Also a :class:`TypeError`, so code that catches the built-in keeps working.
    """
