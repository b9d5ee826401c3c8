"""Allowed values of hyperparameters and options (scikit-learn style parameter constraints).

Learners (:mod:`fluxcore.learners.base`) and fast strategies (:mod:`fluxcore.strategies`)
declare ``_parameter_constraints`` / ``option_constraints`` as ``{name: [allowed, ...]}``
with the classes below (``None`` in the list allows ``None``); :func:`check_constraints`
turns the first violation into one :class:`~fluxcore.errors.ConfigError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["Interval", "Options", "Pattern", "Boolean", "Seed", "check_constraints", "describe"]


class Interval:
    """Integers (``kind=int``) or real numbers (``kind=float``) between ``low`` and ``high``.

    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``None`` bounds are
    open-ended. Booleans are not numbers here, and real numbers must be finite.
    """

    def __init__(self, kind: type, low: float | None = None, high: float | None = None,
                 closed: str = "both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def ok(self, v: Any) -> bool:
        if isinstance(v, (bool, np.bool_)):
            return False
        if self.kind is int:
            if not isinstance(v, (int, np.integer)):
                return False
        elif not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            return False
        if self.low is not None and (v < self.low or (v == self.low and self.closed in ("right", "neither"))):
            return False
        return not (self.high is not None
                    and (v > self.high or (v == self.high and self.closed in ("left", "neither"))))

    def __str__(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            lb = "[" if self.closed in ("both", "left") else "("
            rb = "]" if self.closed in ("both", "right") else ")"
            return f"{what} in {lb}{self.low}, {self.high}{rb}"
        if self.low is not None:
            return f"{what} {'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        if self.high is not None:
            return f"{what} {'<=' if self.closed in ('both', 'right') else '<'} {self.high}"
        return what


class Options:
    """One of a few strings."""

    def __init__(self, *values: str):
        self.values = values

    def ok(self, v: Any) -> bool:
        return isinstance(v, str) and v in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(x) for x in self.values)


class Pattern:
    """A string matching a regular expression, described in words."""

    def __init__(self, regex: str, description: str):
        self.regex, self.description = re.compile(regex), description

    def ok(self, v: Any) -> bool:
        return isinstance(v, str) and self.regex.fullmatch(v) is not None

    def __str__(self) -> str:
        return self.description


class Boolean:
    """``True`` or ``False``."""

    def ok(self, v: Any) -> bool:
        return isinstance(v, (bool, np.bool_))

    def __str__(self) -> str:
        return "true or false"


class Seed:
    """A ``random_state``: an integer >= 0 or a numpy random generator."""

    def ok(self, v: Any) -> bool:
        return (Interval(int, 0).ok(v)
                or isinstance(v, (np.random.Generator, np.random.RandomState)))

    def __str__(self) -> str:
        return "an integer >= 0"


def describe(allowed: list) -> str:
    """``"an integer >= 1 or None"``: the allowed values in words."""
    words = [("None" if c is None else str(c)) for c in allowed]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def check_constraints(values: Mapping[str, Any], constraints: Mapping[str, list], label: str) -> None:
    """Raise :class:`ConfigError` ``"<label>: <name> must be <allowed>, got <value>"``.

    Only the names present in both ``values`` and ``constraints`` are checked.
    """
    for name, allowed in constraints.items():
        if name not in values:
            continue
        v = values[name]
        if any(v is None if c is None else c.ok(v) for c in allowed):
            continue
        raise ConfigError(f"{label}: {name} must be {describe(allowed)}, got {v!r}")
