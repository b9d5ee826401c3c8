"""``fluxcore runs``: list stored runs (or delete one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..runstore import delete_run, list_runs

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``fluxcore runs``: list stored runs, or delete one."""
    if args.delete:
        target = Path(args.runs_dir) / args.delete
        delete_run(target)
        print(f"deleted {target}")
        return 0
    df = list_runs(args.runs_dir)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    elif df.empty:
        print(f"no runs in {args.runs_dir}")
    else:
        cols = ["key", "created", "status", "data", "learners", "targets", "n_sites", "folds_done", "n_folds"]
        print(df[cols].to_string(index=False))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fluxcore runs``."""
    r = sub.add_parser("runs", help="list stored runs (or delete one)")
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--delete", default=None, metavar="KEY", help="delete the run folder KEY")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run)
