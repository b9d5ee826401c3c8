"""Fast leave-one-site-out for :class:`~fluxcore.learners.rf.RFLearner` (strategy ``rf_site_oob``).

Site-level out-of-bag random forest (approximation, no leakage): in each *round* the test
sites are shuffled into ``n_groups`` groups and one tree is grown per group on the pool
without that group's sites; a site is predicted only by trees that never saw it. After
``trees_per_site`` rounds every site has ``trees_per_site`` out-of-bag trees, each trained on
about ``(1 - 1/n_groups)`` of the sites. Targets whose missing rows differ get one tree each
per group and round, as the per-fold learner then grows one forest per target. Cost:
``n_groups * trees_per_site`` trees (per target group) instead of ``n_sites * n_estimators``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..params import Interval
from ..strategies.base import (
    Pools,
    Strategy,
    prepare_arrays,
    register_strategy,
    split_groups,
    universes,
)
from ._util import mask_groups

__all__ = ["rf_site_oob", "RFSiteOOB"]


def rf_site_oob(
    X: np.ndarray,
    Y: np.ndarray,
    sites: np.ndarray,
    pools: Pools,
    *,
    trees_per_site: int = 100,
    n_groups: int = 10,
    max_samples: float | int = 0.1,
    min_samples_leaf: int = 5,
    max_features: float = 0.5,
    max_depth: int | None = None,
    random_state: int = 0,
    n_jobs: int = 2,
    progress=None,
) -> dict[str, np.ndarray]:
    """Site-level out-of-bag random forest for all folds at once.

    In each of ``trees_per_site`` rounds, the test sites of a universe (a test site together
    with its pool) are shuffled into ``n_groups`` groups; for every group one CART tree
    (Breiman 2001, doi:10.1023/A:1010933404324) is grown on a bootstrap sample of
    ``max_samples`` rows drawn from the universe's sites *outside* the group, with missing
    predictors imputed by that tree's training means. A test site is predicted by the average
    of the trees grown without it: exactly ``trees_per_site`` trees, none of which saw any of its
    rows. With ``n_groups >= number of test sites`` this is the per-fold forest itself.

    Parameters
    ----------
    X, Y, sites, pools
        See the module docstring. Targets with the same finite rows (usually GPP and ER) share
        multi-output trees; a target with its own missing-value pattern gets its own trees,
        grown on its finite rows only, exactly as :class:`fluxcore.learners.rf.RFLearner` does.
    trees_per_site : int
        Out-of-bag trees per test site (the per-fold forest's ``n_estimators``).
    n_groups : int
        Groups per round; each tree is trained without ``1/n_groups`` of the test sites.
    max_samples : float or int
        Rows per tree: a fraction of the training rows or a count (bootstrap).
    min_samples_leaf, max_features, max_depth
        As in :class:`sklearn.tree.DecisionTreeRegressor`.
    random_state : int
        Seed; the result is deterministic for a fixed seed whatever ``n_jobs``.
    n_jobs : int
        Threads growing trees in parallel (scikit-learn releases the GIL while growing).
    progress : callable, optional
        ``progress(fraction_done)``; it may raise to stop the computation.

    Returns
    -------
    dict
        Test site -> predictions (rows of the site, t).
    """
    from sklearn.tree import DecisionTreeRegressor


    pools, X, Y, index, rows_of = prepare_arrays(X, Y, sites, pools, dtype=np.float32)
    t = Y.shape[1]
    codes = np.empty(len(X), dtype=np.int64)
    for i, rows in enumerate(rows_of):
        codes[rows] = i
    miss = ~np.isfinite(X)
    sum_obs = np.zeros((len(rows_of), X.shape[1]))
    cnt_obs = np.zeros((len(rows_of), X.shape[1]))
    np.add.at(sum_obs, codes, np.where(miss, 0.0, X))
    np.add.at(cnt_obs, codes, (~miss).astype(np.float64))
    finite = np.isfinite(Y)
    target_groups = mask_groups(finite)  # as RFLearner: one set of trees per missing-value pattern

    rng = np.random.default_rng(random_state)
    jobs = []  # (tree seed, train site codes, test sites of the group)
    for universe, tests in sorted(universes(pools).items(), key=lambda kv: sorted(kv[1])):
        tests = sorted(tests)
        for _ in range(trees_per_site):
            for group in split_groups(tests, n_groups, rng):
                train = sorted(universe - set(group))
                jobs.append((int(rng.integers(2**31 - 1)), [index[s] for s in train], group))

    def grow(job):
        seed, train_codes, group = job
        r = np.random.default_rng(seed)
        train_rows = np.concatenate([rows_of[s] for s in train_codes])
        cnt = cnt_obs[train_codes].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = np.where(cnt > 0, sum_obs[train_codes].sum(axis=0) / cnt, 0.0).astype(np.float32)
        test_x = {s: np.where(miss[rows_of[index[s]]], mu, X[rows_of[index[s]]]) for s in group}
        preds = {s: np.empty((len(xt), t)) for s, xt in test_x.items()}
        for g in target_groups:
            rows = train_rows[finite[train_rows, g[0]]]
            if len(rows) == 0:  # no finite value of these targets in the training sites
                for s in preds:
                    preds[s][:, g] = np.nan
                continue
            k = int(max_samples if isinstance(max_samples, (int, np.integer)) and max_samples > 1
                    else max(1, round(float(max_samples) * len(rows))))
            pick = rows[r.integers(0, len(rows), size=k)]
            xs = np.where(miss[pick], mu, X[pick])
            yy = Y[pick][:, g]
            tree = DecisionTreeRegressor(
                min_samples_leaf=min_samples_leaf, max_features=max_features, max_depth=max_depth,
                random_state=int(r.integers(2**31 - 1)),
            ).fit(xs, yy[:, 0] if len(g) == 1 else yy)
            for s, xt in test_x.items():
                preds[s][:, g] = tree.predict(xt).reshape(len(xt), len(g))
        return preds

    sums = {s: np.zeros((len(rows_of[index[s]]), t)) for s in pools}
    counts = dict.fromkeys(pools, 0)
    workers = max(1, n_jobs)
    with ThreadPoolExecutor(max_workers=workers) as ex:
        pending: list = []
        for i, job in enumerate(jobs):
            pending.append(ex.submit(grow, job))
            if len(pending) >= 2 * workers or i == len(jobs) - 1:
                # results are added in submission order: deterministic whatever n_jobs
                for fut in pending:
                    for s, pr in fut.result().items():
                        sums[s] += pr
                        counts[s] += 1
                pending = []
                if progress is not None:
                    progress((i + 1) / len(jobs))  # may raise to cancel
    return {s: sums[s] / max(counts[s], 1) for s in pools}




class RFSiteOOB(Strategy):
    """Site-level out-of-bag forest with the learner's tree settings (see :func:`rf_site_oob`)."""

    name = "rf_site_oob"
    description = ("site-level out-of-bag forest (trees grown without a group of sites; one tree per "
                   "target when the targets' missing rows differ)")
    plain_description = "trees grown without a group of sites, each site predicted by the trees that never saw it"
    default_options = {"n_groups": 10}
    option_constraints = {"n_groups": [Interval(int, 1)]}

    def run(self, learner, X, Y, sites, dates, pools, options, context):
        p = learner.get_params()
        ms = p.get("max_samples")
        seed = p.get("random_state")
        return rf_site_oob(X.to_numpy(dtype=float), Y.to_numpy(dtype=float), np.asarray(sites).astype(str), pools,
                           trees_per_site=int(p.get("n_estimators", 100)), n_groups=int(options["n_groups"]),
                           max_samples=1.0 if ms is None else ms,
                           min_samples_leaf=p.get("min_samples_leaf", 5),
                           max_features=p.get("max_features", 0.5), max_depth=p.get("max_depth"),
                           random_state=0 if seed is None else int(seed),
                           n_jobs=max(1, int(context.n_jobs)), progress=context.progress)


register_strategy(RFSiteOOB())
