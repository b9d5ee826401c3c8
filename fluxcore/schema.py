"""Typed options: every option of a configuration dataclass declares its type and range.

An option is a dataclass field made with :func:`option`, whose *spec* (made by the builders
below: :data:`FLAG`, :func:`integer`, :func:`number`, :func:`names`, ...) is a pydantic type
with constraints plus the plain-words description used in messages. :func:`problems` checks
values against the specs of a class and returns one line per bad option, naming the key path
and the problem, e.g. ``features.rolling_windows: must be a list of integers >= 1, got 'x'``.

The checks are strict where a lax reading would hide a mistake: ``"no"`` is not a boolean,
``True`` is not an integer, ``7.5`` is not an integer, ``nan`` and ``inf`` are not numbers,
``"x"`` is not a list. Semantic checks (names known to a registry, order of a pair) are left
to the classes, which add their own lines.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass
from typing import Annotated, Any, get_args

import numpy as np
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

from .errors import ConfigError

__all__ = ["Expect", "option", "FLAG", "integer", "number", "text", "path", "names", "integers",
           "mapping", "problems", "show", "raise_problems"]

_METADATA_KEY = "fluxcore_spec"


@dataclass(frozen=True)
class Expect:
    """What a valid value is, in words completing "must be ..." (e.g. ``"an integer >= 0"``)."""

    text: str


def option(default: Any = dataclasses.MISSING, spec: Any = None, *, factory: Any = dataclasses.MISSING):
    """A dataclass field with a type spec (``default`` or ``factory`` as in :func:`dataclasses.field`)."""
    return dataclasses.field(default=default, default_factory=factory, metadata={_METADATA_KEY: spec})


def _spec(tp: Any, words: str, optional: bool = False) -> Any:
    if optional:
        return Annotated[tp | None, Expect(words + " or null")]
    return Annotated[tp, Expect(words)]


def _bound_words(ge=None, gt=None, le=None, lt=None) -> str:
    parts = [f"{op} {v}" for op, v in ((">=", ge), (">", gt), ("<=", le), ("<", lt)) if v is not None]
    if len(parts) == 2 and ge is not None and le is not None:
        return f"between {ge} and {le}"
    return " and ".join(parts)


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (``np.int64(3)`` is the integer 3)."""
    return v.item() if isinstance(v, np.generic) else v


_Plain = BeforeValidator(_plain)

#: true or false (not ``"no"``, not ``1``).
FLAG = _spec(Annotated[StrictBool, _Plain], "true or false")


def integer(*, ge: int | None = None, le: int | None = None, optional: bool = False) -> Any:
    """An integer (not a boolean, not ``7.0``) within the bounds."""
    words = " ".join(["an integer", _bound_words(ge=ge, le=le)]).strip()
    return _spec(Annotated[StrictInt, Field(ge=ge, le=le), _Plain], words, optional)


def number(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
           optional: bool = False) -> Any:
    """A finite number (int or float, not a boolean, not nan/inf) within the bounds."""
    words = " ".join(["a finite number", _bound_words(ge=ge, gt=gt, le=le)]).strip()
    return _spec(Annotated[float, Field(strict=True, allow_inf_nan=False, ge=ge, gt=gt, le=le), _Plain],
                 words, optional)


def _not_blank(v: Any) -> Any:
    s = os.fspath(v)
    if not s.strip():
        raise ValueError("blank")
    if "\x00" in s:
        raise ValueError("NUL character")
    return v


def text(words: str = "a non-empty text", *, optional: bool = False) -> Any:
    """A non-blank string."""
    return _spec(Annotated[StrictStr, AfterValidator(_not_blank)], words, optional)


def path(words: str = "a path (text)", *, optional: bool = False) -> Any:
    """A file or folder path: a non-blank string or :class:`os.PathLike` (existence not checked)."""
    return _spec(Annotated[StrictStr | os.PathLike, AfterValidator(_not_blank)], words, optional)


def names(words: str = "a list of names (text)", *, optional: bool = False) -> Any:
    """A list (or tuple) of non-blank strings."""
    return _spec(Annotated[list[Annotated[StrictStr, AfterValidator(_not_blank)]], Field(strict=True)],
                 words, optional)


def integers(*, ge: int = 1, le: int | None = None) -> Any:
    """A list (or tuple) of integers within the bounds."""
    return _spec(Annotated[list[Annotated[StrictInt, Field(ge=ge, le=le), _Plain]], Field(strict=True)],
                 f"a list of integers {_bound_words(ge=ge, le=le)}")


def mapping(words: str = "a mapping {name: value}", *, nested: bool = False, optional: bool = False) -> Any:
    """A mapping with text keys; ``nested``: whose values are mappings too."""
    value = Annotated[dict[StrictStr, Any], Field(strict=True)] if nested else Any
    return _spec(Annotated[dict[StrictStr, value], Field(strict=True)], words, optional)


@functools.cache
def _model(cls: type) -> tuple[Any, dict[str, str]]:
    specs = {f.name: f.metadata[_METADATA_KEY] for f in dataclasses.fields(cls)
             if f.metadata.get(_METADATA_KEY) is not None}
    words = {name: next(m.text for m in get_args(spec)[1:] if isinstance(m, Expect)) for name, spec in specs.items()}
    model = create_model(f"{cls.__name__}Schema", __config__=ConfigDict(arbitrary_types_allowed=True),
                         **{name: (spec, None) for name, spec in specs.items()})
    return model, words


def show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value, shortened to about ``limit`` characters for a one-line message."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    try:
        s = repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still shown
        s = f"<{type(value).__name__}>"
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def problems(cls: type, values: Any, prefix: str = "") -> list[str]:
    """One line per option of ``cls`` whose value in ``values`` does not fit its spec.

    Parameters
    ----------
    cls : dataclass type
        Class whose fields were made with :func:`option`.
    values : dict or instance of ``cls``
        The values to check (missing keys are not checked: the class default applies).
    prefix : str
        Key path prepended to the option name, e.g. ``"features."``.

    Returns
    -------
    list of str
        ``"<prefix><name>: must be <words>, got <value>"`` lines, in field order.
    """
    model, words = _model(cls)
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        values = {name: getattr(values, name) for name in words}
    given = {k: v for k, v in values.items() if k in words}
    as_lists = {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}
    try:
        model.model_validate(as_lists)
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        return [f"{prefix}{name}: must be {words[name]}, got {show(given[name])}"
                for name in words if name in bad]
    return []


def raise_problems(lines: list[str], source: str | None = None) -> None:
    """Raise one :class:`ConfigError` listing ``lines`` (one per line, each prefixed by ``source``)."""
    if lines:
        lines = list(dict.fromkeys(lines))
        raise ConfigError("\n".join(f"{source}: {ln}" if source else ln for ln in lines))
