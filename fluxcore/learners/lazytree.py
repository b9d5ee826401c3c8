"""Lazy CART regression tree: grow only the branches that given test rows reach.

A regression tree (Breiman et al. 1984, CART) predicts a row by the mean target of the leaf it
falls into; the split of a node depends only on the training rows in that node. So the
predictions of a fixed set of test rows need only the nodes on their paths from the root:
branches that no test row reaches can be left ungrown ("lazy" decision trees, Friedman,
Kohavi and Yun 1996, AAAI-96, 717-724). In the site-level out-of-bag forest
(:func:`fluxcore.learners.rf_fast.rf_site_oob`) each tree predicts one group of test towers:
a group of a few arid towers reaches a few per cent of a full tree's nodes, a group of 20
towers (W) most of them.

The tree is the one :class:`sklearn.tree.DecisionTreeRegressor` grows (``criterion=
"squared_error"``, ``splitter="best"``): at each node ``max_features`` features are drawn
at random, constant ones included (they count toward the number but are not split on; if all
are constant, more are drawn until one is not), on each every threshold between distinct sorted
values is tried (each side at least ``min_samples_leaf`` rows; float32 values closer than
``FEATURE_THRESHOLD``, compared in float64, are one value), the split of largest impurity
decrease is taken (the first found on exact ties, which are common among static site
variables and are broken by rounding, in scikit-learn as here), the threshold is the midpoint of the two values; a node with fewer
than ``2 * min_samples_leaf`` rows, a constant target, or at ``max_depth`` is a leaf. With all
features tried (``max_features=1.0``) its predictions equal scikit-learn's (tested); with
fewer, the random feature draws differ (same distribution, other numbers).

A feature is sorted the first time a node draws it; a node's rows, in each sorted feature's
order, are split into the children's by a stable partition, so no descendant sorts it again.

Two implementations grow the same tree, draw for draw: a compiled kernel
(:mod:`fluxcore.learners._lazytree_jit`, Numba; the default) and the NumPy one below (used
when Numba cannot be imported, and as the kernel's reference in the tests). The features of a
node are drawn by a Fisher-Yates shuffle from a splitmix64 stream
(:func:`splitmix_permutation`) seeded once per tree from ``rng``, so both draw alike.
"""

from __future__ import annotations

import importlib.util

import numpy as np

__all__ = ["lazy_tree_predict", "lazy_tree_predict_sample", "n_split_features", "splitmix_permutation",
           "HAVE_NUMBA"]

#: Feature values closer than this are one value (as scikit-learn's ``FEATURE_THRESHOLD``).
FEATURE_THRESHOLD = 1e-7

#: Whether the compiled kernel can be used (Numba is a dependency; without it, e.g. in a
#: broken install, the NumPy implementation grows the same trees, several times slower).
HAVE_NUMBA = importlib.util.find_spec("numba") is not None


def _jit():
    """The compiled kernels' module, imported on first use (Numba's import takes about a second;
    the first call in a fresh installation compiles for several seconds, later processes read
    the compiled code from Numba's cache)."""
    from . import _lazytree_jit

    return _lazytree_jit


def _engine(engine: str) -> bool:
    """Whether ``engine`` selects the compiled kernel."""
    if engine not in ("auto", "numba", "numpy"):
        raise ValueError(f"engine must be 'auto', 'numba' or 'numpy', not {engine!r}")
    if engine == "numba" and not HAVE_NUMBA:
        raise ImportError("engine='numba' needs the numba package (pip install numba)")
    return engine != "numpy" and HAVE_NUMBA


_M64 = (1 << 64) - 1


def splitmix_permutation(state: int, p: int) -> tuple[np.ndarray, int]:
    """A permutation of ``range(p)`` and the next state (Fisher-Yates from splitmix64).

    splitmix64: Steele, Lea and Flood 2014, doi:10.1145/2714064.2660195. The compiled kernel
    draws the same permutations from the same state (tested).

    Parameters
    ----------
    state : int
        Generator state, 0 <= state < 2**64.
    p : int
        Number of features.

    Returns
    -------
    perm : numpy.ndarray of int
    state : int
    """
    perm = list(range(p))
    for i in range(p - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & _M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z ^= z >> 31
        j = z % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return np.asarray(perm, dtype=np.intp), state


def n_split_features(max_features: float | int | str | None, p: int) -> int:
    """Features tried at each split, as scikit-learn counts them (``p`` features in all)."""
    if max_features is None:
        return p
    if isinstance(max_features, str):
        if max_features == "sqrt":
            return max(1, int(np.sqrt(p)))
        if max_features == "log2":
            return max(1, int(np.log2(p)))
        raise ValueError(f"max_features must be a fraction, a count, 'sqrt' or 'log2', not {max_features!r}")
    if isinstance(max_features, (int, np.integer)) and not isinstance(max_features, bool):
        return max(1, min(int(max_features), p))
    return max(1, int(float(max_features) * p))


def _order_keys(v: np.ndarray) -> np.ndarray:
    """uint64 keys whose high 32 bits order like the float32 values ``v`` (no NaN)."""
    u = v.view(np.uint32)
    u = np.where(u >> 31 == 1, ~u, u | np.uint32(0x80000000))  # IEEE 754 bits -> unsigned order
    return u.astype(np.uint64) << np.uint64(32)


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` from :func:`_order_keys`: the position goes into
    the low half, so one plain sort of uint64 (SIMD-accelerated in NumPy) orders values and
    breaks ties by position."""
    k = keys | np.arange(len(keys), dtype=np.uint64)
    k.sort()
    return (k & np.uint64(0xFFFFFFFF)).astype(np.intp)


def lazy_tree_predict(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    *,
    min_samples_leaf: int = 5,
    max_features: float | int | str | None = 0.5,
    max_depth: int | None = None,
    rng: np.random.Generator,
    engine: str = "auto",
) -> np.ndarray:
    """Predictions of ``x_test`` by a CART tree grown on ``(x, y)``, growing only their branches.

    Parameters
    ----------
    x : numpy.ndarray, shape (n, p)
        Training predictors, finite (impute first).
    y : numpy.ndarray, shape (n,) or (n, t)
        Training targets, finite; several columns give a multi-output tree (impurity summed
        over the outputs, as scikit-learn).
    x_test : numpy.ndarray, shape (m, p)
        Rows to predict, finite.
    min_samples_leaf : int
        Least training rows in a leaf.
    max_features : float, int, str or None
        Features tried at each split (:func:`n_split_features`).
    max_depth : int or None
        Greatest depth of a leaf (None: unlimited).
    rng : numpy.random.Generator
        Seeds the feature draws (one number per tree).
    engine : {"auto", "numba", "numpy"}
        The compiled kernel (``"numba"``; ``"auto"``: it when Numba is installed) or the NumPy
        implementation. Both grow the same tree (ties in float rounding aside).

    Returns
    -------
    numpy.ndarray, shape (m, t)
        The mean training target of the leaf each test row falls into.
    """
    x = np.asarray(x, dtype=np.float32)
    return lazy_tree_predict_sample(x, np.zeros(x.shape, dtype=bool), np.zeros(x.shape[1], dtype=np.float32),
                                    np.arange(x.shape[0]), y, x_test, min_samples_leaf=min_samples_leaf,
                                    max_features=max_features, max_depth=max_depth, rng=rng, engine=engine)


def lazy_tree_predict_sample(
    X: np.ndarray,
    miss: np.ndarray,
    fill: np.ndarray,
    pick: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    *,
    min_samples_leaf: int = 5,
    max_features: float | int | str | None = 0.5,
    max_depth: int | None = None,
    rng: np.random.Generator,
    engine: str = "auto",
) -> np.ndarray:
    """:func:`lazy_tree_predict` on the rows ``pick`` of ``X``, missing values filled by ``fill``.

    The same tree as ``lazy_tree_predict(np.where(miss[pick], fill, X[pick]), y, x_test, ...)``,
    without building that copy in Python: the compiled kernel gathers the sample (rows in
    increasing order read ``X`` nearly sequentially: sort ``pick`` first) straight into the
    layout the tree needs.

    Parameters
    ----------
    X : numpy.ndarray of float32, shape (N, p)
        All rows; NaN where ``miss``.
    miss : numpy.ndarray of bool, shape (N, p)
        Missing predictors.
    fill : numpy.ndarray of float32, shape (p,)
        Value of a missing predictor (e.g. the training mean).
    pick : numpy.ndarray of int, shape (n,)
        The sample's rows of ``X`` (repeats allowed: a bootstrap sample).
    y : numpy.ndarray, shape (n,) or (n, t)
        The sample's targets.
    x_test, min_samples_leaf, max_features, max_depth, rng, engine
        As in :func:`lazy_tree_predict`.

    Returns
    -------
    numpy.ndarray, shape (m, t)
    """
    n, p = len(pick), X.shape[1]
    y = np.ascontiguousarray(np.asarray(y, dtype=np.float64).reshape(n, -1))
    if n == 0 or x_test.shape[0] == 0:
        return np.full((x_test.shape[0], y.shape[1]), np.nan)
    jit = _engine(engine)
    seed = int(rng.integers(0, 2**63))
    k = n_split_features(max_features, p)
    msl = max(int(min_samples_leaf), 1)
    depth = -1 if max_depth is None else int(max_depth)
    xtT = np.ascontiguousarray(np.asarray(x_test, dtype=np.float32).T)
    if jit:
        kernels = _jit()
        xT, key = kernels.gather_sample(np.ascontiguousarray(X, dtype=np.float32), np.ascontiguousarray(miss),
                                        np.asarray(fill, dtype=np.float32), np.asarray(pick, dtype=np.int64))
        return kernels.grow_lazy(xT, key, y, xtT, msl, k, depth, np.uint64(seed))
    x = np.where(miss[pick], fill, X[pick]).astype(np.float32)
    xT = np.ascontiguousarray(x.T) + np.float32(0.0)  # (p, n); -0.0 -> 0.0
    return _grow_numpy(xT, _order_keys(xT), y, xtT, msl, k, depth, seed)


def _grow_numpy(xT: np.ndarray, keys: np.ndarray, y: np.ndarray, xtT: np.ndarray, msl: int, k: int,
                max_depth: int, seed: int) -> np.ndarray:
    """The NumPy implementation of the lazy tree (arguments as the compiled kernel's, ``keys``
    from :func:`_order_keys`; ``max_depth`` < 0: unlimited)."""
    p, n0 = xT.shape
    out = np.empty((xtT.shape[1], y.shape[1]))
    going_left = np.zeros(n0, dtype=bool)
    # a node: its rows in each feature's increasing order (rows of features not sorted yet hold
    # the node's rows in some order), which features are sorted, which are constant
    root = np.tile(np.arange(n0), (p, 1))
    stack = [(root, np.zeros(p, dtype=bool), np.zeros(p, dtype=bool), np.arange(xtT.shape[1]), 0)]
    while stack:
        srt, done, const, te, depth = stack.pop()
        n = srt.shape[1]
        yn = y[srt[0]]
        if n < 2 * msl or (max_depth >= 0 and depth >= max_depth) or np.all(yn.max(0) <= yn.min(0)):
            out[te] = yn.mean(axis=0)
            continue
        # scikit-learn's draw: k features at random, constant ones included (they count toward
        # k but are not split on); when all k are constant, draw on until one is not
        drawn, seed = splitmix_permutation(seed, p)
        const, done = const.copy(), done.copy()
        feats = drawn[:0]
        lo = 0
        while lo < p and len(feats) == 0:
            chunk = drawn[lo:lo + (k if lo == 0 else 1)]
            lo += len(chunk)
            cand = chunk[~const[chunk]]
            for f in cand[~done[cand]]:  # sort a feature the first time a node needs it
                srt[f] = srt[f][_stable_argsort(keys[f, srt[f]])]
                done[f] = True
            # float32 values compared in float64, as scikit-learn's splitter does
            nonconst = xT[cand, srt[cand, -1]].astype(np.float64) > xT[cand, srt[cand, 0]] + np.float64(FEATURE_THRESHOLD)
            const[cand[~nonconst]] = True  # constant here, so in every descendant
            feats = cand[nonconst]
        if len(feats) == 0:
            out[te] = yn.mean(axis=0)
            continue
        idx = srt[feats]  # (k, n) rows of the node in each feature's order
        xs = xT[feats[:, None], idx].astype(np.float64)
        cs = np.cumsum(y[idx], axis=1)  # (k, n, t) running target sums from the left
        tot = cs[:, -1:, :]
        nl = np.arange(1, n + 1, dtype=np.float64)[None, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = (cs * cs / nl + (tot - cs) ** 2 / (n - nl)).sum(axis=2)  # impurity proxy
        ok = np.zeros((len(feats), n), dtype=bool)
        ok[:, msl - 1:n - msl] = xs[:, msl:n - msl + 1] > xs[:, msl - 1:n - msl] + FEATURE_THRESHOLD
        gain[~ok] = -np.inf
        j, i = divmod(int(np.argmax(gain)), n)
        if not ok[j, i]:  # no admissible split
            out[te] = yn.mean(axis=0)
            continue
        a, b = float(xs[j, i]), float(xs[j, i + 1])
        thr = a / 2.0 + b / 2.0
        if thr == b or not np.isfinite(thr):
            thr = a
        left_test = xtT[feats[j], te] <= np.float64(thr)  # compared in float64, as scikit-learn
        going_left[idx[j, :i + 1]] = True
        to_left = going_left[srt]  # (p, n)
        going_left[idx[j, :i + 1]] = False
        for side, tests, size in ((~to_left, te[~left_test], n - i - 1), (to_left, te[left_test], i + 1)):
            if len(tests):  # a stable partition keeps each feature's order
                stack.append((srt[side].reshape(p, size), done, const, tests, depth + 1))
    return out
