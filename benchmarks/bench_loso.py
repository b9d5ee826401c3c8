"""Benchmark of the leave-one-site-out runner on the real FLUXNET2015 daily data.

Measures, per learner and target, the wall time of a LOSO run through
:func:`fluxcore.loso.run_loso` (features, fits, predictions and run-store writes), the peak
memory of the process (and of worker processes), and per-site skill: median and mean R²
(1 - SSE/SST) and r² (squared Pearson) over all test sites, per aridity zone and for the US
sites (``SITE_ID`` starting ``US-``; Gao et al. 2025 report mean R² 0.72 on them).

Subsets: ``--sites ID,...``, ``--zones arid,...``, ``--n-sites 24 --seed 0`` (random test
sites). By default the training pool of every fold is every other site of the *whole*
dataset (as in the paper); ``--restrict-pool`` limits the dataset itself to the chosen sites
(LOSO among them only: much cheaper, for quick baselines).

Every (learner, target) pair is its own run in a fresh temporary runs folder (unless
``--runs-dir`` is given), so that times are computed, not read from the store.

Examples::

    python benchmarks/bench_loso.py --n-sites 16 --seed 0 --restrict-pool \\
        --learners mlr,rf,svm,lstm --param lstm.max_epochs=3 --out benchmarks/out/loso.json
    python benchmarks/bench_loso.py --learners mlr          # all 204 sites
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fluxcore.cli.loso import parse_param  # noqa: E402
from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.metrics import skill_summary as fluxcore_skill_summary  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402
from fluxcore.variables import ZONES  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"


def _maxrss_mb(who) -> float:
    """Peak resident set size [MiB] (Linux reports KiB, macOS bytes)."""
    r = resource.getrusage(who).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def skill_summary(metrics) -> dict:
    """Median / mean R² and r² (and mean RMSE) over sites of one (learner, target)."""
    def block(m):
        row = fluxcore_skill_summary(m, by=()).iloc[0]
        return {k: (int(row[k]) if k == "n_sites" else _f(row[k])) for k in row.index}

    out = {"overall": block(metrics), "zones": {}}
    for z in ZONES:
        mz = metrics[metrics["zone"] == z]
        if len(mz):
            out["zones"][z] = block(mz)
    us = metrics[metrics["SITE_ID"].astype(str).str.startswith("US-")]
    out["US"] = block(us) if len(us) else None
    return out


def _f(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 4)


def _multi_target(name: str) -> bool:
    from fluxcore.learners import available_learners, make_learner

    return name in available_learners() and bool(getattr(make_learner(name), "multi_target", False))


def choose_sites(ds, sites, zones, n_sites, seed) -> list[str]:
    pool = ds.site_ids
    if sites:
        pool = [s for s in pool if s in set(sites)]
    if zones:
        pool = [s for s in pool if ds.zone_of(s) in set(zones)]
    if n_sites and n_sites < len(pool):
        rng = np.random.default_rng(seed)
        pool = sorted(rng.choice(pool, size=n_sites, replace=False).tolist())
    return pool


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--learners", default="mlr,rf,svm,lstm")
    ap.add_argument("--targets", default="GPP,ER")
    ap.add_argument("--sites", default=None, help="comma list of test sites")
    ap.add_argument("--zones", default=None, help="comma list of test-site zones")
    ap.add_argument("--n-sites", type=int, default=None, help="random subset of this many test sites")
    ap.add_argument("--seed", type=int, default=0, help="seed of the subset and of the learners")
    ap.add_argument("--restrict-pool", action="store_true",
                    help="restrict the dataset to the chosen sites (LOSO among them only)")
    ap.add_argument("--pool", default="all", choices=["all", "zone"])
    ap.add_argument("--param", action="append", default=[], metavar="LEARNER.NAME=VALUE")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--joint-targets", action="store_true", help="same as --per-target never")
    ap.add_argument("--per-target", choices=["auto", "always", "never"], default="auto",
                    help="one run per learner and target (always), per learner (never), or per "
                         "target only for single-target learners (auto, default: multi-target "
                         "learners such as mlr and lstm fit all targets in one model, as in a real run)")
    ap.add_argument("--runs-dir", default=None, help="keep runs here (default: a temporary folder)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "loso.json"))
    args = ap.parse_args(argv)

    from fluxcore.sources import load_dataset

    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    t_load = time.perf_counter() - t0
    csv = lambda s: [x.strip() for x in s.split(",") if x.strip()] if s else None  # noqa: E731
    tests = choose_sites(ds, csv(args.sites), csv(args.zones), args.n_sites, args.seed)
    data = ds.subset(sites=tests) if args.restrict_pool else ds
    learners, targets = csv(args.learners), csv(args.targets)
    params: dict = {}
    for p in args.param:
        lrn, name, value = parse_param(p)
        params.setdefault(lrn, {})[name] = value

    tmp = None
    runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tmp := tempfile.mkdtemp(prefix="bench_loso_"))
    timing: dict = {}
    skill: dict = {}
    runs: dict = {}
    groups = []
    for lrn in learners:
        if args.joint_targets or args.per_target == "never" or (args.per_target == "auto" and _multi_target(lrn)):
            groups.append((lrn, targets))
        else:
            groups += [(lrn, [t]) for t in targets]
    t_all = time.perf_counter()
    for lrn, tgts in groups:
        cfg = RunConfig(data=str(args.data), learners=[lrn], targets=tgts, sites=tests, pool=args.pool,
                        params={lrn: params[lrn]} if lrn in params else {}, seed=args.seed)
        t1 = time.perf_counter()
        run = run_loso(cfg, dataset=data, runs_dir=runs_dir, jobs=args.jobs, scheduler=args.scheduler)
        wall = time.perf_counter() - t1
        res = load_run(run)
        fs = res.manifest.get("fold_seconds", {})
        computed = sum(s.get("folds_computed", 0) for s in res.manifest.get("sessions", []))
        key = "+".join(tgts)
        timing.setdefault(lrn, {})[key] = {
            "wall_s": round(wall, 2), "n_folds": len(fs), "folds_computed_now": computed,
            "fold_s_mean": round(float(np.mean(list(fs.values()))), 3) if fs else None,
            "fold_s_max": round(float(np.max(list(fs.values()))), 3) if fs else None,
        }
        for t in tgts:
            m = res.metrics[(res.metrics["learner"] == lrn) & (res.metrics["target"] == t)]
            skill.setdefault(lrn, {})[t] = skill_summary(m)
        runs.setdefault(lrn, {})[key] = str(run)
        print(f"{lrn:>6s} {key:<7s} {wall:8.1f} s  median R2 "
              + ", ".join(f"{t} {skill[lrn][t]['overall']['R2_median']}" for t in tgts), file=sys.stderr)
    total = time.perf_counter() - t_all

    env = environment()
    out = {
        "benchmark": "loso",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": {"source": str(args.data), "name": ds.name, "fingerprint": ds.fingerprint(),
                    "n_sites": ds.n_sites, "n_site_days": ds.n_site_days, "variables": ds.variables},
        "subset": {"test_sites": tests, "n_test_sites": len(tests), "seed": args.seed,
                   "n_sites_arg": args.n_sites, "zones_arg": csv(args.zones),
                   "training_pool": ("restricted to the test sites" if args.restrict_pool
                                     else f"every other site of the dataset (pool={args.pool})"),
                   "n_pool_sites": data.n_sites, "n_pool_site_days": data.n_site_days,
                   "n_us_test_sites": sum(s.startswith("US-") for s in tests)},
        "config": {"learners": learners, "targets": targets, "params": params, "jobs": args.jobs,
                   "scheduler": args.scheduler, "per_target": "never" if args.joint_targets else args.per_target,
                   "note": "wall_s under key 'GPP+ER' is one run fitting all targets together"},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "packages": env["packages"],
                    "code_version": env["code_version"], "git_commit": env["git_commit"]},
        "timing": {"load_s": round(t_load, 2), "total_s": round(total, 2), "per_learner_target": timing},
        "memory": {"peak_rss_mb_self": round(_maxrss_mb(resource.RUSAGE_SELF), 1),
                   "peak_rss_mb_children": round(_maxrss_mb(resource.RUSAGE_CHILDREN), 1),
                   "note": "ru_maxrss; 'children' is the largest finished child process (with "
                           "--jobs the workers; a forked helper such as git reports the parent's "
                           "size at fork time)"},
        "skill": skill,
        "runs": runs if args.runs_dir else "temporary (deleted)",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(Path(args.out))
    if tmp:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
