"""The lazy CART tree: scikit-learn's tree for the rows it predicts, grown only where they go."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor
from test_strategies import make_problem

from fluxcore.learners import rf_fast
from fluxcore.learners.lazytree import lazy_tree_predict, n_split_features
from fluxcore.learners.rf_fast import rf_site_oob


def _data(seed: int, n: int = 1500, p: int = 5, outputs: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)).astype(np.float32)
    x[:, 0] = np.round(x[:, 0], 1)  # ties in one feature
    y = np.sin(2 * x[:, 1]) + x[:, 2] * x[:, 3] + rng.normal(size=n) * 0.3
    if outputs == 2:
        y = np.c_[y, np.cos(x[:, 4]) + rng.normal(size=n) * 0.2]
    return x, y, rng.normal(size=(400, p)).astype(np.float32)


@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lazy_tree_equals_sklearn_with_all_features(seed, outputs):
    """With every feature tried at each split there is no random draw: the lazy tree's
    predictions equal scikit-learn's (depth 6 and leaves of 5 or more rows, so no two features
    cut a node into the same two sets; with one-row leaves, one extreme row can be split off by
    two features alike, and the tie goes either way)."""
    x, y, xt = _data(seed, outputs=outputs)
    for msl in (5, 20):
        sk = DecisionTreeRegressor(min_samples_leaf=msl, max_depth=6, random_state=0).fit(x, y)
        lz = lazy_tree_predict(x, y, xt, min_samples_leaf=msl, max_features=None, max_depth=6,
                               rng=np.random.default_rng(0))
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


def test_rf_site_oob_grows_lazily_in_small_selections_only(monkeypatch):
    """``grow="auto"``: a small selection (groups of three test sites) never calls
    scikit-learn's tree; all sites as tests (large groups) never call the lazy tree. Both give
    finite predictions, and lazy and full forests agree closely (same trees in distribution)."""
    X, Y, sites, pools_all = make_problem(n_sites=12, seed=4, missing=0.05)
    tests = ["S00", "S03", "S06"]
    pools_zone = {t: [s for s in np.unique(sites) if s != t] for t in tests}

    def boom(*a, **k):
        raise AssertionError("this tree builder must not be used here")

    with monkeypatch.context() as m:
        m.setattr(DecisionTreeRegressor, "fit", boom)
        lazy = rf_site_oob(X, Y, sites, pools_zone, trees_per_site=30, n_groups=10, n_jobs=1)
    with monkeypatch.context() as m:
        m.setattr(rf_fast, "lazy_tree_predict", boom)
        rf_site_oob(X, Y, sites, pools_all, trees_per_site=2, n_groups=3, n_jobs=1)
        full = rf_site_oob(X, Y, sites, pools_zone, trees_per_site=30, n_groups=10, grow="full", n_jobs=1)
    for t in tests:
        assert np.isfinite(lazy[t]).all()
        for j in range(Y.shape[1]):
            assert np.corrcoef(lazy[t][:, j], full[t][:, j])[0, 1] > 0.9
    with pytest.raises(ValueError, match="grow"):
        rf_site_oob(X, Y, sites, pools_zone, trees_per_site=2, grow="sometimes", n_jobs=1)


def test_lazy_forest_same_in_worker_processes_and_threads():
    """Lazy trees grow in worker processes (they hold the GIL between NumPy calls); the
    predictions are the same as with threads, and with one job."""
    X, Y, sites, _ = make_problem(n_sites=10, seed=6, missing=0.05)
    tests = ["S01", "S04", "S07", "S08"]
    pools = {t: [s for s in np.unique(sites) if s != t] for t in tests}
    kw = dict(trees_per_site=6, n_groups=10, random_state=3)
    procs = rf_site_oob(X, Y, sites, pools, n_jobs=2, n_processes=2, **kw)
    threads = rf_site_oob(X, Y, sites, pools, n_jobs=2, n_processes=1, **kw)
    serial = rf_site_oob(X, Y, sites, pools, n_jobs=1, **kw)
    for t in tests:
        np.testing.assert_array_equal(procs[t], threads[t])
        np.testing.assert_array_equal(procs[t], serial[t])
