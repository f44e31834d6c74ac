"""Project exception types: one per kind of failure, each with a message a user can act on.

They live in the lowest package so every layer (hwmodel, netlists, energy, ttfs) can raise them.
"""


class TtfsError(Exception):
    """Base of every error the command line reports as a message instead of a traceback."""


class ConfigError(TtfsError):
    """A config key is unknown, of the wrong type or out of range."""


class DataError(TtfsError):
    """A data file is missing, corrupt or empty."""


class CheckpointError(TtfsError):
    """A run or design folder is missing, incomplete or inconsistent."""


class SimulationError(TtfsError):
    """A circuit simulation could not run (ngspice missing, convergence failure, ...)."""


class FolderInUseError(TtfsError):
    """Another process holds the output folder's lock (infra.folder_lock)."""


class EngineError(SimulationError):
    """The circuit simulator cannot start at all (library missing or not loadable): no image can run."""
