"""Errors fluxcore raises for bad input.

Every error about input data names the file (or folder) and the problem in one sentence,
so that the command-line interface and the dashboard can show it without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class FluxcoreError(Exception):
    """Base class of fluxcore's own errors (shown to users without a traceback)."""


class DataError(FluxcoreError):
    """A data file or folder cannot be used.

    Parameters
    ----------
    path : str or Path or None
        The file or folder at fault.
    problem : str
        What is wrong, in plain words.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ConfigError(FluxcoreError):
    """A run configuration is invalid (unknown learner, target, zone, ...)."""


def check_known_keys(given, known, what: str) -> None:
    """Raise :class:`ConfigError` naming the keys of ``given`` that are not in ``known``.

    ``what`` starts the message, e.g. ``"unknown qc option(s)"``.
    """
    bad = sorted(set(given) - set(known))
    if bad:
        raise ConfigError(f"{what} {bad}; known: {sorted(known)}")
