"""Generic fast strategy ``group_holdout``: one fresh model per group of test sites.

Works for any learner (tag ``fast_strategy = "group_holdout"``): the learner is fitted once
per group of test sites on the pool without the group, and predicts only the sites it never
saw. See :func:`group_holdout`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..params import Interval
from .base import Pools, Strategy, register_strategy, rows_for, site_rows, split_groups, universes

__all__ = ["group_holdout", "GroupHoldout"]


def group_holdout(
    template,
    X,
    Y,
    sites: np.ndarray,
    dates: np.ndarray,
    pools: Pools,
    *,
    n_groups: int = 10,
    n_rounds: int = 1,
    random_state: int = 0,
    n_jobs: int = 1,
    progress=None,
) -> dict[str, np.ndarray]:
    """Any learner for all folds: one fresh model per group of test sites.

    For each group ``g`` of test sites (per universe), a fresh clone of ``template`` (same
    hyperparameters, ``random_state`` drawn from ``random_state``) is fitted on the rows of the
    universe's sites outside ``g`` and predicts every site of ``g``. So each test site is
    predicted by a model that never saw it and was trained on about ``1 - 1/n_groups`` of the
    sites; with ``n_groups`` >= the number of test sites this is the per-fold loop itself.
    With ``n_rounds > 1`` the test sites are partitioned anew in each round and a site's
    prediction is the mean of its ``n_rounds`` models, so that no site loses its most similar
    training sites in every model only because they fell into its group (and the models' own
    sampling noise averages out). Cost: ``n_groups * n_rounds`` fits instead of one per fold.
    Used for ``svm`` (Nystroem + linear epsilon-insensitive SVR, the same model as the per-fold
    learner).

    Parameters
    ----------
    template : FluxLearner
        Unfitted learner (``template.clone()`` per group).
    X, Y : pandas.DataFrame
        Features and targets (row-aligned with ``sites`` and ``dates``).
    sites, dates : ndarray
        Site id and day of each row.
    pools : mapping
        Test site -> training sites.
    n_groups : int
        Models per universe and round.
    n_rounds : int
        Independent partitions; each test site is predicted by the mean of ``n_rounds`` models.
    random_state : int
        Seed of the grouping and of each group model.
    n_jobs : int
        Group models fitted at the same time (threads; the solvers release the GIL).
    progress : callable, optional
        ``progress(fraction_done)`` after each group; may raise to stop.

    Returns
    -------
    dict
        Test site -> predictions (rows of the site, number of targets).
    """
    sites, pools, rows_of = site_rows(sites, pools)
    dates = np.asarray(dates)
    rng = np.random.default_rng(random_state)
    jobs = []
    for universe, tests in sorted(universes(pools).items(), key=lambda kv: sorted(kv[1])):
        for _ in range(max(1, int(n_rounds))):
            for group in split_groups(sorted(tests), n_groups, rng):
                fit_sites = sorted(universe - set(group))
                jobs.append((sorted(group), fit_sites, int(rng.integers(2**31 - 1))))

    def fit_predict(job):
        group, fit_sites, seed = job
        fr = rows_for(rows_of, fit_sites)
        model = template.clone().set_params(random_state=seed)
        model.fit(X.iloc[fr], Y.iloc[fr], sites=sites[fr], dates=dates[fr])
        res = {}
        for f in group:
            te = rows_of[f]
            res[f] = np.asarray(model.predict(X.iloc[te], sites=sites[te], dates=dates[te]), dtype=float)
        return res

    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = dict.fromkeys(pools, 0)
    with ThreadPoolExecutor(max_workers=max(1, int(n_jobs))) as pool:
        for i, res in enumerate(pool.map(fit_predict, jobs)):  # in job order: deterministic
            for f, pr in res.items():
                sums[f] = pr if f not in sums else sums[f] + pr
                counts[f] += 1
            if progress is not None:
                progress((i + 1) / len(jobs))
    return {f: sums[f] / counts[f] for f in sums}




class GroupHoldout(Strategy):
    """The learner itself, fitted once per group of test sites (see :func:`group_holdout`)."""

    name = "group_holdout"
    description = ("the per-fold learner fitted once per group of test sites on the pool without "
                   "the group, each model predicting only sites outside its training set, "
                   "averaged over n_rounds partitions")
    plain_description = "one model per group of sites, each predicting sites it never saw"
    default_options = {"n_groups": 10, "n_rounds": 1}
    option_constraints = {"n_groups": [Interval(int, 1)], "n_rounds": [Interval(int, 1)]}

    def run(self, learner, X, Y, sites, dates, pools, options, context):
        seed = learner.get_params().get("random_state")
        return group_holdout(learner, X, Y, sites, dates, pools, n_groups=int(options["n_groups"]),
                             n_rounds=int(options["n_rounds"]), random_state=0 if seed is None else int(seed),
                             n_jobs=max(1, int(context.n_jobs)), progress=context.progress)


register_strategy(GroupHoldout())
