"""``fluxcore runs``: list stored runs, delete one, or repair one."""

from __future__ import annotations

import argparse

from ..runstore import delete_run, list_runs, repair_run, resolve_run_dir

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``fluxcore runs``: list stored runs, or delete / repair one (inside ``--runs-dir`` only)."""
    if args.delete:
        target = resolve_run_dir(args.runs_dir, args.delete)
        delete_run(target, runs_dir=args.runs_dir)
        print(f"deleted {target}")
        return 0
    if args.repair:
        target = resolve_run_dir(args.runs_dir, args.repair)
        rebuilt = repair_run(target)
        print(f"repaired {target}: rebuilt {', '.join(rebuilt)}" if rebuilt else f"{target}: nothing to repair")
        return 0
    df = list_runs(args.runs_dir)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    elif df.empty:
        print(f"no runs in {args.runs_dir}")
    else:
        cols = ["key", "created", "status", "data", "learners", "targets", "n_sites", "folds_done", "n_folds"]
        print(df[cols].to_string(index=False))
        if "problem" in df.columns:
            for r in df[df["status"] == "damaged"].itertuples(index=False):
                print(f"{r.key}: {r.problem}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fluxcore runs``."""
    r = sub.add_parser("runs", help="list stored runs (or delete or repair one)")
    r.add_argument("--runs-dir", default="runs")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--delete", default=None, metavar="KEY", help="delete the run folder KEY (inside --runs-dir)")
    g.add_argument("--repair", default=None, metavar="KEY",
                   help="rebuild the damaged result files of run KEY from its fold files")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run)
