"""Tree builders side by side (issue 21): seconds per tree and hold-out skill by number of trees.

The fast forest of workload W grows 2,000 trees, each on a bootstrap sample of 10 % of the
training rows (about 33,000 rows x 42 features on FLUXNET2015). This script grows such trees
on the real daily data for a seeded hold-out of ``--holdout`` towers (trained on all other
towers, no hold-out row ever seen) with several tree builders and reports, per builder and
target:

* CPU seconds per tree (``time.process_time``, one thread);
* the median and mean per-site R² (1 - SSE/SST) of the hold-out towers when the first 10, 30,
  60 and 100 trees are averaged (one growth, cumulative averages), over all hold-out towers,
  over those of one aridity zone (``--zone``, all of the zone's towers are held out) and
  over the others, and the per-site R² after all trees.

Builders: ``exact`` (scikit-learn's CART, best threshold, ``max_features=0.5``: the forest
before issue 21), ``random`` (one random threshold per candidate feature: extremely randomized
trees, ``max_features=1.0``, the default since issue 21), ``random_half``
(``max_features=0.5``), and, when LightGBM is installed, ``histogram`` (one LightGBM tree,
255 bins, same leaf size, ``feature_fraction_bynode=0.5``; timed on 10 trees, binning
included). Missing predictors are imputed by the training means.

Usage::

    python benchmarks/bench_rf_splitter.py --out benchmarks/results/rf_splitter.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_speed import DEFAULT_DATA  # noqa: E402
from benchio import write_json  # noqa: E402

from fluxcore.features import build_features  # noqa: E402
from fluxcore.metrics import r2_score  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402
from fluxcore.sources import load_dataset  # noqa: E402

BUILDERS = {"exact": {"splitter": "best", "max_features": 0.5},
            "random": {"splitter": "random", "max_features": 1.0},
            "random_half": {"splitter": "random", "max_features": 0.5}}
CHECKPOINTS = (10, 30, 60, 100)


def site_r2(y: np.ndarray, p: np.ndarray, sites: np.ndarray) -> dict[str, float]:
    """R² (:func:`fluxcore.metrics.r2_score`) of each site with at least 10 finite values."""
    out = {}
    for s in np.unique(sites):
        k = (sites == s) & np.isfinite(y)
        if k.sum() >= 10 and np.isfinite(r2 := r2_score(y[k], p[k])):
            out[str(s)] = r2
    return out


def lightgbm_tree(X: np.ndarray, y: np.ndarray, seed: int):
    """One LightGBM regression tree grown like a forest tree (leaf means, no shrinkage)."""
    import lightgbm as lgb

    params = {"objective": "regression", "num_leaves": max(2, len(y) // 5), "min_data_in_leaf": 5,
              "min_sum_hessian_in_leaf": 0.0, "min_data_in_bin": 1, "lambda_l2": 0.0, "min_gain_to_split": 0.0,
              "feature_fraction_bynode": 0.5, "learning_rate": 1.0, "max_bin": 255, "num_threads": 1,
              "seed": seed, "deterministic": True, "verbosity": -1, "feature_pre_filter": False,
              "histogram_pool_size": 64.0, "force_col_wise": True}
    data = lgb.Dataset(X, y, params={"max_bin": 255, "min_data_in_bin": 1, "verbosity": -1,
                                     "feature_pre_filter": False})
    return lgb.train(params, data, num_boost_round=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--holdout", type=int, default=40, help="hold-out towers (the zone's and random others)")
    ap.add_argument("--zone", default="arid", help="aridity zone whose towers are all held out ('' for none)")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--max-samples", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "rf_splitter.json"))
    args = ap.parse_args(argv)
    from sklearn.tree import DecisionTreeRegressor

    ds = load_dataset(args.data)
    ft = build_features(ds)
    X = ft.X.to_numpy(dtype=np.float32)
    Y = ft.y.to_numpy(dtype=float)
    sites = np.asarray(ft.sites).astype(str)
    rng = np.random.default_rng(args.seed)
    zone_sites = np.unique(sites[np.asarray(ft.zones) == args.zone]) if args.zone else np.array([], dtype=str)
    others = rng.choice(np.setdiff1d(np.unique(sites), zone_sites), size=max(0, args.holdout - len(zone_sites)),
                        replace=False)
    held = np.r_[zone_sites, others]
    test = np.isin(sites, held)
    mu = np.nanmean(X[~test], axis=0)  # training means only
    X = np.where(np.isnan(X), mu, X).astype(np.float32)
    result: dict = {"workload": {"data": args.data, "n_site_days": int(len(X)), "n_features": int(X.shape[1]),
                                 "holdout_towers": sorted(held.tolist()), "zone": args.zone,
                                 "zone_towers": sorted(zone_sites.tolist()), "trees": args.trees,
                                 "max_samples": args.max_samples, "seed": args.seed,
                                 "fingerprint": ds.fingerprint()},
                    "machine": {"note": args.note, "cpu_count": os.cpu_count(),
                                "load_average_start": [round(x, 2) for x in os.getloadavg()]},
                    "environment": environment(), "builders": {}}
    for name, kw in BUILDERS.items():
        result["builders"][name] = {"settings": kw}
    for j, target in enumerate(ft.y.columns):
        rows = np.flatnonzero(~test & np.isfinite(Y[:, j]))
        k = int(round(args.max_samples * len(rows)))
        result["workload"][f"rows_per_tree_{target}"] = k
        for name, kw in BUILDERS.items():
            pred = np.zeros(int(test.sum()))
            cpu = 0.0
            by_trees = {}
            for i in range(args.trees):
                r = np.random.default_rng(1000 * args.seed + i)
                pick = rows[r.integers(0, len(rows), size=k)]
                t0 = time.process_time()
                tree = DecisionTreeRegressor(min_samples_leaf=5, random_state=i, **kw).fit(X[pick], Y[pick, j])
                cpu += time.process_time() - t0
                pred += tree.predict(X[test])
                if i + 1 in CHECKPOINTS:
                    r2 = site_r2(Y[test, j], pred / (i + 1), sites[test])
                    in_zone = np.isin(np.array(list(r2)), zone_sites)
                    vals = np.array(list(r2.values()))
                    by_trees[str(i + 1)] = {"median_R2": round(float(np.median(vals)), 4),
                                            "mean_R2": round(float(np.mean(vals)), 4), "n_sites": int(len(vals)),
                                            "median_R2_zone": (round(float(np.median(vals[in_zone])), 4)
                                                               if in_zone.any() else None),
                                            "median_R2_others": (round(float(np.median(vals[~in_zone])), 4)
                                                                 if (~in_zone).any() else None)}
            result["builders"][name][target] = {"cpu_seconds_per_tree": round(cpu / args.trees, 4),
                                                "skill_by_trees": by_trees,
                                                "site_R2": {k: round(float(v), 4) for k, v in r2.items()}}
            print(name, target, result["builders"][name][target], flush=True)
        try:
            import lightgbm  # noqa: F401
        except ImportError:
            result["builders"]["histogram"] = {"skipped": "lightgbm is not installed"}
            continue
        cpu = 0.0
        for i in range(10):
            r = np.random.default_rng(1000 * args.seed + i)
            pick = rows[r.integers(0, len(rows), size=k)]
            t0 = time.process_time()
            lightgbm_tree(X[pick], Y[pick, j], i)
            cpu += time.process_time() - t0
        result["builders"].setdefault("histogram", {"settings": "LightGBM, 255 bins, binning included"})
        result["builders"]["histogram"][target] = {"cpu_seconds_per_tree": round(cpu / 10, 4)}
        print("histogram", target, result["builders"]["histogram"][target], flush=True)
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
