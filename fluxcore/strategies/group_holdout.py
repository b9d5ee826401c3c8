"""Generic fast strategy ``group_holdout``: one fresh model per group of test sites.

Works for any learner (tag ``fast_strategy = "group_holdout"``): the learner is fitted once
per group of test sites on the pool without the group, and predicts only the sites it never
saw. See :func:`group_holdout`.
"""

from __future__ import annotations

import numpy as np

from ..params import Interval
from .base import (
    Checkpoint,
    LocalMapper,
    Pools,
    Strategy,
    register_strategy,
    rows_for,
    site_rows,
    split_groups,
    universes,
)

__all__ = ["group_holdout", "GroupHoldout", "holdout_checkpoint"]


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
    n_processes: int = 1,
    blas_threads: int | None = None,
    progress=None,
    checkpoint: Checkpoint | None = None,
    mapper=None,
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
        Seed of the grouping and of each group model (the whole plan is drawn first, so a
        group model never depends on which others ran before it).
    n_jobs : int
        Group models fitted at the same time in threads (when ``n_processes`` is 1).
    n_processes : int
        Group models fitted at the same time in spawned worker processes, each receiving the
        data once (for learners whose fits hold the GIL or a process-wide lock, e.g. the
        liblinear solver of ``svm``). With ``blas_threads`` set, results are identical to
        ``n_processes=1`` (BLAS sums in another order with another number of threads).
    blas_threads : int, optional
        BLAS / OpenMP threads during the fits, in threads and worker processes alike (None:
        unchanged in this process, 1 in worker processes).
    progress : callable, optional
        ``progress(fraction_done)`` after each group; may raise to stop.
    checkpoint : Checkpoint, optional
        Each group model's predictions are stored as one unit and read back by a rerun
        instead of refitting the model.
    mapper : TaskMapper, optional
        Where the group models are fitted (:class:`fluxcore.strategies.base.LocalMapper` with
        ``n_jobs`` threads / ``n_processes`` processes by default; a
        :class:`fluxcore.parallel.DaskSession` on a cluster). The group models' predictions
        are collected in group order, so the result does not depend on where they ran.

    Returns
    -------
    dict
        Test site -> predictions (rows of the site, number of targets).
    """
    sites, pools, rows_of = site_rows(sites, pools)
    dates = np.asarray(dates)
    checkpoint = checkpoint or Checkpoint(None, "", "")
    rng = np.random.default_rng(random_state)
    jobs = []
    for universe, tests in sorted(universes(pools).items(), key=lambda kv: sorted(kv[1])):
        for _ in range(max(1, int(n_rounds))):
            for group in split_groups(sorted(tests), n_groups, rng):
                fit_sites = sorted(universe - set(group))
                jobs.append((sorted(group), fit_sites, int(rng.integers(2**31 - 1))))

    results: dict[int, dict[str, np.ndarray]] = {}
    for i, (group, _, _) in enumerate(jobs):  # units stored by an interrupted run
        got = checkpoint.load(f"group-{i:05d}")
        sizes = [len(rows_of[f]) for f in group]
        if got is not None and got.get("pred", np.empty(0)).shape[0] == sum(sizes):
            results[i] = dict(zip(group, np.split(got["pred"], np.cumsum(sizes)[:-1]), strict=True))
    todo = [i for i in range(len(jobs)) if i not in results]
    payload = (template, X, Y, sites, dates, rows_of)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = dict.fromkeys(pools, 0)

    def collect(i: int, res: dict[str, np.ndarray], computed: bool) -> None:
        if computed:
            group = jobs[i][0]
            checkpoint.save(f"group-{i:05d}", {"pred": np.concatenate([res[f] for f in group])},
                            {"group": group})
        for f, pr in res.items():
            sums[f] = pr if f not in sums else sums[f] + pr
            counts[f] += 1
        if progress is not None:
            progress((i + 1) / len(jobs))

    mapper = mapper or LocalMapper(n_threads=n_jobs, n_processes=n_processes)
    kind = "processes" if (mapper.distributed or int(n_processes) > 1) else "threads"
    stored = sorted(results)

    def computed(k: int, res: dict[str, np.ndarray]) -> None:
        i = todo[k]
        while stored and stored[0] < i:  # stored units before this one, in job order
            j = stored.pop(0)
            collect(j, results.pop(j), computed=False)
        collect(i, res, computed=True)

    mapper.map(_fit_predict, [jobs[i] for i in todo], payload=payload, kind=kind, on_result=computed,
               blas_threads=blas_threads)
    for j in stored:
        collect(j, results.pop(j), computed=False)
    return {f: sums[f] / counts[f] for f in sums}


def _fit_predict(payload, job) -> dict[str, np.ndarray]:
    """Fit one group model and predict each site of its group."""
    template, X, Y, sites, dates, rows_of = payload
    group, fit_sites, seed = job
    fr = rows_for(rows_of, fit_sites)
    model = template.clone().set_params(random_state=seed)
    model.fit(X.iloc[fr], Y.iloc[fr], sites=sites[fr], dates=dates[fr])
    res = {}
    for f in group:
        te = rows_of[f]
        res[f] = np.asarray(model.predict(X.iloc[te], sites=sites[te], dates=dates[te]), dtype=float)
    return res


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
                             n_jobs=max(1, int(context.n_jobs)), progress=context.progress,
                             checkpoint=holdout_checkpoint(self.name, learner, X, Y, sites, pools, options,
                                                           context),
                             mapper=context.mapper)


def holdout_checkpoint(name: str, learner, X, Y, sites, pools, options, context) -> Checkpoint:
    """The checkpoint of a group hold-out batch (keyed by data, pools, options and parameters)."""
    return Checkpoint.of(context, name, X, Y, np.asarray(sites).astype(str),
                         {k: list(v) for k, v in pools.items()}, dict(options), learner.get_params())


register_strategy(GroupHoldout())
