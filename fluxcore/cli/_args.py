"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse

__all__ = ["positive_int", "csv_list"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse shows the message as a usage error)."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return v


def csv_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [t.strip() for t in text.split(",") if t.strip()]
