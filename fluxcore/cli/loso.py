"""``fluxcore loso``: leave-one-site-out cross-validation from the command line."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import yaml

from ..config import RunConfig
from ..errors import ConfigError
from ..metrics import skill_summary
from ..runner import run_loso
from ..runstore import load_run
from ._args import csv_list, positive_int

__all__ = ["add_parser", "run", "config_from_args", "parse_param", "TextProgress"]


def _fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "--:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    mnt, sec = divmod(rem, 60)
    return f"{h}:{mnt:02d}:{sec:02d}" if h else f"{mnt:02d}:{sec:02d}"


class TextProgress:
    """Progress callback drawing ``[#####.....] 12/48 ETA 01:05 message`` on a stream.

    On a terminal the bar is redrawn in place with ``\\r``; otherwise (a log file, CI) one
    plain line is written whenever the number of finished folds changes.
    """

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = None

    def __call__(self, done: int, total: int, eta: float | None, message: str) -> None:
        frac = done / total if total else 1.0
        fill = int(round(self.width * frac))
        bar = "#" * fill + "." * (self.width - fill)
        text = f"[{bar}] {done}/{total} ETA {_fmt_seconds(eta)} {message}"
        if self.tty:
            self.stream.write("\r" + text[:120].ljust(120))
            if total and done >= total:
                self.stream.write("\n")
            self.stream.flush()
        elif (done, total) != self._last:
            self.stream.write(f"{done}/{total} folds, ETA {_fmt_seconds(eta)}: {message}\n")
            self.stream.flush()
        self._last = (done, total)


def parse_param(text: str) -> tuple[str, str, Any]:
    """``"lstm.max_epochs=5"`` -> ``("lstm", "max_epochs", 5)`` (values read as YAML)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--param {text!r}: use LEARNER.NAME=VALUE, e.g. lstm.max_epochs=5")
    lhs, value = text.split("=", 1)
    learner, name = lhs.split(".", 1)
    return learner.strip(), name.strip(), _yaml_value(value)


def _yaml_value(text: str) -> Any:
    """``"5"`` -> 5, ``"[7, 30]"`` -> [7, 30], ``"true"`` -> True; text YAML cannot read stays text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """RunConfig from ``--config`` (if any) overridden by the explicit command-line options."""
    d = RunConfig.from_file(args.config).to_dict() if args.config else {}
    for key in ("data", "learners", "targets", "sites", "zones", "pool", "seed", "strategy", "sites_table"):
        v = getattr(args, key, None)
        if v is not None:
            d[key] = v
    if args.param:
        params = d.setdefault("params", {}) or {}
        for text in args.param:
            learner, name, value = parse_param(text)
            params.setdefault(learner, {})[name] = value
        d["params"] = params
    if getattr(args, "pretrain", None):
        pre = dict(d.get("pretrain") or {})
        for text in args.pretrain:
            if "=" not in text:
                raise ConfigError(f"--pretrain {text!r}: use NAME=VALUE, e.g. source=processmodel or epochs=3")
            name, value = text.split("=", 1)
            pre[name.strip()] = _yaml_value(value)
        d["pretrain"] = pre
    d.setdefault("data", "demo")
    return RunConfig.from_dict(d, source=args.config or "command line")


def run(args: argparse.Namespace) -> int:
    """``fluxcore loso``: run (or resume, or fetch) a run; prints the run folder last."""
    cfg = config_from_args(args)
    progress = None if args.quiet else TextProgress(sys.stderr)
    run_dir = run_loso(cfg, runs_dir=args.runs_dir, jobs=args.jobs, scheduler=args.scheduler,
                       progress=progress)
    res = load_run(run_dir)
    if not args.quiet:
        for r in skill_summary(res.metrics).itertuples(index=False):
            print(f"{r.learner:>12s} {r.target:<4s} sites {r.n_sites:4d}  median R2 {r.R2_median:7.3f}  "
                  f"median r2 {r.r2_median:6.3f}  mean RMSE {r.RMSE_mean:6.3f}")
    print(run_dir)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fluxcore loso``."""
    p = sub.add_parser("loso", help="leave-one-site-out cross-validation (prints the run folder last)")
    p.add_argument("--config", default=None, help="YAML/TOML/JSON run config; options below override it")
    p.add_argument("--data", default=None, help="'demo', a folder, or a tidy CSV/Parquet file (default demo)")
    p.add_argument("--sites-table", default=None, metavar="CSV",
                   help="site table (SITE_ID, LAT, LON, IGBP, ARIDITY_INDEX, ...) for data without one, "
                        "e.g. a folder of official daily files without sites.csv (config key sites_table)")
    p.add_argument("--learners", type=csv_list, default=None, help="comma list (default lstm,rf,svm,mlr); fuzzy variants e.g. lstm_fuzzy")
    p.add_argument("--targets", type=csv_list, default=None, help="comma list (default GPP,ER)")
    p.add_argument("--sites", type=csv_list, default=None, help="test site ids (default all)")
    p.add_argument("--zones", type=csv_list, default=None, help="test-site aridity zones: arid,semi-arid,semi-humid,humid")
    p.add_argument("--pool", choices=["all", "zone"], default=None, help="training pool (default all)")
    p.add_argument("--strategy", choices=["fast", "per-fold"], default=None,
                   help="fast: all folds of mlr/rf/svm/lstm at once without leakage (default); "
                        "per-fold: one fresh model per fold")
    p.add_argument("--seed", type=int, default=None, help="seed of every learner, 0 to 2**32-1 (default 0)")
    p.add_argument("--param", action="append", default=[], metavar="LEARNER.NAME=VALUE",
                   help="hyperparameter, repeatable: --param lstm.max_epochs=5")
    p.add_argument("--pretrain", action="append", default=[], metavar="NAME=VALUE",
                   help="pre-training stage option, repeatable: --pretrain source=processmodel "
                        "--pretrain epochs=3 (learners that can be fine-tuned)")
    p.add_argument("--jobs", type=positive_int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--scheduler", default=None, help="'local' (Dask LocalCluster) or tcp://HOST:PORT")
    p.add_argument("--runs-dir", default="runs", help="folder of run folders (default ./runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no skill table")
    p.set_defaults(func=run)
