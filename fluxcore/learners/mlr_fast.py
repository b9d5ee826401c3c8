"""Exact fast leave-one-site-out for :class:`~fluxcore.learners.mlr.MLRLearner` (strategy ``mlr_exact``).

Ordinary least squares from per-site sufficient statistics: training-mean imputation of
missing predictors is reproduced exactly by splitting the design matrix into observed values
and a missing-value mask (see :func:`mlr_loso`). One pass over the data, one small solve per
fold. Supports fuzzy site weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..strategies.base import (
    Pools,
    Strategy,
    check_pools,
    register_strategy,
    rows_by_code,
    site_codes,
)
from .mlr import used_columns

__all__ = ["mlr_loso", "MLRExact"]


def mlr_loso(
    X: np.ndarray,
    Y: np.ndarray,
    sites: np.ndarray,
    pools: Pools,
    *,
    site_weights: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, np.ndarray]:
    """Exact leave-one-site-out ordinary least squares from per-site sufficient statistics.

    Equivalent, up to floating-point rounding, to fitting for every test site ``f`` an OLS
    model with intercept on the rows of ``pools[f]`` (per target, rows where that target is
    observed), after imputing each missing predictor by its mean over all rows of
    ``pools[f]``, and predicting the rows of ``f`` imputed the same way.

    Write a row as ``x = x0 + m * mu`` where ``x0`` holds the observed values (0 where missing),
    ``m`` the missing-value mask and ``mu`` the fold's imputation means. With row weights ``w``

    ``X'WX = A + B diag(mu) + diag(mu) B' + diag(mu) C diag(mu)``,
    ``X'Wy = a + diag(mu) c``,

    with ``A = X0'WX0``, ``B = X0'WM``, ``C = M'WM``, ``a = X0'Wy``, ``c = M'Wy``: sums over
    sites of per-site statistics. The normal equations are solved per fold; a rank-deficient
    system falls back to the minimum-norm least-squares solution (as LAPACK ``gelsd``).

    For numerical conditioning the predictors are shifted by a fixed reference vector before
    the statistics are accumulated; OLS with intercept is exactly invariant to such a shift, so
    it carries no information into any fold's predictions.

    Parameters
    ----------
    X : ndarray (n, p)
        Predictors, NaN = missing.
    Y : ndarray (n, t)
        Targets, NaN = missing.
    sites : ndarray (n,)
        Site id per row.
    pools : mapping
        Test site -> training sites.
    site_weights : mapping, optional
        Test site -> {training site: weight}. Weights per training site (fuzzy site weighting);
        sites absent from the mapping get weight 0, and sites of weight 0 are dropped from the
        fold altogether (also from the imputation means), as the per-fold runner does.
        Default: all 1.

    Returns
    -------
    dict
        Test site -> predictions (rows of the site, t).
    """
    pools = check_pools(sites, pools)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    n, p = X.shape
    t = Y.shape[1]
    uniq, codes = site_codes(sites)
    n_sites = len(uniq)
    index = {s: i for i, s in enumerate(uniq)}

    miss = ~np.isfinite(X)
    ref = np.array([_finite_median(X[:, j]) for j in range(p)])
    q = p + 1  # design with intercept: column 0 is the constant (never missing)
    rows_of = rows_by_code(codes, n_sites)

    def design(s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Site ``s``'s rows (increasing), its shifted design (0 where missing) and its mask.

        Built one site at a time: a site's arrays stay in cache, where whole-table temporaries
        (n, p) would make every pass a trip to memory (the time per row then grows with the
        number of towers)."""
        rows = rows_of[s]
        ms = miss[rows]
        x0s = np.empty((len(rows), q))
        x0s[:, 0] = 1.0
        x0s[:, 1:] = np.where(ms, 0.0, X[rows] - ref)
        m = np.zeros((len(rows), q))
        m[:, 1:] = ms
        return rows, x0s, m

    # per-site imputation statistics (all rows, independent of the target) and per-site,
    # per-target normal-equation blocks, in one pass over the sites
    sum_obs = np.zeros((n_sites, p))
    cnt_obs = np.zeros((n_sites, p))
    A = np.zeros((t, n_sites, q, q))
    B = np.zeros((t, n_sites, q, q))
    C = np.zeros((t, n_sites, q, q))
    a = np.zeros((t, n_sites, q))
    c = np.zeros((t, n_sites, q))
    for s in range(n_sites):
        rows, x0s, ms = design(s)
        if len(rows):  # a running sum in row order (as np.add.at over all rows would add)
            sum_obs[s] = np.cumsum(x0s[:, 1:], axis=0)[-1]
            cnt_obs[s] = len(rows) - ms[:, 1:].sum(axis=0)
        ys = Y[rows]
        mc = np.flatnonzero(ms.any(axis=0))  # the mask's blocks are zero in every other column
        for k in range(t):
            ok = np.isfinite(ys[:, k])
            if not ok.any():
                continue
            x0k, yk = x0s[ok], ys[ok, k]
            A[k, s] = x0k.T @ x0k
            a[k, s] = x0k.T @ yk
            if mc.size:
                mk = ms[ok][:, mc]
                B[k, s][:, mc] = x0k.T @ mk
                C[k, s][np.ix_(mc, mc)] = mk.T @ mk
                c[k, s][mc] = mk.T @ yk

    # Unweighted folds whose pool is every other site (leave-one-site-out among all sites) sum
    # the statistics as "sites before the test site + sites after it" from prefix and suffix
    # sums: O(1) per fold instead of O(pool), so the cost grows linearly, not quadratically,
    # with the number of towers; the test site's own statistics never enter its fold.
    stats = (sum_obs, cnt_obs, A, B, C, a, c)
    axes = (0, 0, 1, 1, 1, 1, 1)  # the site axis of each statistic
    prefix = suffix = None
    if site_weights is None and any(len(set(pool)) == n_sites - 1 for pool in pools.values()):
        prefix = [_cumulative(x, ax) for x, ax in zip(stats, axes, strict=True)]
        suffix = [_cumulative(np.flip(x, ax), ax) for x, ax in zip(stats, axes, strict=True)]

    def pool_sum(j: int, i: int, k: int | None = None):
        """Sum of statistic ``j`` over every site but ``i`` (target ``k``)."""
        pre, suf = prefix[j], suffix[j]
        if k is None:
            return pre[i] + suf[n_sites - 1 - i]
        return pre[k, i] + suf[k, n_sites - 1 - i]

    out: dict[str, np.ndarray] = {}
    for test, pool in pools.items():
        idx = np.array([index[s] for s in pool])
        ti = index[test]
        if site_weights is not None:
            wmap = site_weights.get(test, {})
            w = np.array([float(wmap.get(s, 0.0)) for s in pool])
        else:
            w = np.ones(len(idx))
        others = prefix is not None and len(set(pool)) == n_sites - 1
        used = (w > 0).astype(np.float64)[:, None]  # weight-0 sites are dropped from the fold
        if not others:
            cnt = (cnt_obs[idx] * used).sum(axis=0)
            sums = (sum_obs[idx] * used).sum(axis=0)
        else:
            cnt, sums = pool_sum(1, ti), pool_sum(0, ti)
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = np.where(cnt > 0, sums / np.where(cnt > 0, cnt, 1.0), 0.0)
        mu1 = np.concatenate([[0.0], mu])
        rows, x0s, ms = design(ti)
        xt = x0s + ms * mu1
        preds = np.full((len(rows), t), np.nan)
        for k in range(t):
            if not others:
                Ak = np.tensordot(w, A[k, idx], axes=1)
                Bk = np.tensordot(w, B[k, idx], axes=1)
                Ck = np.tensordot(w, C[k, idx], axes=1)
                ak = w @ a[k, idx]
                ck = w @ c[k, idx]
            else:
                Ak, Bk, Ck = (pool_sum(j, ti, k) for j in (2, 3, 4))
                ak, ck = pool_sum(5, ti, k), pool_sum(6, ti, k)
            if Ak[0, 0] <= 0:
                continue  # no training row observed for this target
            G = Ak + Bk * mu1[None, :] + mu1[:, None] * Bk.T + mu1[:, None] * Ck * mu1[None, :]
            h = ak + mu1 * ck
            beta = _solve_normal(G, h)
            preds[:, k] = xt @ beta
        out[test] = preds  # rows of a site are in increasing order (stable sort)
    return out


def _finite_median(col: np.ndarray) -> float:
    """Median of the finite values of ``col`` (0 when there are none): the value of
    ``np.nanmedian`` with infinities as missing, without its whole-table temporaries."""
    v = col[np.isfinite(col)]
    return float(np.median(v)) if v.size else 0.0


def _cumulative(x: np.ndarray, axis: int) -> np.ndarray:
    """Exclusive cumulative sums along ``axis``: entry ``i`` sums the first ``i`` slices."""
    zero = np.zeros_like(np.take(x, [0], axis=axis))
    return np.concatenate([zero, np.cumsum(x, axis=axis)], axis=axis)


def _solve_normal(G: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Solve ``G beta = h`` (symmetric PSD); minimum-norm solution when singular."""
    try:
        L = np.linalg.cholesky(G)
        z = np.linalg.solve(L, h)
        beta = np.linalg.solve(L.T, z)
        if np.all(np.isfinite(beta)) and np.linalg.cond(G) < 1e12:
            return beta
    except np.linalg.LinAlgError:
        pass
    return np.linalg.pinv(G, hermitian=True) @ h




class MLRExact(Strategy):
    """Exact LOSO OLS (see :func:`mlr_loso`); the learner must fit an intercept."""

    name = "mlr_exact"
    description = "exact LOSO OLS from per-site sufficient statistics"
    plain_description = "exact linear regression for every site at once"
    weighted = True
    exact = True

    def supports(self, learner, weighted: bool = False) -> bool:
        return bool(learner.get_params().get("fit_intercept", True))

    def run(self, learner, X, Y, sites, dates, pools, options, context):
        p = learner.get_params()
        X = X.iloc[:, used_columns(list(X.columns), bool(p.get("site_level", False)))]
        return mlr_loso(X.to_numpy(dtype=float), Y.to_numpy(dtype=float), np.asarray(sites).astype(str),
                        pools, site_weights=context.site_weights)


register_strategy(MLRExact())
