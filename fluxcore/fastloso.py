"""Fast leave-one-site-out (LOSO) strategies that never let a model see its test site.

A notebook-style LOSO fits one fresh model per test site on all other sites: ``n_sites``
fits on ~``n_rows`` rows each. The strategies here compute every fold's prediction at a
fraction of that cost. Each one is either *exactly* equivalent to the per-fold computation or
an approximation whose accuracy the benchmark checks against the per-fold reference
(``benchmarks/bench_speed.py``):

``mlr_loso`` (exact)
    Ordinary least squares from per-site sufficient statistics. Training-mean imputation of
    missing predictors is reproduced exactly by splitting the design matrix into observed values
    and a missing-value mask (see :func:`mlr_loso`). One pass over the data, one small solve
    per fold.
``rf_site_oob`` (approximation, no leakage)
    Site-level out-of-bag random forest: in each *round* the test sites are shuffled into
    ``n_groups`` groups and one tree is grown per group on the pool without that group's
    sites; a site is predicted only by trees that never saw it. After ``trees_per_site`` rounds
    every site has ``trees_per_site`` out-of-bag trees, each trained on about
    ``(1 - 1/n_groups)`` of the sites. Targets whose missing rows differ get one tree each per
    group and round, as the per-fold learner then grows one forest per target. Cost:
    ``n_groups * trees_per_site`` trees (per target group) instead of ``n_sites * n_estimators``.
``group_holdout`` (approximation, no leakage; the default for ``svm``)
    The per-fold learner itself (for ``svm``: Nystroem features + linear epsilon-insensitive
    SVR on a row sample) fitted once per group of test sites on the pool without the group;
    each model predicts only the sites it never saw; with ``n_rounds`` new partitions a site's
    prediction is the mean of its ``n_rounds`` models. ``n_groups * n_rounds`` fits instead of
    one per fold.
``lssvm_group_loso`` (approximation, no leakage; ``svm`` with ``solver="lssvm"``)
    RBF least-squares support vector regression (Suykens & Vandewalle 1999,
    doi:10.1023/A:1018628609742) in a Nystroem feature space (Williams & Seeger 2001): for each
    group of test sites the scaler and the Nystroem landmarks are fitted on the pool without
    the group; the ridge solution of every site in the group then comes exactly from per-site
    sufficient statistics ``Phi_s' Phi_s`` and ``Phi_s' y_s``.

All functions take plain arrays: ``X`` (n, p) float with NaN for missing, ``Y`` (n, t) with NaN
for missing targets, ``sites`` (n,) site ids, and ``pools``: a mapping test site -> training
sites (never containing the test site). They return a mapping test site -> predictions of
shape (rows of that site, t), rows in the order they appear in ``X``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import ConfigError

Pools = Mapping[str, Sequence[str]]


# --------------------------------------------------------------------------- helpers
def _check_pools(sites: np.ndarray, pools: Pools) -> dict[str, list[str]]:
    present = set(np.unique(sites).tolist())
    out: dict[str, list[str]] = {}
    for test, pool in pools.items():
        pool = [str(s) for s in pool]
        if test in pool:
            raise ConfigError(f"training pool of {test!r} contains the test site itself")
        if test not in present:
            raise ConfigError(f"test site {test!r} has no rows")
        missing = set(pool) - present
        if missing:
            raise ConfigError(f"training pool of {test!r} names sites without rows: {sorted(missing)[:5]}")
        if not pool:
            raise ConfigError(f"training pool of {test!r} is empty")
        out[str(test)] = pool
    return out


def _site_codes(sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, codes = np.unique(np.asarray(sites).astype(str), return_inverse=True)
    return uniq, codes


def _prepare(X, Y, sites, pools: Pools, dtype=np.float64):
    """Validated pools, arrays, and the rows of each site: shared set-up of the strategies.

    Returns ``(pools, X, Y, index, rows_of)`` with ``Y`` two-dimensional, ``index`` site id
    -> position and ``rows_of[position]`` the increasing row positions of that site.
    """
    pools = _check_pools(sites, pools)
    X = np.asarray(X, dtype=dtype)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    uniq, codes = _site_codes(sites)
    index = {s: i for i, s in enumerate(uniq)}
    rows_of = [np.flatnonzero(codes == i) for i in range(len(uniq))]
    return pools, X, Y, index, rows_of


def _site_rows(sites, pools: Pools):
    """Site ids as str, validated pools, and ``{site id: its increasing row positions}``.

    Shared set-up of the strategies that fit whole learners on DataFrames (a plain mapping, so
    it also travels to worker processes); :func:`_rows_for` gathers the rows of several sites.
    """
    sites = np.asarray(sites).astype(str)
    pools, _, _, index, rows_of = _prepare(np.zeros((len(sites), 0)), np.zeros(len(sites)), sites, pools)
    return sites, pools, {s: rows_of[i] for s, i in index.items()}


def _rows_for(rows_of: Mapping[str, np.ndarray], site_list) -> np.ndarray:
    """Sorted row positions of the sites in ``site_list``."""
    return np.sort(np.concatenate([rows_of[s] for s in site_list]))


def _universes(pools: dict[str, list[str]]) -> dict[frozenset, list[str]]:
    """Group test sites by their universe (pool plus the site itself)."""
    groups: dict[frozenset, list[str]] = defaultdict(list)
    for test, pool in pools.items():
        groups[frozenset(pool) | {test}].append(test)
    return groups


def _split_groups(items: list[str], n_groups: int, rng: np.random.Generator) -> list[list[str]]:
    perm = [items[i] for i in rng.permutation(len(items))]
    n_groups = max(1, min(n_groups, len(perm)))
    return [perm[g::n_groups] for g in range(n_groups)]


# ------------------------------------------------------------------------------ MLR
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
    pools = _check_pools(sites, pools)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    n, p = X.shape
    t = Y.shape[1]
    uniq, codes = _site_codes(sites)
    n_sites = len(uniq)
    index = {s: i for i, s in enumerate(uniq)}

    miss = ~np.isfinite(X)
    ref = np.nanmedian(np.where(miss, np.nan, X), axis=0) if n else np.zeros(p)
    ref = np.where(np.isfinite(ref), ref, 0.0)
    X0 = np.where(miss, 0.0, X - ref)  # shifted, zero where missing
    M = miss.astype(np.float64)
    # design with intercept: column 0 is the constant (never missing)
    X0 = np.hstack([np.ones((n, 1)), X0])
    M = np.hstack([np.zeros((n, 1)), M])
    q = p + 1

    # per-site imputation statistics (all rows, independent of the target)
    sum_obs = np.zeros((n_sites, p))
    cnt_obs = np.zeros((n_sites, p))
    np.add.at(sum_obs, codes, X0[:, 1:])
    np.add.at(cnt_obs, codes, (~miss).astype(np.float64))

    # per-site, per-target normal-equation blocks
    A = np.zeros((t, n_sites, q, q))
    B = np.zeros((t, n_sites, q, q))
    C = np.zeros((t, n_sites, q, q))
    a = np.zeros((t, n_sites, q))
    c = np.zeros((t, n_sites, q))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_sites + 1))
    for s in range(n_sites):
        rows = order[bounds[s]:bounds[s + 1]]
        x0s, ms, ys = X0[rows], M[rows], Y[rows]
        for k in range(t):
            ok = np.isfinite(ys[:, k])
            if not ok.any():
                continue
            x0k, mk, yk = x0s[ok], ms[ok], ys[ok, k]
            A[k, s] = x0k.T @ x0k
            B[k, s] = x0k.T @ mk
            C[k, s] = mk.T @ mk
            a[k, s] = x0k.T @ yk
            c[k, s] = mk.T @ yk

    out: dict[str, np.ndarray] = {}
    for test, pool in pools.items():
        idx = np.array([index[s] for s in pool])
        if site_weights is not None:
            wmap = site_weights.get(test, {})
            w = np.array([float(wmap.get(s, 0.0)) for s in pool])
        else:
            w = np.ones(len(idx))
        used = (w > 0).astype(np.float64)[:, None]  # weight-0 sites are dropped from the fold
        cnt = (cnt_obs[idx] * used).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = np.where(cnt > 0, (sum_obs[idx] * used).sum(axis=0) / cnt, 0.0)
        mu1 = np.concatenate([[0.0], mu])
        rows = order[bounds[index[test]]:bounds[index[test] + 1]]
        xt = X0[rows] + M[rows] * mu1
        preds = np.full((len(rows), t), np.nan)
        for k in range(t):
            Ak = np.tensordot(w, A[k, idx], axes=1)
            Bk = np.tensordot(w, B[k, idx], axes=1)
            Ck = np.tensordot(w, C[k, idx], axes=1)
            ak = w @ a[k, idx]
            ck = w @ c[k, idx]
            if Ak[0, 0] <= 0:
                continue  # no training row observed for this target
            G = Ak + Bk * mu1[None, :] + mu1[:, None] * Bk.T + mu1[:, None] * Ck * mu1[None, :]
            h = ak + mu1 * ck
            beta = _solve_normal(G, h)
            preds[:, k] = xt @ beta
        out[test] = preds  # rows of a site are in increasing order (stable sort)
    return out


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


# ------------------------------------------------------------------------------ RF
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

    from .learners._util import mask_groups

    pools, X, Y, index, rows_of = _prepare(X, Y, sites, pools, dtype=np.float32)
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
    for universe, tests in sorted(_universes(pools).items(), key=lambda kv: sorted(kv[1])):
        tests = sorted(tests)
        for _ in range(trees_per_site):
            for group in _split_groups(tests, n_groups, rng):
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


# ---------------------------------------------------------------------------- LS-SVM
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
    pools, X, Y, index, rows_of = _prepare(X, Y, sites, pools)
    p = X.shape[1]
    t = Y.shape[1]
    rng = np.random.default_rng(random_state)
    gamma = 1.0 / p if gamma is None else gamma
    out: dict[str, np.ndarray] = {}

    for universe, tests in sorted(_universes(pools).items(), key=lambda kv: sorted(kv[1])):
        for group in _split_groups(sorted(tests), n_groups, rng):
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


# ------------------------------------------------------------------ grouped hold-out
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
    sites, pools, rows_of = _site_rows(sites, pools)
    dates = np.asarray(dates)
    rng = np.random.default_rng(random_state)
    jobs = []
    for universe, tests in sorted(_universes(pools).items(), key=lambda kv: sorted(kv[1])):
        for _ in range(max(1, int(n_rounds))):
            for group in _split_groups(sorted(tests), n_groups, rng):
                fit_sites = sorted(universe - set(group))
                jobs.append((sorted(group), fit_sites, int(rng.integers(2**31 - 1))))

    def fit_predict(job):
        group, fit_sites, seed = job
        fr = _rows_for(rows_of, fit_sites)
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


# ------------------------------------------------------------------------------ LSTM
def lstm_group_finetune(
    X,
    Y,
    sites: np.ndarray,
    dates: np.ndarray,
    pools: Pools,
    *,
    params: dict | None = None,
    n_groups: int = 4,
    finetune_epochs: int = 1,
    finetune_windows: int = 4000,
    finetune_lr: float | None = None,
    n_rounds: int = 1,
    random_state: int = 0,
    n_jobs: int = 1,
    progress=None,
    info: dict | None = None,
) -> dict[str, np.ndarray]:
    """LSTM for all folds: pre-train per group of test sites, fine-tune briefly per fold.

    For each group ``g`` of test sites (per universe), one LSTM is trained (with its own early
    stopping on validation sites drawn from its training sites) on the universe's sites outside
    ``g``. For each test site ``f`` in ``g``, a copy of that model is fine-tuned for
    ``finetune_epochs`` epochs of at most ``finetune_windows`` windows drawn from ``pools[f]``
    (which adds the other sites of ``g`` that the pre-trained model has not seen) at a tenth of
    the learning rate, then predicts ``f``. No model ever sees its test site: ``f`` is outside
    the pre-training set and outside its own fine-tuning set. Cost: ``n_groups`` full fits plus
    one short fine-tune per fold, instead of one full fit per fold.

    With ``n_rounds > 1`` this is repeated with a new partition of the test sites and the
    LSTM's ``random_state`` increased by the round number, and a site's prediction is the mean
    of its ``n_rounds`` predictions: a seed ensemble (each member as above, none seeing the
    site), ``n_rounds`` times the cost. Round 0 is the ``n_rounds = 1`` computation itself.

    Parameters
    ----------
    X, Y : pandas.DataFrame
        Features and targets (row-aligned with ``sites`` and ``dates``).
    sites, dates : ndarray
        Site id and day of each row.
    pools : mapping
        Test site -> training sites.
    params : dict
        :class:`fluxcore.learners.lstm.LSTMLearner` hyperparameters.
    n_groups : int
        Pre-trained models per universe.
    finetune_epochs, finetune_windows, finetune_lr
        Fine-tuning budget per fold (``finetune_epochs = 0`` predicts with the group model).
    n_rounds : int
        Ensemble members per site (partitions of the test sites, LSTM seeds).
    random_state : int
        Seed of the grouping; the LSTM's own ``random_state`` is in ``params``.
    n_jobs : int
        Group models trained at the same time, each in its own spawned process with the
        LSTM's own ``n_threads`` (1: all in this process). The result does not depend on
        ``n_jobs``. Spawned processes re-import the calling script: guard a script's entry
        point with ``if __name__ == "__main__":``.
    progress : callable, optional
        ``progress(done, message)`` after each fold of each round (``done`` counts up to
        ``n_folds * n_rounds``).
    info : dict, optional
        Filled with ``{test site: {"val_sites": [...], "group_size": n}}``: the early-stopping
        validation sites of the fold's pre-trained models (training sites of those models;
        with several rounds the union over rounds) and the size of its round-0 group.

    Returns
    -------
    dict
        Test site -> predictions (rows of the site, number of targets).
    """
    n_rounds = int(n_rounds)
    if n_rounds < 1:
        raise ConfigError(f"lstm strategy option n_rounds must be at least 1, got {n_rounds}")
    sites, pools, rows_of = _site_rows(sites, pools)
    params = dict(params or {})
    dates = np.asarray(dates)
    rng = np.random.default_rng(random_state)
    jobs = []  # (round, LSTM params, training sites of the group model, test sites of the group)
    for k in range(n_rounds):
        p = dict(params)
        if k and p.get("random_state") is not None:
            p["random_state"] = int(p["random_state"]) + k
        for universe, tests in sorted(_universes(pools).items(), key=lambda kv: sorted(kv[1])):
            for group in _split_groups(sorted(tests), n_groups, rng):
                jobs.append((k, p, sorted(universe - set(group)), sorted(group)))
    payload = (X, Y, sites, dates, rows_of, pools,
               int(finetune_epochs), int(finetune_windows), finetune_lr)
    sums: dict[str, np.ndarray] = {}
    done = 0

    def collect(job, result) -> None:
        nonlocal done
        k, _, _, group = job
        preds, val = result
        for f in group:
            sums[f] = preds[f] if k == 0 else sums[f] + preds[f]
            if info is not None:
                if k == 0:
                    info[f] = {"val_sites": val, "group_size": len(group)}
                else:
                    info[f]["val_sites"] = sorted(set(info[f]["val_sites"]) | set(val))
            done += 1
            if progress is not None:
                progress(done, f"lstm {f}" + (f" (round {k + 1}/{n_rounds})" if n_rounds > 1 else ""))

    workers = min(max(1, int(n_jobs)), len(jobs))
    if workers == 1:
        for job in jobs:
            collect(job, _lstm_group_job(payload, job))
    else:
        import concurrent.futures as cf
        import multiprocessing as mp

        # spawn: safe with torch; each worker gets the data once and trains whole group models
        # (one torch thread each). Results are collected in job order: identical to n_jobs=1.
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                    initializer=_lstm_pool_init, initargs=(payload,)) as ex:
            futures = [ex.submit(_lstm_pool_task, job) for job in jobs]
            try:
                for job, fut in zip(jobs, futures, strict=True):
                    collect(job, fut.result())
            except BaseException:
                # a cancelled run must not keep training in the background; the pool then marks
                # the pending futures broken (cancelling them first makes its manager thread fail)
                for proc in list((getattr(ex, "_processes", None) or {}).values()):
                    proc.terminate()
                raise
    return sums if n_rounds == 1 else {f: v / n_rounds for f, v in sums.items()}


_LSTM_PAYLOAD = None


def _lstm_pool_init(payload) -> None:
    global _LSTM_PAYLOAD
    _LSTM_PAYLOAD = payload


def _lstm_pool_task(job):
    return _lstm_group_job(_LSTM_PAYLOAD, job)


def _lstm_group_job(payload, job) -> tuple[dict[str, np.ndarray], list[str]]:
    """Pre-train one group model and fine-tune / predict each of its test sites.

    Returns ``({test site: predictions}, early-stopping validation sites of the group model)``.
    """
    import copy

    from .learners.lstm import LSTMLearner

    X, Y, sites, dates, rows_of, pools, finetune_epochs, finetune_windows, finetune_lr = payload
    _, params, train, group = job
    fit_rows = _rows_for(rows_of, train)
    base = LSTMLearner(**params).fit(
        X.iloc[fit_rows], Y.iloc[fit_rows], sites=sites[fit_rows], dates=dates[fit_rows])
    out = {}
    trained = set(train)
    for f in group:
        model = base
        extra = sorted(set(pools[f]) - trained)
        if finetune_epochs > 0 and extra:
            model = copy.deepcopy(base)
            model.max_windows_per_epoch = int(finetune_windows)
            ft_rows = _rows_for(rows_of, pools[f])
            model.fine_tune(X.iloc[ft_rows], Y.iloc[ft_rows], sites=sites[ft_rows],
                            dates=dates[ft_rows], epochs=finetune_epochs, lr=finetune_lr)
        te = rows_of[f]
        out[f] = model.predict(X.iloc[te], sites=sites[te], dates=dates[te])
    return out, sorted(map(str, getattr(base, "val_sites_", [])))


# -------------------------------------------------------------------------- dispatch
#: Default options of the fast strategies (``RunConfig.strategy_options`` overrides them).
DEFAULT_OPTIONS: dict[str, dict] = {
    "rf": {"n_groups": 10},
    "svm": {"n_groups": 10, "n_rounds": 3, "solver": "svr"},
    "lstm": {"n_groups": 4, "finetune_epochs": 1, "finetune_windows": 4000, "finetune_lr": None,
             "n_rounds": 1},
}

#: What each fast strategy is, for manifests and documentation.
DESCRIPTIONS: dict[str, str] = {
    "mlr": "exact LOSO OLS from per-site sufficient statistics",
    "rf": "site-level out-of-bag forest (trees grown without a group of sites; one tree per "
          "target when the targets' missing rows differ)",
    "svm": "the per-fold SVR model (Nystroem + linear epsilon-SVR) fitted once per group of sites, "
           "each predicting only sites outside its training set, averaged over n_rounds "
           "partitions (solver 'lssvm': least-squares "
           "SVR with exact per-site ridge)",
    "lstm": "LSTM pre-trained per group of sites, fine-tuned briefly per fold on its own pool "
            "(n_rounds > 1: mean of that many such members with new groups and seeds)",
}


def fast_kind(template, weighted: bool = False) -> str | None:
    """Fast strategy of an unfitted learner, or None when it must run fold by fold.

    ``mlr`` (with intercept) supports fuzzy site weights; the others only unweighted runs.
    """
    name = getattr(template, "name", None)
    if name == "mlr" and template.get_params().get("fit_intercept", True):
        return "mlr"
    if weighted:
        return None
    if name in ("rf", "svm", "lstm"):
        return name
    return None


def run_fast(kind: str, template, X, Y, sites: np.ndarray, dates: np.ndarray, pools: Pools, *,
             site_weights=None, options: dict | None = None, n_jobs: int = 1,
             n_processes: int = 1, progress=None, info: dict | None = None) -> dict[str, np.ndarray]:
    """Run the fast strategy ``kind`` with the hyperparameters of ``template``.

    Parameters
    ----------
    kind : {"mlr", "rf", "svm", "lstm"}
        From :func:`fast_kind`.
    template : FluxLearner
        Unfitted learner whose hyperparameters are used: ``rf`` trees per site =
        ``n_estimators`` (and its ``min_samples_leaf``, ``max_features``, ``max_samples``,
        ``max_depth``); ``svm`` fits the learner itself per group (``solver="svr"``, default)
        or, with ``solver="lssvm"``, uses ``n_components``, ``gamma`` and ridge penalty
        ``alpha = 1 / C``; ``lstm`` passes every hyperparameter to each group model.
    X, Y : pandas.DataFrame
        Features and targets.
    sites, dates : ndarray
        Site and day of each row.
    pools : mapping
        Test site -> training sites.
    site_weights : mapping, optional
        Fuzzy site weights per test site (``mlr`` only).
    options : dict, optional
        Strategy options (see :data:`DEFAULT_OPTIONS`).
    n_jobs : int
        Threads growing ``rf`` trees or fitting ``svm`` group models.
    n_processes : int
        Worker processes training ``lstm`` group models (each with the LSTM's own
        ``n_threads``). Spawned processes re-import the calling script, so a script must guard
        its entry point with ``if __name__ == "__main__":``; the runner passes its ``jobs``
        here, so only a run that already asked for worker processes gets them.
    progress : callable, optional
        ``progress(fraction_done)``; may raise to cancel.
    info : dict, optional
        Filled with per-fold information (``lstm``: early-stopping validation sites).
    """
    p = template.get_params()
    opt = {**DEFAULT_OPTIONS.get(kind, {}), **(options or {})}
    seed = p.get("random_state")
    seed = 0 if seed is None else int(seed)
    sites = np.asarray(sites).astype(str)
    if kind == "mlr":
        from .learners.mlr import used_columns

        X = X.iloc[:, used_columns(list(X.columns), bool(p.get("site_level", False)))]
        out = mlr_loso(X.to_numpy(dtype=float), Y.to_numpy(dtype=float), sites, pools,
                       site_weights=site_weights)
    elif kind == "rf":
        ms = p.get("max_samples")
        out = rf_site_oob(X.to_numpy(dtype=float), Y.to_numpy(dtype=float), sites, pools,
                          trees_per_site=int(p.get("n_estimators", 100)), n_groups=int(opt["n_groups"]),
                          max_samples=1.0 if ms is None else ms,
                          min_samples_leaf=p.get("min_samples_leaf", 5),
                          max_features=p.get("max_features", 0.5), max_depth=p.get("max_depth"),
                          random_state=seed, n_jobs=max(1, int(n_jobs)), progress=progress)
    elif kind == "svm" and opt.get("solver", "svr") == "svr":
        out = group_holdout(template, X, Y, sites, dates, pools, n_groups=int(opt["n_groups"]),
                            n_rounds=int(opt["n_rounds"]), random_state=seed,
                            n_jobs=max(1, int(n_jobs)), progress=progress)
    elif kind == "svm":
        if opt.get("solver") != "lssvm":
            raise ConfigError(f"svm strategy option solver must be 'svr' or 'lssvm', got {opt.get('solver')!r}")
        gamma = p.get("gamma", "scale")
        out = lssvm_group_loso(X.to_numpy(dtype=float), Y.to_numpy(dtype=float), sites, pools,
                               n_groups=int(opt["n_groups"]), n_components=int(p.get("n_components", 400)),
                               gamma=None if isinstance(gamma, str) else float(gamma),
                               alpha=1.0 / float(p.get("C", 1.0)), random_state=seed, progress=progress)
    elif kind == "lstm":
        params = dict(p)  # torch threads: the learner's own n_threads
        n_rounds = int(opt.get("n_rounds", 1))
        n_folds = max(1, len(pools)) * max(1, n_rounds)
        out = lstm_group_finetune(
            X, Y, sites, dates, pools, params=params, n_groups=int(opt["n_groups"]),
            finetune_epochs=int(opt["finetune_epochs"]), finetune_windows=int(opt["finetune_windows"]),
            finetune_lr=opt.get("finetune_lr"), n_rounds=n_rounds,
            random_state=seed, n_jobs=max(1, int(n_processes)), info=info,
            progress=None if progress is None else (lambda done, msg: progress(done / n_folds)))
    else:
        raise ConfigError(f"unknown fast strategy {kind!r}")
    return out


__all__ = ["mlr_loso", "rf_site_oob", "lssvm_group_loso", "group_holdout", "lstm_group_finetune", "fast_kind",
           "run_fast", "DEFAULT_OPTIONS", "DESCRIPTIONS"]
