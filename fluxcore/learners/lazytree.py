"""Lazy CART regression tree: grow only the branches that given test rows reach.

A regression tree (Breiman et al. 1984, CART) predicts a row by the mean target of the leaf it
falls into; the split of a node depends only on the training rows in that node. So the
predictions of a fixed set of test rows need only the nodes on their paths from the root:
branches that no test row reaches can be left ungrown ("lazy" decision trees, Friedman,
Kohavi and Yun 1996, AAAI-96, 717-724). For the site-level out-of-bag forest of a small
selection (:func:`fluxcore.learners.rf_fast.rf_site_oob`), where each tree predicts a group of
three test towers, the test rows reach 3-8 % of a full tree's internal nodes on the 12 arid
towers, holding a quarter to a half of its split-search work.

The tree is the one :class:`sklearn.tree.DecisionTreeRegressor` grows (``criterion=
"squared_error"``, ``splitter="best"``): at each node ``max_features`` features are drawn
at random, constant ones included (they count toward the number but are not split on; if all
are constant, more are drawn until one is not), on each every threshold between distinct sorted
values is tried (each side at least ``min_samples_leaf`` rows), the split of largest
impurity decrease is taken, the threshold is the midpoint of the two values; a node with fewer
than ``2 * min_samples_leaf`` rows, a constant target, or at ``max_depth`` is a leaf. With all
features tried (``max_features=1.0``) its predictions equal scikit-learn's (tested); with
fewer, the random feature draws differ (same distribution, other numbers).

A feature is sorted the first time a node draws it; a node's rows, in each sorted feature's
order, are split into the children's by a stable partition, so no descendant sorts it again.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lazy_tree_predict", "n_split_features"]

#: Feature values closer than this are one value (as scikit-learn's ``FEATURE_THRESHOLD``).
FEATURE_THRESHOLD = 1e-7


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
        Source of the feature draws.

    Returns
    -------
    numpy.ndarray, shape (m, t)
        The mean training target of the leaf each test row falls into.
    """
    n0, p = x.shape
    msl = max(int(min_samples_leaf), 1)
    y = np.asarray(y, dtype=np.float64).reshape(n0, -1)
    t = y.shape[1]
    out = np.empty((x_test.shape[0], t))
    if n0 == 0 or x_test.shape[0] == 0:
        out[:] = np.nan
        return out
    k = n_split_features(max_features, p)
    xT = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T) + np.float32(0.0)  # (p, n); -0.0 -> 0.0
    keys = _order_keys(xT)  # (p, n) uint64: value order in the high half, free low half
    xtT = np.ascontiguousarray(np.asarray(x_test, dtype=np.float32).T)
    going_left = np.zeros(n0, dtype=bool)
    # a node: its rows in each feature's increasing order (rows of features not sorted yet hold
    # the node's rows in some order), which features are sorted, which are constant
    root = np.tile(np.arange(n0), (p, 1))
    stack = [(root, np.zeros(p, dtype=bool), np.zeros(p, dtype=bool), np.arange(x_test.shape[0]), 0)]
    while stack:
        srt, done, const, te, depth = stack.pop()
        n = srt.shape[1]
        yn = y[srt[0]]
        if n < 2 * msl or (max_depth is not None and depth >= max_depth) or np.all(yn.max(0) <= yn.min(0)):
            out[te] = yn.mean(axis=0)
            continue
        # scikit-learn's draw: k features at random, constant ones included (they count toward
        # k but are not split on); when all k are constant, draw on until one is not
        drawn = rng.permutation(p)
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
            nonconst = xT[cand, srt[cand, -1]] > xT[cand, srt[cand, 0]] + FEATURE_THRESHOLD
            const[cand[~nonconst]] = True  # constant here, so in every descendant
            feats = cand[nonconst]
        if len(feats) == 0:
            out[te] = yn.mean(axis=0)
            continue
        idx = srt[feats]  # (k, n) rows of the node in each feature's order
        xs = xT[feats[:, None], idx]
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
        left_test = xtT[feats[j], te] <= thr
        going_left[idx[j, :i + 1]] = True
        to_left = going_left[srt]  # (p, n)
        going_left[idx[j, :i + 1]] = False
        for side, tests, size in ((~to_left, te[~left_test], n - i - 1), (to_left, te[left_test], i + 1)):
            if len(tests):  # a stable partition keeps each feature's order
                stack.append((srt[side].reshape(p, size), done, const, tests, depth + 1))
    return out
