"""Command-line interface: ``fluxcore data | loso | runs | report | upscale`` (one module per subcommand).

Errors about input (:class:`fluxcore.errors.FluxcoreError`) are printed as one line on
stderr and the command exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import FluxcoreError
from . import data, loso, report, runs, upscale

__all__ = ["main", "build_parser", "COMMANDS"]

#: The subcommand modules, each with ``add_parser(subparsers)`` (in help order).
COMMANDS = (data, loso, runs, report, upscale)


def build_parser() -> argparse.ArgumentParser:
    """The ``fluxcore`` argument parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="fluxcore",
        description="Data-driven carbon-flux inversion at eddy-covariance towers.",
    )
    parser.add_argument("--version", action="version", version=f"fluxcore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2: bad input, 130: interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FluxcoreError as exc:
        print(f"fluxcore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fluxcore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
