"""The lazy CART tree: scikit-learn's tree for the rows it predicts, grown only where they go."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor
from test_strategies import make_problem

from fluxcore.learners import rf_fast
from fluxcore.learners.lazytree import (
    HAVE_NUMBA,
    lazy_tree_predict,
    lazy_tree_predict_sample,
    n_split_features,
    splitmix_permutation,
)
from fluxcore.learners.rf_fast import rf_site_oob

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba")


def _data(seed: int, n: int = 1500, p: int = 5, outputs: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)).astype(np.float32)
    x[:, 0] = np.round(x[:, 0], 1)  # ties in one feature
    y = np.sin(2 * x[:, 1]) + x[:, 2] * x[:, 3] + rng.normal(size=n) * 0.3
    if outputs == 2:
        y = np.c_[y, np.cos(x[:, 4]) + rng.normal(size=n) * 0.2]
    return x, y, rng.normal(size=(400, p)).astype(np.float32)


@pytest.mark.parametrize("engine", ["numpy", pytest.param("numba", marks=needs_numba)])
@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lazy_tree_equals_sklearn_with_all_features(seed, outputs, engine):
    """With every feature tried at each split there is no random draw: the lazy tree's
    predictions equal scikit-learn's (depth 6 and leaves of 5 or more rows, so no two features
    cut a node into the same two sets; with one-row leaves, one extreme row can be split off by
    two features alike, and the tie goes either way)."""
    x, y, xt = _data(seed, outputs=outputs)
    for msl in (5, 20):
        sk = DecisionTreeRegressor(min_samples_leaf=msl, max_depth=6, random_state=0).fit(x, y)
        lz = lazy_tree_predict(x, y, xt, min_samples_leaf=msl, max_features=None, max_depth=6,
                               rng=np.random.default_rng(0), engine=engine)
        np.testing.assert_allclose(lz, sk.predict(xt).reshape(len(xt), -1), rtol=0, atol=1e-12)


def test_lazy_tree_full_depth_matches_sklearn_but_for_ties():
    """Grown to full depth, only rows whose path meets a tie between equally good splits (a
    small node that several features cut the same way) may differ."""
    same = total = 0
    for seed in range(4):
        x, y, xt = _data(seed)
        sk = DecisionTreeRegressor(min_samples_leaf=5, random_state=0).fit(x, y).predict(xt)
        lz = lazy_tree_predict(x, y, xt, min_samples_leaf=5, max_features=None, rng=np.random.default_rng(0))
        same += int(np.isclose(lz[:, 0], sk, rtol=0, atol=1e-12).sum())
        total += len(xt)
    assert same / total > 0.97


def test_lazy_tree_leaves_respect_min_samples_leaf():
    """Every prediction is the mean of at least ``min_samples_leaf`` training targets: with
    integer targets 0/1 and ``min_samples_leaf=7`` a leaf mean is a multiple of 1/k, k >= 7."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(800, 3)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=800) * 0.5 > 0).astype(float)
    pr = lazy_tree_predict(x, y, x[:200], min_samples_leaf=7, max_features=0.7, rng=np.random.default_rng(1))[:, 0]
    sk = DecisionTreeRegressor(min_samples_leaf=7, max_features=0.7, random_state=1).fit(x, y)
    leaf_sizes = np.bincount(sk.apply(x))
    assert leaf_sizes[leaf_sizes > 0].min() >= 7  # the reference holds the rule too
    assert ((pr > 0) & (pr < 1)).any()  # mixed leaves exist, so the check below bites
    for v in np.unique(pr):
        assert any(abs(v * k - round(v * k)) < 1e-9 for k in range(7, 800)), v


def test_lazy_tree_is_deterministic_and_handles_edge_cases():
    x, y, xt = _data(3)
    a = lazy_tree_predict(x, y, xt, max_features=0.5, rng=np.random.default_rng(4))
    b = lazy_tree_predict(x, y, xt, max_features=0.5, rng=np.random.default_rng(4))
    c = lazy_tree_predict(x, y, xt, max_features=0.5, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert lazy_tree_predict(x, y, xt[:0], rng=np.random.default_rng(0)).shape == (0, 1)
    const = lazy_tree_predict(x, np.full(len(x), 2.5), xt, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(const, 2.5)
    x1 = x.copy()
    x1[:, :] = 1.0  # no feature can split: the root is the leaf
    np.testing.assert_allclose(lazy_tree_predict(x1, y, xt, rng=np.random.default_rng(0)), y.mean())


@pytest.mark.parametrize("mf", [None, 1, 3, 0.5, 0.33, 1.0, "sqrt", "log2"])
def test_split_feature_count_follows_sklearn(mf):
    x, y, _ = _data(0, n=200, p=11)
    assert n_split_features(mf, 11) == DecisionTreeRegressor(max_features=mf).fit(x, y).max_features_


def _engines_agree(a: np.ndarray, b: np.ndarray) -> None:
    """Same tree, draw for draw: equal but for the last bits of a leaf mean (NumPy sums a
    leaf pairwise, the kernel in order)."""
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@needs_numba
@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize(("msl", "mf", "depth"), [(5, 0.5, None), (1, 0.3, None), (20, None, 6), (3, 2, None),
                                                  (2, "sqrt", 9)])
def test_compiled_kernel_grows_the_numpy_tree(msl, mf, depth, outputs):
    """The compiled kernel and the NumPy implementation draw the same features at every node and
    choose the same splits: with random feature draws, ties in a feature, a feature constant
    in part of the rows and a constant one, their predictions agree to rounding."""
    for seed in range(3):
        x, y, xt = _data(seed, n=2000, p=7, outputs=outputs)
        x[:, 5] = np.round(x[:, 5])  # few values: constant in many deep nodes
        x[:, 6] = 1.0  # constant everywhere
        kw = dict(min_samples_leaf=msl, max_features=mf, max_depth=depth)
        a = lazy_tree_predict(x, y, xt, rng=np.random.default_rng(seed), engine="numpy", **kw)
        b = lazy_tree_predict(x, y, xt, rng=np.random.default_rng(seed), engine="numba", **kw)
        _engines_agree(a, b)
        assert len(np.unique(b)) > 10  # a real tree, not one leaf


@needs_numba
def test_compiled_permutation_equals_python():
    """The kernel's Fisher-Yates shuffle from splitmix64 draws what :func:`splitmix_permutation`
    draws, and advances the state alike."""
    from fluxcore.learners._lazytree_jit import _permute

    for state0, p in [(0, 5), (12345, 42), (2**63 + 7, 11), (2**64 - 1, 3)]:
        state = np.array([state0], dtype=np.uint64)
        py_state = state0
        for _ in range(4):
            perm = np.arange(p, dtype=np.int64)
            _permute(state, perm)
            ref, py_state = splitmix_permutation(py_state, p)
            np.testing.assert_array_equal(perm, ref)
            assert int(state[0]) == py_state
    perms = {tuple(splitmix_permutation(s, 6)[0]) for s in range(200)}
    assert len(perms) > 150  # many of the 720 orders, not a few


@pytest.mark.parametrize("engine", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_lazy_tree_of_a_sample_equals_the_tree_of_its_copy(engine):
    """``lazy_tree_predict_sample`` (rows of X with missing values filled) grows the tree
    ``lazy_tree_predict`` grows on that sample built in Python; repeats in the sample count."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:5, 0] = -0.0  # -0.0 and 0.0 are one value
    X[5:10, 0] = 0.0
    miss = np.isnan(X)
    fill = np.nanmean(X, axis=0).astype(np.float32)
    pick = np.sort(rng.integers(0, 3000, 2500))
    assert len(np.unique(pick)) < len(pick)
    y = rng.normal(size=(2500, 2))
    xt = rng.normal(size=(200, 6)).astype(np.float32)
    ref = lazy_tree_predict(np.where(miss[pick], fill, X[pick]), y, xt, rng=np.random.default_rng(3),
                            engine="numpy")
    got = lazy_tree_predict_sample(X, miss, fill, pick, y, xt, rng=np.random.default_rng(3), engine=engine)
    _engines_agree(got, ref)
    with pytest.raises(ValueError, match="engine"):
        lazy_tree_predict(X[:10], y[:10], xt, rng=np.random.default_rng(0), engine="gpu")


@pytest.mark.parametrize("have_numba", [True, False])
def test_rf_site_oob_grow_auto_picks_the_builder(monkeypatch, have_numba):
    """``grow="auto"``: with the compiled kernel every tree is lazy (it is faster than
    scikit-learn's builder even for groups of 20 sites); without it, a small selection (groups of
    three test sites) grows lazy NumPy trees and all sites as tests (groups of four) grow
    scikit-learn's. Lazy and
    full forests agree closely (same trees in distribution)."""
    if have_numba and not HAVE_NUMBA:
        pytest.skip("needs numba")
    monkeypatch.setattr(rf_fast, "HAVE_NUMBA", have_numba)
    X, Y, sites, pools_all = make_problem(n_sites=12, seed=4, missing=0.05)
    tests = ["S00", "S03", "S06"]
    pools_zone = {t: [s for s in np.unique(sites) if s != t] for t in tests}
    calls = {"sk": 0, "lazy": 0}
    orig_fit, orig_lazy = DecisionTreeRegressor.fit, rf_fast.lazy_tree_predict_sample

    def fit(self, *a, **k):
        calls["sk"] += 1
        return orig_fit(self, *a, **k)

    def lazy(*a, **k):
        calls["lazy"] += 1
        assert k["engine"] == ("numba" if have_numba else "numpy")
        return orig_lazy(*a, **k)

    monkeypatch.setattr(DecisionTreeRegressor, "fit", fit)
    monkeypatch.setattr(rf_fast, "lazy_tree_predict_sample", lazy)
    lazy_out = rf_site_oob(X, Y, sites, pools_zone, trees_per_site=30, n_groups=10, n_jobs=1)
    assert calls == {"sk": 0, "lazy": 30 * 3 * 2}  # one group per test site, two targets' masks
    rf_site_oob(X, Y, sites, pools_all, trees_per_site=2, n_groups=3, n_jobs=1)
    assert (calls["sk"] > 0) != have_numba
    calls.update(sk=0, lazy=0)
    full = rf_site_oob(X, Y, sites, pools_zone, trees_per_site=30, n_groups=10, grow="full", n_jobs=1)
    assert calls["lazy"] == 0 and calls["sk"] == 180
    for t in tests:
        assert np.isfinite(lazy_out[t]).all()
        for j in range(Y.shape[1]):
            assert np.corrcoef(lazy_out[t][:, j], full[t][:, j])[0, 1] > 0.9
    with pytest.raises(ValueError, match="grow"):
        rf_site_oob(X, Y, sites, pools_zone, trees_per_site=2, grow="sometimes", n_jobs=1)


def test_lazy_forest_same_in_worker_processes_and_threads(monkeypatch):
    """Without the compiled kernel, lazy trees grow in worker processes (NumPy holds the GIL
    between calls), and the predictions equal those of threads and of one job; the compiled
    kernel grows them in threads, whose number does not change the predictions either."""
    X, Y, sites, _ = make_problem(n_sites=10, seed=6, missing=0.05)
    tests = ["S01", "S04", "S07", "S08"]
    pools = {t: [s for s in np.unique(sites) if s != t] for t in tests}
    kw = dict(trees_per_site=6, n_groups=10, random_state=3)
    if HAVE_NUMBA:
        two, one = (rf_site_oob(X, Y, sites, pools, n_jobs=j, **kw) for j in (2, 1))
        for t in tests:
            np.testing.assert_array_equal(two[t], one[t])
    monkeypatch.setattr(rf_fast, "HAVE_NUMBA", False)
    procs = rf_site_oob(X, Y, sites, pools, n_jobs=2, n_processes=2, **kw)
    threads = rf_site_oob(X, Y, sites, pools, n_jobs=2, n_processes=1, **kw)
    serial = rf_site_oob(X, Y, sites, pools, n_jobs=1, **kw)
    for t in tests:
        np.testing.assert_array_equal(procs[t], threads[t])
        np.testing.assert_array_equal(procs[t], serial[t])
        if HAVE_NUMBA:  # the same trees as the compiled kernel's, to rounding
            _engines_agree(procs[t], two[t])
