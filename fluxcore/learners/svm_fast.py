"""Fast leave-one-site-out for :class:`~fluxcore.learners.svm.SVMLearner` (strategy ``svm_group``).

``solver="svr"`` (default): the generic ``group_holdout`` strategy with the learner itself
(Nystroem features + linear epsilon-insensitive SVR on a row sample), ``n_rounds``
partitions averaged. ``solver="lssvm"``: RBF least-squares support vector regression (Suykens
& Vandewalle 1999, doi:10.1023/A:1018628609742) in a Nystroem feature space (Williams & Seeger
2001): for each group of test sites the scaler and the Nystroem landmarks are fitted on the
pool without the group; the ridge solution of every site in the group then comes exactly from
per-site sufficient statistics ``Phi_s' Phi_s`` and ``Phi_s' y_s`` (:func:`lssvm_group_loso`).
"""

from __future__ import annotations

import numpy as np

from ..params import Boolean, Interval, Options
from ..strategies.base import (
    Pools,
    Strategy,
    prepare_arrays,
    register_strategy,
    split_groups,
    universes,
)
from ..strategies.group_holdout import group_holdout, holdout_checkpoint

__all__ = ["lssvm_group_loso", "SVMGroup", "per_fold_plan"]


def _fit_group_transform(X: np.ndarray, fit_rows: np.ndarray, n_components: int, gamma: float,
                         seed: int):
    """Standard scaler and Nystroem map fitted on ``X[fit_rows]`` only.

    Returns ``(transform, nystroem)`` where ``transform(rows)`` gives the standardised,
    mean-imputed predictors of ``X[rows]``.
    """
    from sklearn.kernel_approximation import Nystroem

    xf = X[fit_rows]
    mean = np.nanmean(xf, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.nanstd(xf, axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)

    def transform(rows):
        z = (X[rows] - mean) / std
        return np.where(np.isfinite(z), z, 0.0)

    rng = np.random.default_rng(seed)
    sample = fit_rows[rng.choice(len(fit_rows), size=min(len(fit_rows), 20 * n_components), replace=False)]
    nys = Nystroem(kernel="rbf", gamma=gamma, n_components=min(n_components, len(sample)),
                   random_state=seed).fit(transform(sample))
    return transform, nys


def lssvm_group_loso(
    X: np.ndarray,
    Y: np.ndarray,
    sites: np.ndarray,
    pools: Pools,
    *,
    n_groups: int = 8,
    n_components: int = 400,
    gamma: float | None = None,
    alpha: float = 1.0,
    random_state: int = 0,
    chunk: int = 50_000,
    progress=None,
) -> dict[str, np.ndarray]:
    """RBF least-squares SVR in a Nystroem feature space, all folds of a group at once.

    For each group ``g`` of test sites (per universe): the standard scaler and the
    ``n_components`` Nystroem landmarks (Williams & Seeger 2001) are fitted on the rows of the
    universe's sites outside ``g``; features ``phi(x)`` are computed for every row; then for each
    test site ``f`` in ``g`` the ridge problem
    ``min_b sum_{pool(f)} (y - b0 - phi(x) b)^2 + alpha |b|^2`` is solved exactly from the
    per-site sums ``Phi_s' Phi_s``, ``Phi_s' y_s`` (targets centred on the fold's training mean,
    intercept unpenalised). ``gamma`` defaults to ``1 / n_features`` on standardised data
    (scikit-learn's ``"scale"`` for unit variance). ``progress(fraction_done)`` is called after
    each group and may raise to stop.

    Returns
    -------
    dict
        Test site -> predictions (rows of the site, t).
    """
    pools, X, Y, index, rows_of = prepare_arrays(X, Y, sites, pools)
    p = X.shape[1]
    t = Y.shape[1]
    rng = np.random.default_rng(random_state)
    gamma = 1.0 / p if gamma is None else gamma
    out: dict[str, np.ndarray] = {}

    for universe, tests in sorted(universes(pools).items(), key=lambda kv: sorted(kv[1])):
        for group in split_groups(sorted(tests), n_groups, rng):
            fit_sites = sorted(universe - set(group))
            fit_rows = np.concatenate([rows_of[index[s]] for s in fit_sites])
            transform, nys = _fit_group_transform(
                X, fit_rows, n_components, gamma, int(rng.integers(2**31 - 1)))
            m = nys.components_.shape[0]
            needed = sorted(set().union(*[set(pools[f]) for f in group]) | set(group))
            # per-site sufficient statistics, per target (rows where it is observed)
            G = {}
            for s in needed:
                rs = rows_of[index[s]]
                stats = []
                for k in range(t):
                    ok = np.isfinite(Y[rs, k])
                    rk = rs[ok]
                    PhiTPhi = np.zeros((m, m))
                    Phi1 = np.zeros(m)
                    Phiy = np.zeros(m)
                    ysum = 0.0
                    for i in range(0, len(rk), chunk):
                        rr = rk[i:i + chunk]
                        phi = nys.transform(transform(rr))
                        yy = Y[rr, k]
                        PhiTPhi += phi.T @ phi
                        Phi1 += phi.sum(axis=0)
                        Phiy += phi.T @ yy
                        ysum += yy.sum()
                    stats.append((PhiTPhi, Phi1, Phiy, ysum, float(len(rk))))
                G[s] = stats
            for f in group:
                rs = rows_of[index[f]]
                phi_t = nys.transform(transform(rs))
                preds = np.full((len(rs), t), np.nan)
                for k in range(t):
                    S = sum(G[s][k][0] for s in pools[f])
                    s1 = sum(G[s][k][1] for s in pools[f])
                    sy = sum(G[s][k][2] for s in pools[f])
                    ys = sum(G[s][k][3] for s in pools[f])
                    nn = sum(G[s][k][4] for s in pools[f])
                    if nn < 2:
                        continue
                    # centre features and target on the fold's training means
                    phibar = s1 / nn
                    ybar = ys / nn
                    Sc = S - nn * np.outer(phibar, phibar)
                    syc = sy - nn * phibar * ybar
                    b = np.linalg.solve(Sc + alpha * np.eye(m), syc)
                    preds[:, k] = ybar + (phi_t - phibar) @ b
                out[f] = preds
            if progress is not None:
                progress(len(out) / len(pools))
    return out




def per_fold_plan(pools: Pools, n_groups: int, n_rounds: int, per_fold_when_fewer: bool = True) -> tuple[int, int]:
    """Groups and rounds of :class:`SVMGroup`'s group hold-out for these pools.

    The group hold-out fits ``n_groups * n_rounds`` models (30 by default) whatever the number
    of test sites, so a selection of 12 test sites would pay for 30 fits. When no universe has
    more test sites than that (and ``per_fold_when_fewer``), every test site gets its own
    group in a single round: the per-fold loop itself, with fewer fits and each model trained
    on the site's whole pool. Otherwise ``(n_groups, n_rounds)`` unchanged.
    """
    most = max((len(t) for t in universes(pools).values()), default=0)
    if per_fold_when_fewer and 0 < most <= n_groups * n_rounds:
        return most, 1
    return n_groups, n_rounds


class SVMGroup(Strategy):
    """Group hold-out of the SVR learner, or the exact-per-group LS-SVM (option ``solver``)."""

    name = "svm_group"
    description = ("the per-fold SVR model (Nystroem + linear epsilon-SVR) fitted once per group of sites, "
                   "each predicting only sites outside its training set, averaged over n_rounds "
                   "partitions, or the per-fold loop itself when that takes fewer fits (solver 'lssvm': "
                   "least-squares SVR with exact per-site ridge)")
    plain_description = "one support-vector model per group of sites, each predicting sites it never saw"
    default_options = {"n_groups": 10, "n_rounds": 3, "solver": "svr", "per_fold_when_fewer": True}
    option_constraints = {"n_groups": [Interval(int, 1)], "n_rounds": [Interval(int, 1)],
                          "solver": [Options("svr", "lssvm")], "per_fold_when_fewer": [Boolean()]}

    def run(self, learner, X, Y, sites, dates, pools, options, context):
        p = learner.get_params()
        seed = p.get("random_state")
        seed = 0 if seed is None else int(seed)
        options = {**self.default_options, **dict(options)}
        if options["solver"] == "svr":
            n_groups, n_rounds = per_fold_plan(pools, int(options["n_groups"]), int(options["n_rounds"]),
                                               bool(options["per_fold_when_fewer"]))
            # liblinear holds a process-wide lock (reproducibility): groups run in processes (or
            # on the run's Dask workers); one BLAS thread per fit, so that the numbers do not
            # depend on the number of jobs or on where the groups ran
            return group_holdout(learner, X, Y, sites, dates, pools, n_groups=n_groups,
                                 n_rounds=n_rounds, random_state=seed,
                                 n_jobs=max(1, int(context.n_jobs)),
                                 n_processes=max(1, int(context.n_processes)), blas_threads=1,
                                 progress=context.progress,
                                 checkpoint=holdout_checkpoint(self.name, learner, X, Y, sites, pools,
                                                               options, context),
                                 mapper=context.mapper)
        gamma = p.get("gamma", "scale")
        return lssvm_group_loso(X.to_numpy(dtype=float), Y.to_numpy(dtype=float), np.asarray(sites).astype(str),
                                pools, n_groups=int(options["n_groups"]),
                                n_components=int(p.get("n_components", 400)),
                                gamma=None if isinstance(gamma, str) else float(gamma),
                                alpha=1.0 / float(p.get("C", 1.0)), random_state=seed,
                                progress=context.progress)


register_strategy(SVMGroup())
