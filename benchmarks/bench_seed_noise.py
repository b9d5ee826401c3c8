"""Seed noise of the naive-loop comparison: how far two seeds of the *same* computation differ.

``bench_speed.py`` compares fluxcore's fast leave-one-site-out with a naive per-fold loop on a
fixed 24-site subset by the median per-site R² (tolerance 0.01). Both sides are random
(bootstrap rows, feature subsets, initial weights). This script runs, for each seed, one
learner's fast run on all sites and its naive per-fold run on the same 24-site subset as
``bench_speed.py`` (``subset_sites(ds, 24, 0)``), then reports the subset medians and three
kinds of differences:

* naive seed a vs naive seed b: the reproducibility of the reference itself;
* fast seed s vs naive seed s: the comparison ``bench_speed.py`` makes (seed-matched);
* fast seed a vs fast seed b.

Each difference is given as the difference of the two subset medians (what the tolerance is
about) and as the median of the per-site paired differences.

Runs are stored in ``--runs-dir``; a run whose configuration is already stored there complete
is reloaded, not recomputed (``fluxcore.loso.run_loso``).

Usage::

    python benchmarks/bench_seed_noise.py --learner rf --seeds 0,1 --runs-dir /tmp/seednoise \\
        --out benchmarks/out/seed_noise.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_speed import DEFAULT_DATA, _f, paired_r2, subset_sites  # noqa: E402

from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402
from fluxcore.sources import load_dataset  # noqa: E402


def _by_target(metrics: pd.DataFrame, learner: str, sites: list[str]) -> dict[str, pd.DataFrame]:
    """Metrics rows of one learner on ``sites``, split by target."""
    m = metrics[(metrics["learner"] == learner) & metrics["SITE_ID"].isin(sites)]
    return {str(t): g for t, g in m.groupby("target")}


def subset_medians(metrics: pd.DataFrame, learner: str, sites: list[str]) -> dict[str, float | None]:
    """Median per-site R² of one learner on ``sites``, per target."""
    return {t: _f(g["R2"].median()) for t, g in _by_target(metrics, learner, sites).items()}


def compare(a: pd.DataFrame, b: pd.DataFrame, learner: str, sites: list[str]) -> dict[str, dict]:
    """Run ``b`` against run ``a`` on ``sites``, per target.

    Returns, per target, ``median_b_minus_median_a`` (the quantity the 0.01 tolerance is
    about) and the per-site paired differences b - a (:func:`bench_speed.paired_r2`).
    """
    ga, gb = _by_target(a, learner, sites), _by_target(b, learner, sites)
    out = {}
    for t in sorted(set(ga) & set(gb)):
        ma, mb = _f(ga[t]["R2"].median()), _f(gb[t]["R2"].median())
        diff = None if ma is None or mb is None else _f(mb - ma)
        out[t] = {"median_b_minus_median_a": diff, "paired_b_minus_a": paired_r2(ga[t], gb[t])}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--learner", default="rf")
    ap.add_argument("--targets", default="GPP,ER")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--naive-sites", type=int, default=24)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs-dir", required=True)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "seed_noise.json"))
    args = ap.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s]
    targets = [s for s in args.targets.split(",") if s]
    ds = load_dataset(args.data)
    subset = subset_sites(ds, args.naive_sites, 0)  # bench_speed's fixed subset
    result: dict = {"workload": {"data": args.data, "learner": args.learner, "targets": targets,
                                 "seeds": seeds, "subset": subset, "jobs": args.jobs,
                                 "fingerprint": ds.fingerprint()},
                    "environment": environment(), "runs": {}}
    metrics: dict[tuple[str, int], pd.DataFrame] = {}
    for seed in seeds:
        for kind, extra in (("fast", {}), ("naive", {"sites": subset, "strategy": "per-fold"})):
            cfg = RunConfig(data=args.data, learners=[args.learner], targets=targets, seed=seed, **extra)
            t0 = time.perf_counter()
            run_dir = run_loso(cfg, dataset=ds, runs_dir=args.runs_dir, jobs=args.jobs)
            res = load_run(run_dir)
            metrics[(kind, seed)] = res.metrics
            result["runs"][f"{kind}/seed{seed}"] = {
                "run_dir": str(run_dir), "seconds_this_call": round(time.perf_counter() - t0, 1),
                "git_commit": res.manifest.get("git_commit"),
                "subset_median_R2": subset_medians(res.metrics, args.learner, subset)}
            print(json.dumps({f"{kind}/seed{seed}": result["runs"][f"{kind}/seed{seed}"]["subset_median_R2"]}),
                  flush=True)

    comparisons: dict[str, dict] = {}
    for a, b in itertools.combinations(seeds, 2):
        comparisons[f"naive seed{b} vs naive seed{a}"] = compare(metrics[("naive", a)], metrics[("naive", b)],
                                                                 args.learner, subset)
        comparisons[f"fast seed{b} vs fast seed{a}"] = compare(metrics[("fast", a)], metrics[("fast", b)],
                                                               args.learner, subset)
    for s in seeds:
        comparisons[f"fast seed{s} vs naive seed{s}"] = compare(metrics[("naive", s)], metrics[("fast", s)],
                                                                args.learner, subset)
    result["comparisons"] = comparisons
    naive_spread = {t: _f(np.ptp([result["runs"][f"naive/seed{s}"]["subset_median_R2"].get(t, np.nan)
                                  for s in seeds])) for t in targets}
    result["naive_subset_median_range_over_seeds"] = naive_spread
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({"naive_subset_median_range_over_seeds": naive_spread}, indent=2))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
