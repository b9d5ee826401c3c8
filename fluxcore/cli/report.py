"""``fluxcore report``: paper report of a finished run (Markdown + CSV, or one HTML file)."""

from __future__ import annotations

import argparse

from ..report import write_report
from ..report_html import write_html_report
from ..sources import load_dataset

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``fluxcore report``: write the paper report of a finished run."""
    dataset = None
    if args.data:
        dataset = load_dataset(args.data)
    if args.html:
        path = write_html_report(args.run_dir, dataset=dataset, out=args.out)
    else:
        path = write_report(args.run_dir, dataset=dataset, out_dir=args.out)
    print(f"report: {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fluxcore report RUN_DIR [--data SRC] [--out PATH] [--html]``."""
    p = sub.add_parser("report", help="paper report of a finished run (Markdown + CSV)")
    p.add_argument("run_dir", help="run folder (runs/<key>)")
    p.add_argument("--data", default=None,
                   help="data source of the run (default: the 'data' field of the run's config.json)")
    p.add_argument("--out", default=None,
                   help="output folder (default: RUN_DIR/report); with --html a file or folder "
                        "(default: RUN_DIR/report/report.html)")
    p.add_argument("--html", action="store_true",
                   help="write one self-contained HTML file (figures inline, works offline) instead of "
                        "Markdown + CSV")
    p.set_defaults(func=run)
