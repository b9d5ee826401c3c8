"""``fluxcore report``: paper report of a finished run (Markdown + CSV)."""

from __future__ import annotations

import argparse

from ..report import write_report
from ..sources import load_dataset

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``fluxcore report``: write the paper report of a finished run."""
    dataset = None
    if args.data:
        dataset = load_dataset(args.data)
    path = write_report(args.run_dir, dataset=dataset, out_dir=args.out)
    print(f"report: {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fluxcore report RUN_DIR [--data SRC] [--out DIR]``."""
    p = sub.add_parser("report", help="paper report of a finished run (Markdown + CSV)")
    p.add_argument("run_dir", help="run folder (runs/<key>)")
    p.add_argument("--data", default=None,
                   help="data source of the run (default: the 'data' field of the run's config.json)")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/report)")
    p.set_defaults(func=run)
