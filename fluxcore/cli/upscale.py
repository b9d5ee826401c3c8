"""``fluxcore upscale RUN --grid drivers.nc --out fluxes.nc``: map a run's model onto a grid."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..errors import ConfigError, DataError
from ..runstore import is_run_folder, resolve_run_dir
from ..upscale import final_model, grid_totals, upscale
from ._args import positive_int

__all__ = ["add_parser", "run"]


def _run_dir(args: argparse.Namespace) -> Path:
    p = Path(args.run)
    if is_run_folder(p):
        return p
    return resolve_run_dir(args.runs_dir, args.run)


def run(args: argparse.Namespace) -> int:
    """Fit (once) the run's final model, predict every cell and month, write CF NetCDF."""
    run_dir = _run_dir(args)
    from ..runstore import load_run

    learners = load_run(run_dir).config.learners
    learner = args.learner or learners[0]
    if learner not in learners:
        raise ConfigError(f"--learner {learner!r} is not in run {run_dir.name} (learners: {', '.join(learners)})")
    if args.totals:  # checked before the (long) upscaling, like --out
        totals = Path(args.totals)
        if totals.is_dir():
            raise DataError(totals, "is a folder; give a file name for --totals (a CSV file)")
        if not totals.parent.exists():
            raise DataError(totals.parent, "does not exist (folder of the --totals file)")
    t0 = time.perf_counter()
    model = final_model(run_dir, learner, refit=args.refit)
    t1 = time.perf_counter()
    out = upscale(model, args.grid, args.out, chunk_cells=args.chunk_cells, scheduler=args.scheduler,
                  workers=args.workers)
    t2 = time.perf_counter()
    info = {"run": run_dir.name, "learner": learner, "grid": str(args.grid), "out": str(out),
            "synthetic": bool(model.provenance.get("synthetic")),
            "fit_or_load_seconds": round(t1 - t0, 2), "upscale_seconds": round(t2 - t1, 2)}
    if args.totals:
        try:
            tot = grid_totals(out, args.grid)
        except DataError as exc:
            info["totals"] = f"not computed: {exc}"
        else:
            try:
                tot.to_csv(args.totals, index=False)
            except OSError as exc:
                raise DataError(args.totals, f"cannot be written: {exc.strerror or exc}") from None
            info["totals"] = str(args.totals)
    print(json.dumps(info, indent=2))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fluxcore upscale``."""
    u = sub.add_parser("upscale", help="predict every cell and month of a NetCDF grid with a run's model",
                       description="Fit the run's learner on all its sites (stored in the run folder, once), "
                                   "predict every cell and month of --grid, write CF NetCDF to --out. "
                                   "Grid layout: docs/regional.md.")
    u.add_argument("run", help="run folder, or run key inside --runs-dir")
    u.add_argument("--grid", required=True, help="drivers NetCDF (time, lat, lon) or (time, cell)")
    u.add_argument("--out", required=True, help="output NetCDF file")
    u.add_argument("--learner", default=None, help="learner of the run (default: the run's first)")
    u.add_argument("--runs-dir", default="runs")
    u.add_argument("--refit", action="store_true", help="refit the final model even when stored")
    u.add_argument("--chunk-cells", type=positive_int, default=20_000, help="cells per Dask block (default 20000)")
    u.add_argument("--scheduler", default=None,
                   help="'threads' (default), 'synchronous', 'local' (local Dask cluster) or tcp://HOST:PORT")
    u.add_argument("--workers", type=positive_int, default=None, help="threads or local workers (default: CPU count)")
    u.add_argument("--totals", default=None, metavar="CSV",
                   help="also write regional totals [PgC yr-1] per month and aridity zone to CSV")
    u.set_defaults(func=run)
