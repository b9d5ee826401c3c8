"""One tree of the site-level out-of-bag forest, three ways: compiled lazy, NumPy lazy, scikit-learn.

Usage::

    python benchmarks/bench_lazytree.py --out benchmarks/results/lazytree_DATE.json

On FLUXNET2015 (``--data``), for two test groups (three arid towers; 20 random towers, as a W
group) and two sample sizes (18,000 and 36,000 rows: 5 % and 10 % of the pool), it grows
``--trees`` trees per builder on the same bootstrap samples of the other towers (missing
predictors filled with the training means, GPP, the learner's defaults ``min_samples_leaf=5``,
``max_features=0.5``) and records the seconds per tree (median) of

* ``lazy_numba``: :func:`fluxcore.learners.lazytree.lazy_tree_predict_sample`, compiled
  kernel (compilation excluded: one warm-up tree first);
* ``lazy_numpy``: the same tree with ``engine="numpy"``;
* ``sklearn``: :class:`sklearn.tree.DecisionTreeRegressor` fit on the sample + predict.

It also records how far the predictions of the lazy trees and scikit-learn's agree with
every feature tried (``max_features=None``, no random draw): the share of test rows with equal
predictions, next to the same share between two scikit-learn trees that differ only in
``random_state`` (which breaks exact ties between features differently).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchio import write_json  # noqa: E402

from fluxcore.learners.lazytree import lazy_tree_predict_sample  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402


def _arrays(data: str):
    """Predictors of the default features (float32, C order), GPP, site per row and the arid
    site ids of the real data."""
    from fluxcore.features import build_features
    from fluxcore.sources import load_dataset

    ds = load_dataset(data)
    ft = build_features(ds)
    X = np.ascontiguousarray(np.asarray(ft.X, dtype=np.float32))
    y = np.asarray(ft.y["GPP"], dtype=float)
    sites = np.asarray(ft.sites).astype(str)
    zone = ds.sites.loc[ds.sites.index.isin(ds.site_ids), "ARIDITY_ZONE"]
    return X, y, sites, sorted(zone.index[zone == "arid"].astype(str))


def time_group(X, y, sites, tests, n_rows, n_trees, seed) -> dict:
    """Seconds per tree of each builder for one test group and sample size."""
    from sklearn.tree import DecisionTreeRegressor

    miss = np.isnan(X)
    te = np.isin(sites, tests)
    rows = np.flatnonzero(np.isfinite(y) & ~te)
    fill = np.nanmean(np.where(miss[rows], np.nan, X[rows]), axis=0).astype(np.float32)
    xt = np.where(miss[te], fill, X[te])
    rng = np.random.default_rng(seed)
    picks = [np.sort(rows[rng.integers(0, len(rows), n_rows)]) for _ in range(n_trees)]
    lazy_tree_predict_sample(X, miss, fill, picks[0][:2000], y[picks[0][:2000]], xt[:10],
                             rng=np.random.default_rng(0))  # compile / load the kernel
    out: dict = {"test_sites": list(tests), "test_rows": int(te.sum()), "sample_rows": n_rows, "trees": n_trees}
    secs: dict[str, list[float]] = {"lazy_numba": [], "lazy_numpy": [], "sklearn": []}
    for j, pick in enumerate(picks):
        for engine in ("numba", "numpy"):
            t0 = time.perf_counter()
            lazy_tree_predict_sample(X, miss, fill, pick, y[pick], xt, rng=np.random.default_rng(j), engine=engine)
            secs[f"lazy_{engine}"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        DecisionTreeRegressor(min_samples_leaf=5, max_features=0.5, random_state=j).fit(
            np.where(miss[pick], fill, X[pick]), y[pick]).predict(xt)
        secs["sklearn"].append(time.perf_counter() - t0)
    out["seconds_per_tree_median"] = {k: round(float(np.median(v)), 4) for k, v in secs.items()}
    out["seconds_per_tree_range"] = {k: [round(min(v), 4), round(max(v), 4)] for k, v in secs.items()}
    # agreement with every feature tried (no random draw; only exact ties differ)
    pick = picks[0]
    xs = np.where(miss[pick], fill, X[pick])
    lz = lazy_tree_predict_sample(X, miss, fill, pick, y[pick], xt, max_features=None, rng=np.random.default_rng(0))[:, 0]
    sk = [DecisionTreeRegressor(min_samples_leaf=5, random_state=r).fit(xs, y[pick]).predict(xt) for r in (0, 1)]
    out["equal_share_all_features"] = {"lazy_vs_sklearn": round(float(np.isclose(lz, sk[0]).mean()), 4),
                                       "sklearn_vs_sklearn_other_seed": round(float(np.isclose(sk[0], sk[1]).mean()), 4)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fluxnet2015"))
    ap.add_argument("--trees", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    X, y, sites, arid = _arrays(args.data)
    rng = np.random.default_rng(args.seed)
    groups = {"arid_3": arid[0::4][:3] if arid else list(rng.choice(np.unique(sites), 3, replace=False)),
              "random_20": sorted(rng.choice(np.unique(sites), 20, replace=False).tolist())}
    res = {"workload": {"data": args.data, "trees": args.trees, "seed": args.seed, "target": "GPP",
                        "min_samples_leaf": 5, "max_features": 0.5},
           "machine": {"note": args.note}, "cases": []}
    res["environment"] = environment()
    for name, tests in groups.items():
        for n_rows in (18000, 36000):
            case = {"group": name, **time_group(X, y, sites, tests, n_rows, args.trees, args.seed)}
            print(name, n_rows, case["seconds_per_tree_median"], case["equal_share_all_features"], flush=True)
            res["cases"].append(case)
    write_json(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
