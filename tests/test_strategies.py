"""Fast leave-one-site-out strategies: exactness (MLR) and no leakage (all)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from fluxcore.errors import ConfigError
from fluxcore.learners import svm_fast
from fluxcore.learners.mlr_fast import mlr_loso
from fluxcore.learners.rf_fast import rf_site_oob
from fluxcore.learners.svm_fast import lssvm_group_loso


def make_problem(n_sites: int = 10, n_days: int = 120, seed: int = 0, missing: float = 0.1):
    """Seeded site-structured regression problem with missing predictors and targets."""
    rng = np.random.default_rng(seed)
    sites = np.repeat([f"S{i:02d}" for i in range(n_sites)], n_days)
    offset = np.repeat(rng.normal(size=(n_sites, 4)), n_days, axis=0)
    X = rng.normal(size=(len(sites), 4)) + offset
    Y = np.c_[
        X @ np.array([1.0, 2.0, 0.0, -1.0]) + rng.normal(size=len(sites)),
        np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=len(sites)),
    ]
    X[rng.random(X.shape) < missing] = np.nan
    Y[rng.random(Y.shape) < missing] = np.nan
    uniq = np.unique(sites)
    pools = {s: [x for x in uniq if x != s] for s in uniq}
    return X, Y, sites, pools


def naive_mlr(X, Y, sites, pools, weights=None):
    out = {}
    for s, pool in pools.items():
        tr = np.isin(sites, pool)
        te = sites == s
        mu = np.nanmean(X[tr], axis=0)
        Xi = np.where(np.isnan(X), mu, X)
        pred = np.full((te.sum(), Y.shape[1]), np.nan)
        for k in range(Y.shape[1]):
            ok = tr & np.isfinite(Y[:, k])
            sw = None if weights is None else np.array([weights[s][x] for x in sites[ok]])
            pred[:, k] = LinearRegression().fit(Xi[ok], Y[ok, k], sample_weight=sw).predict(Xi[te])
        out[s] = pred
    return out


def test_mlr_loso_equals_per_fold_linear_regression():
    X, Y, sites, pools = make_problem()
    fast = mlr_loso(X, Y, sites, pools)
    ref = naive_mlr(X, Y, sites, pools)
    for s in pools:
        np.testing.assert_allclose(fast[s], ref[s], atol=1e-8, rtol=0)


def test_mlr_loso_with_site_weights_equals_weighted_regression():
    X, Y, sites, pools = make_problem(n_sites=6, seed=3)
    rng = np.random.default_rng(1)
    weights = {s: {x: float(rng.uniform(0.1, 1.0)) for x in pool} for s, pool in pools.items()}
    fast = mlr_loso(X, Y, sites, pools, site_weights=weights)
    ref = naive_mlr(X, Y, sites, pools, weights)
    for s in pools:
        np.testing.assert_allclose(fast[s], ref[s], atol=1e-8, rtol=0)


def test_mlr_loso_zone_pools_and_subset_of_test_sites():
    X, Y, sites, _ = make_problem(n_sites=8, seed=5)
    pools = {"S00": ["S01", "S02", "S03"], "S05": ["S04", "S06"]}
    fast = mlr_loso(X, Y, sites, pools)
    ref = naive_mlr(X, Y, sites, pools)
    assert set(fast) == set(pools)
    for s in pools:
        np.testing.assert_allclose(fast[s], ref[s], atol=1e-8, rtol=0)


def test_mlr_loso_rows_of_sites_interleaved():
    """A site's rows need not be contiguous: shuffled rows give the same per-row predictions."""
    X, Y, sites, pools = make_problem(n_sites=7, seed=4)
    perm = np.random.default_rng(0).permutation(len(sites))
    fast = mlr_loso(X[perm], Y[perm], sites[perm], pools)
    ref = naive_mlr(X, Y, sites, pools)
    for s in pools:
        # the site's rows in increasing position of the shuffled table
        pos = np.sort(np.flatnonzero(sites[perm] == s))
        back = perm[pos]  # their rows in the original table
        within = np.searchsorted(np.flatnonzero(sites == s), back)
        np.testing.assert_allclose(fast[s], ref[s][within], atol=1e-8, rtol=0)


@pytest.mark.parametrize("strategy", ["mlr", "rf", "svm"])
def test_test_site_targets_never_reach_the_fit(strategy):
    """Changing the held-out site's targets leaves its own predictions unchanged."""
    X, Y, sites, pools = make_problem(n_sites=8, seed=2)
    funcs = {
        "mlr": lambda Yv: mlr_loso(X, Yv, sites, pools),
        "rf": lambda Yv: rf_site_oob(X, Yv, sites, pools, trees_per_site=5, n_groups=3, random_state=0),
        "svm": lambda Yv: lssvm_group_loso(X, Yv, sites, pools, n_components=40, random_state=0),
    }
    base = funcs[strategy](Y)
    for target_site in ["S00", "S05"]:
        Y2 = Y.copy()
        Y2[sites == target_site] = 1e3  # absurd targets at the test site
        changed = funcs[strategy](Y2)
        np.testing.assert_array_equal(changed[target_site], base[target_site])


def _tree_spy(monkeypatch) -> list:
    """Patch the tree's fit / predict (and the lazy tree) to log (sites fitted, sites predicted)
    from the id column (the last column of X)."""
    from sklearn.tree import DecisionTreeRegressor

    from fluxcore.learners import rf_fast

    log: list = []
    orig_lazy = rf_fast.lazy_tree_predict_sample

    def lazy(X, miss, fill, pick, y, x_test, **k):
        log.append((set(np.unique(X[pick, -1]).tolist()), set(np.unique(x_test[:, -1]).tolist())))
        return orig_lazy(X, miss, fill, pick, y, x_test, **k)

    monkeypatch.setattr(rf_fast, "lazy_tree_predict_sample", lazy)
    orig_fit, orig_predict = DecisionTreeRegressor.fit, DecisionTreeRegressor.predict

    def fit(self, X, y, *a, **k):
        self._seen = set(np.unique(X[:, -1]).tolist())
        return orig_fit(self, X, y, *a, **k)

    def predict(self, X, *a, **k):
        log.append((self._seen, set(np.unique(X[:, -1]).tolist())))
        return orig_predict(self, X, *a, **k)

    monkeypatch.setattr(DecisionTreeRegressor, "fit", fit)
    monkeypatch.setattr(DecisionTreeRegressor, "predict", predict)
    return log


@pytest.mark.parametrize(("splitter", "grow"), [("best", "auto"), ("random", "auto"), ("best", "lazy")])
def test_rf_trees_never_fit_on_the_sites_they_predict(monkeypatch, splitter, grow):
    """Spy: an id column reveals which sites each tree was fitted on and predicted."""

    X, Y, sites, pools = make_problem(n_sites=9, seed=4, missing=0.0)
    codes = np.unique(sites, return_inverse=True)[1].astype(float)
    Xid = np.c_[X, codes]
    log = _tree_spy(monkeypatch)
    out = rf_site_oob(Xid, Y, sites, pools, trees_per_site=4, n_groups=3, n_jobs=1, splitter=splitter,
                      grow=grow)
    assert sum(len(p) for _, p in log) == 9 * 4  # every site predicted by exactly trees_per_site trees
    for seen, predicted in log:
        assert not (seen & predicted)
    assert all(np.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize(("tests_per_group", "grouping", "grow"),
                         [(2, "random", "auto"), (3, "random", "full"), (3, "spread", "auto")])
def test_rf_zone_selection_small_groups_never_fit_on_predicted_sites(monkeypatch, tests_per_group, grouping,
                                                                      grow):
    """Spy for the scaled groups: a few test sites in a larger universe (a zone selection)
    get groups of at most ``tests_per_group``, and no tree that predicts a site was fitted on it."""
    X, Y, sites, _ = make_problem(n_sites=9, seed=4, missing=0.0)
    tests = ["S00", "S03", "S06", "S07", "S08"]
    pools = {t: [s for s in np.unique(sites) if s != t] for t in tests}
    Xid = np.c_[X, np.unique(sites, return_inverse=True)[1].astype(float)]
    log = _tree_spy(monkeypatch)
    rf_site_oob(Xid, Y, sites, pools, trees_per_site=3, n_groups=10, scaled_groups=True,
                tests_per_group=tests_per_group, grouping=grouping, grow=grow, n_jobs=1)
    test_codes = {float(np.unique(sites).tolist().index(t)) for t in tests}
    predicted_by = {c: 0 for c in test_codes}
    group_of_tree: dict[int, set] = {}  # a tree's set of fitted sites is one object per tree
    for seen, predicted in log:
        assert not (seen & predicted) and predicted <= test_codes
        group_of_tree.setdefault(id(seen), set()).update(predicted)
        for c in predicted:
            predicted_by[c] += 1
    assert len(group_of_tree) == 3 * -(-len(tests) // tests_per_group)  # one tree per group and round
    assert max(len(g) for g in group_of_tree.values()) == tests_per_group
    assert set(predicted_by.values()) == {3}  # every test site predicted by exactly trees_per_site trees


def test_rf_site_oob_grows_per_target_trees_like_the_learner():
    """Targets with different missing rows get their own trees (as RFLearner's forests), so one
    target's values cannot move the other's predictions; shared rows keep multi-output trees."""
    X, Y, sites, pools = make_problem(n_sites=6, seed=8, missing=0.1)
    assert not np.array_equal(np.isfinite(Y[:, 0]), np.isfinite(Y[:, 1]))
    Y2 = Y.copy()
    Y2[:, 0] = Y2[:, 0] * 3.0 + 1.0  # same missing pattern, other values
    kw = dict(trees_per_site=3, n_groups=3, random_state=2, n_jobs=1)
    a, b = rf_site_oob(X, Y, sites, pools, **kw), rf_site_oob(X, Y2, sites, pools, **kw)
    for s in pools:
        np.testing.assert_array_equal(a[s][:, 1], b[s][:, 1])
        assert not np.allclose(a[s][:, 0], b[s][:, 0])
    Ys = Y.copy()
    Ys[~np.isfinite(Ys).all(axis=1)] = np.nan  # one pattern: one multi-output tree per round
    Ys2 = Ys.copy()
    Ys2[:, 0] = Ys2[:, 0] * 3.0 + 1.0
    # exact split search: with 4 features and one random threshold each the joint criterion
    # rarely changes the chosen split, so the coupling is shown with Breiman's splitter
    kw.update(splitter="best", max_features=0.5)
    c, d = rf_site_oob(X, Ys, sites, pools, **kw), rf_site_oob(X, Ys2, sites, pools, **kw)
    assert any(not np.allclose(c[s][:, 1], d[s][:, 1]) for s in pools)


def test_svm_scaler_and_landmarks_fitted_without_the_group(monkeypatch):
    X, Y, sites, pools = make_problem(n_sites=8, seed=6)
    fitted = []
    orig = svm_fast._fit_group_transform

    def spy(X_, fit_rows, *a, **k):
        fitted.append(set(np.unique(sites[fit_rows]).tolist()))
        return orig(X_, fit_rows, *a, **k)

    monkeypatch.setattr(svm_fast, "_fit_group_transform", spy)
    out = lssvm_group_loso(X, Y, sites, pools, n_groups=4, n_components=30)
    assert len(fitted) == 4
    # every site is excluded from exactly one group transform, the one that predicts it
    for s in pools:
        assert sum(s not in f for f in fitted) == 1
    assert set(out) == set(pools)


def test_rf_site_oob_is_deterministic_and_skilful():
    X, Y, sites, pools = make_problem(n_sites=10, seed=7, missing=0.05)
    a = rf_site_oob(X, Y, sites, pools, trees_per_site=10, n_groups=4, random_state=1, n_jobs=2)
    b = rf_site_oob(X, Y, sites, pools, trees_per_site=10, n_groups=4, random_state=1, n_jobs=1)
    for s in pools:
        np.testing.assert_array_equal(a[s], b[s])
    # nonlinear target: the forest beats the training-mean predictor at most sites
    better = 0
    for s in pools:
        y = Y[sites == s, 1]
        ok = np.isfinite(y)
        sse = ((y[ok] - a[s][ok, 1]) ** 2).sum()
        sst = ((y[ok] - np.nanmean(Y[np.isin(sites, pools[s]), 1])) ** 2).sum()
        better += sse < sst
    assert better >= 7


def test_pools_are_validated():
    X, Y, sites, pools = make_problem(n_sites=4)
    with pytest.raises(ConfigError, match="contains the test site"):
        mlr_loso(X, Y, sites, {"S00": ["S00", "S01"]})
    with pytest.raises(ConfigError, match="empty"):
        mlr_loso(X, Y, sites, {"S00": []})
    with pytest.raises(ConfigError, match="no rows"):
        mlr_loso(X, Y, sites, {"XX": ["S01"]})


TINY_LSTM = dict(lookback=5, hidden_size=8, max_epochs=2, patience=1, batch_size=64,
                 max_windows_per_epoch=400, max_val_windows=200, random_state=0, n_threads=1)


def _frames(X, Y, sites):
    import pandas as pd

    n_days = int((sites == sites[0]).sum())
    dates = np.tile(np.arange("2010-01-01", n_days, dtype="datetime64[D]"),
                    len(np.unique(sites))).astype("datetime64[ns]")
    return (pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]),
            pd.DataFrame(Y, columns=["GPP", "ER"]), dates)


@pytest.mark.requires_torch
def test_lstm_group_finetune_never_trains_on_the_predicted_site(monkeypatch):
    pytest.importorskip("torch")
    from fluxcore.learners.lstm import LSTMLearner
    from fluxcore.strategies.group_finetune import group_finetune

    X, Y, sites, pools = make_problem(n_sites=6, n_days=60, seed=8)
    Xd, Yd, dates = _frames(X, Y, sites)
    seen: list[tuple[str, set]] = []
    orig_fit, orig_ft, orig_pred = LSTMLearner.fit, LSTMLearner.fine_tune, LSTMLearner.predict

    def fit(self, X, y, *, sites, dates, **k):
        self._seen = set(np.unique(sites).tolist())
        return orig_fit(self, X, y, sites=sites, dates=dates, **k)

    def fine_tune(self, X, y, *, sites, dates, **k):
        self._seen = self._seen | set(np.unique(sites).tolist())
        return orig_ft(self, X, y, sites=sites, dates=dates, **k)

    def predict(self, X, *, sites, dates):
        seen.append((str(np.unique(sites)[0]), set(self._seen)))
        return orig_pred(self, X, sites=sites, dates=dates)

    monkeypatch.setattr(LSTMLearner, "fit", fit)
    monkeypatch.setattr(LSTMLearner, "fine_tune", fine_tune)
    monkeypatch.setattr(LSTMLearner, "predict", predict)
    out = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, n_groups=2,
                              finetune_epochs=1, finetune_windows=200)
    assert set(out) == set(pools)
    assert len(seen) == 6
    for site, trained_on in seen:
        assert site not in trained_on
        # fine-tuning added the group's other sites: the fold saw its whole pool
        assert trained_on == set(pools[site])
    # the test site's targets never matter
    Yd2 = Yd.copy()
    Yd2.loc[sites == "S03", :] = 1e3
    out2 = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd2, sites, dates, pools, n_groups=2,
                               finetune_epochs=1, finetune_windows=200)
    np.testing.assert_array_equal(out2["S03"], out["S03"])


@pytest.mark.requires_torch
def test_lstm_shared_fine_tune_data_equals_per_fold_fine_tune_and_never_uses_the_site(monkeypatch):
    # the LSTM prepares its group's rows once (fine_tune_data) and fine-tunes each fold on its
    # pool's rows of them (fine_tune_on): the same predictions, bit for bit, as a fine_tune
    # on the pool's rows per fold, and the test site's fluxes never matter
    pytest.importorskip("torch")
    from fluxcore.learners.lstm import LSTMLearner
    from fluxcore.learners.pmtl import PMTLLearner
    from fluxcore.learners.tamrl import TAMRLLearner
    from fluxcore.learners.torchbase import TorchLearner
    from fluxcore.strategies.group_finetune import group_finetune

    assert LSTMLearner.shares_fine_tune_data() and PMTLLearner.shares_fine_tune_data()
    assert not TAMRLLearner.shares_fine_tune_data()  # task embeddings from the call's sites
    X, Y, sites, pools = make_problem(n_sites=6, n_days=60, seed=8)
    Xd, Yd, dates = _frames(X, Y, sites)
    Yd.iloc[::7, 0] = np.nan  # rows with one target only
    kw = dict(n_groups=2, finetune_epochs=2, finetune_windows=150)
    calls: list[tuple[list[str], list[str]]] = []
    orig_on = TorchLearner.fine_tune_on

    def fine_tune_on(self, data, fold_sites, **k):
        calls.append((list(data.site_ids), sorted(fold_sites)))
        return orig_on(self, data, fold_sites, **k)

    monkeypatch.setattr(TorchLearner, "fine_tune_on", fine_tune_on)
    shared = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, **kw)
    assert len(calls) == 6  # every fold fine-tuned on the shared rows
    folds = []
    for prepared, fold_sites in calls:
        # the fold trains on exactly its pool (never its own site), though the prepared rows
        # hold the group's other test sites too
        f = [t for t in pools if sorted(pools[t]) == fold_sites]
        assert len(f) == 1 and f[0] not in fold_sites and set(fold_sites) < set(prepared)
        folds += f
    assert sorted(folds) == sorted(pools)
    with monkeypatch.context() as m:
        m.setattr(LSTMLearner, "shares_fine_tune_data", classmethod(lambda cls: False))
        per_fold = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, **kw)
    for f in pools:
        np.testing.assert_array_equal(shared[f], per_fold[f])
    Yd2 = Yd.copy()
    Yd2.loc[sites == "S03", :] = 1e3
    again = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd2, sites, dates, pools, **kw)
    np.testing.assert_array_equal(again["S03"], shared["S03"])
    assert not np.array_equal(again["S00"], shared["S00"])  # other sites' folds did see S03


@pytest.mark.requires_torch
def test_fine_tune_on_is_fine_tune_on_those_rows_and_checks_its_data():
    pytest.importorskip("torch")
    from fluxcore.errors import DataError
    from fluxcore.learners.lstm import LSTMLearner

    X, Y, sites, _ = make_problem(n_sites=4, n_days=50, seed=3)
    Xd, Yd, dates = _frames(X, Y, sites)
    base = LSTMLearner(**TINY_LSTM).fit(Xd, Yd, sites=sites, dates=dates)
    data = base.fine_tune_data(Xd, Yd, sites=sites, dates=dates)
    some = np.isin(sites, ["S00", "S02"])
    a = copy.deepcopy(base).fine_tune(Xd[some], Yd[some], sites=sites[some], dates=dates[some],
                                      epochs=2, max_windows=60)
    b = copy.deepcopy(base).fine_tune_on(data, ["S02", "S00", "nowhere"], epochs=2, max_windows=60)
    assert a.n_fine_tune_epochs_ == b.n_fine_tune_epochs_ == 2
    for (ka, va), (kb, vb) in zip(a.model_.state_dict().items(), b.model_.state_dict().items(), strict=True):
        assert ka == kb and torch_equal(va, vb)
    np.testing.assert_array_equal(a.predict(Xd, sites=sites, dates=dates),
                                  b.predict(Xd, sites=sites, dates=dates))
    with pytest.raises(DataError, match="no row with a finite target"):
        copy.deepcopy(base).fine_tune_on(data, ["nowhere"])
    other = LSTMLearner(**TINY_LSTM).fit(Xd[some], Yd[some], sites=sites[some], dates=dates[some])
    with pytest.raises(ValueError, match="other scalers"):
        other.fine_tune_on(data, ["S00"])


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.requires_torch
def test_lstm_rounds_are_a_seed_ensemble_that_never_sees_the_site(monkeypatch):
    """n_rounds=2: round 0 is the one-round result, round 1 a new partition and LSTM seed;
    the prediction is their mean and no member trains on the site it predicts."""
    pytest.importorskip("torch")
    from fluxcore.learners.lstm import LSTMLearner
    from fluxcore.strategies.group_finetune import group_finetune

    X, Y, sites, pools = make_problem(n_sites=6, n_days=60, seed=9)
    Xd, Yd, dates = _frames(X, Y, sites)
    kw = dict(n_groups=2, finetune_epochs=1, finetune_windows=200)
    one = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, **kw)

    members: dict[str, list] = {}
    seeds: list = []
    orig_fit, orig_ft, orig_pred = LSTMLearner.fit, LSTMLearner.fine_tune, LSTMLearner.predict

    def fit(self, X, y, *, sites, dates, **k):
        self._seen = set(np.unique(sites).tolist())
        seeds.append(self.random_state)
        return orig_fit(self, X, y, sites=sites, dates=dates, **k)

    def fine_tune(self, X, y, *, sites, dates, **k):
        self._seen = self._seen | set(np.unique(sites).tolist())
        return orig_ft(self, X, y, sites=sites, dates=dates, **k)

    def predict(self, X, *, sites, dates):
        site = str(np.unique(sites)[0])
        assert site not in self._seen
        out = orig_pred(self, X, sites=sites, dates=dates)
        members.setdefault(site, []).append(out)
        return out

    monkeypatch.setattr(LSTMLearner, "fit", fit)
    monkeypatch.setattr(LSTMLearner, "fine_tune", fine_tune)
    monkeypatch.setattr(LSTMLearner, "predict", predict)
    info: dict = {}
    two = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, n_rounds=2, info=info, **kw)
    assert sorted(seeds) == [0, 0, 1, 1]  # two group models per round, seed + round
    for s in pools:
        assert len(members[s]) == 2
        np.testing.assert_array_equal(members[s][0], one[s])  # round 0 = the one-round run
        np.testing.assert_allclose(two[s], (members[s][0] + members[s][1]) / 2)
        assert s not in info[s]["val_sites"]
    assert any(not np.array_equal(members[s][0], members[s][1]) for s in pools)
    with pytest.raises(ConfigError, match="n_rounds"):
        group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, n_rounds=0, **kw)


@pytest.mark.requires_torch
def test_lstm_group_models_in_worker_processes_give_the_same_predictions():
    pytest.importorskip("torch")
    from fluxcore.learners.lstm import LSTMLearner
    from fluxcore.strategies.group_finetune import group_finetune

    X, Y, sites, pools = make_problem(n_sites=5, n_days=50, seed=4)
    Xd, Yd, dates = _frames(X, Y, sites)
    kw = dict(n_groups=2, finetune_epochs=1, finetune_windows=200, n_rounds=2)
    info1: dict = {}
    info2: dict = {}
    done: list = []
    serial = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, info=info1, **kw)
    parallel = group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, n_jobs=2, info=info2,
                                   progress=lambda n, msg: done.append(n), **kw)
    for s in pools:
        np.testing.assert_array_equal(parallel[s], serial[s])
    assert info1 == info2
    assert done == list(range(1, 2 * len(pools) + 1))  # every fold of every round reported

    # a cancel (progress raising) stops at once and leaves no worker process behind
    import multiprocessing as mp

    class Stop(Exception):
        pass

    def cancel(n, msg):
        raise Stop(msg)

    with pytest.raises(Stop):
        group_finetune(LSTMLearner(**TINY_LSTM), Xd, Yd, sites, dates, pools, n_jobs=2, progress=cancel, **kw)
    assert not mp.active_children()


def test_group_holdout_never_fits_on_a_site_it_predicts_and_equals_per_fold_with_one_site_groups():
    """group_holdout (the svm fast path): a spy records every fit; with n_groups >= sites it
    is the per-fold loop itself."""
    import pandas as pd

    from fluxcore.learners import make_learner
    from fluxcore.strategies.group_holdout import group_holdout

    X, Y, sites, pools = make_problem(n_sites=6, n_days=60, seed=3)
    Xd = pd.DataFrame(X, columns=list("abcd"))
    Yd = pd.DataFrame(Y, columns=["GPP", "ER"])
    dates = np.tile(np.arange("2010-01-01", 60, dtype="datetime64[D]"), 6)
    fits: list[set] = []
    predicted: list[set] = []

    class Spy(type(make_learner("svm"))):
        def fit(self, X, y, *, sites, dates, sample_weight=None):
            fits.append(set(sites))
            return super().fit(X, y, sites=sites, dates=dates, sample_weight=sample_weight)

        def predict(self, X, *, sites, dates):
            predicted.append((set(sites), fits[-1] if fits else set()))
            return super().predict(X, sites=sites, dates=dates)

    tmpl = Spy(n_components=30, max_fit_rows=None)
    out = group_holdout(tmpl, Xd, Yd, sites, dates, pools, n_groups=3, random_state=0, n_jobs=1)
    assert set(out) == set(pools) and len(fits) == 3
    for s in pools:
        assert not any(s in f and s in p for p, f in predicted)
        assert out[s].shape == ((sites == s).sum(), 2) and np.isfinite(out[s]).all()
    # changing a test site's targets leaves its predictions unchanged
    Y2 = Yd.copy()
    Y2.loc[sites == "S01", :] = 1e3
    again = group_holdout(tmpl, Xd, Y2, sites, dates, pools, n_groups=3, random_state=0, n_jobs=1)
    np.testing.assert_array_equal(again["S01"], out["S01"])
    # one site per group: exactly one model per fold on the fold's pool
    fits.clear()
    per = group_holdout(tmpl, Xd, Yd, sites, dates, pools, n_groups=6, random_state=0, n_jobs=2)
    assert sorted(map(sorted, fits)) == sorted(sorted(p) for p in pools.values())
    assert set(per) == set(pools)
    # n_rounds: new partitions per round, each site predicted by the mean of its n_rounds models
    fits.clear()
    predicted.clear()
    two = group_holdout(tmpl, Xd, Yd, sites, dates, pools, n_groups=3, n_rounds=2, random_state=0, n_jobs=1)
    assert len(fits) == 6
    for s in pools:
        assert sum(s not in f for f in fits) == 2
        assert not any(s in f and s in p for p, f in predicted)
    assert not np.allclose(two["S01"], out["S01"])


def _sample_pools(uniq, sample):
    """Pools of a run whose training sites are a fixed sample (pool_fraction, pool_sample)."""
    return {s: [x for x in sample if x != s] for s in uniq}


def test_universes_share_one_universe_for_sites_outside_a_training_sample():
    from fluxcore.strategies.base import split_groups, universes

    uniq = [f"S{i:02d}" for i in range(12)]
    sample = uniq[::3]  # 4 training sites; the other 8 are nobody's training site
    pools = _sample_pools(uniq, sample)
    u = universes(pools)
    assert len(u) == 1  # not one universe (and one set of group models) per outside site
    (universe, tests), = u.items()
    assert universe == frozenset(sample) and sorted(tests) == uniq
    # every group model trained on universe - group uses only training sites of each of its test sites
    for groups in (2, 3, 12):
        for g in split_groups(sorted(tests), groups, np.random.default_rng(groups)):
            for t in g:
                assert set(universe - set(g)) <= set(pools[t]) and t not in universe - set(g)
    # leave-one-site-out over all sites keeps one universe: the sites plus nobody left out
    full = {s: [x for x in uniq if x != s] for s in uniq}
    assert list(universes(full)) == [frozenset(uniq)]


def test_rf_trees_with_a_training_sample_never_fit_on_the_sites_they_predict(monkeypatch):
    """Spy as above, with pools from a training sample: no tree that predicts a site (in the
    sample or outside it) was fitted on that site, and only sample sites ever train."""

    X, Y, sites, _ = make_problem(n_sites=10, seed=5, missing=0.0)
    uniq = sorted(set(sites.tolist()))
    sample = uniq[:4]
    pools = _sample_pools(uniq, sample)
    codes = np.unique(sites, return_inverse=True)[1].astype(float)
    sample_codes = {float(uniq.index(s)) for s in sample}
    log = _tree_spy(monkeypatch)
    out = rf_site_oob(np.c_[X, codes], Y, sites, pools, trees_per_site=3, n_groups=3, n_jobs=1)
    assert sorted(out) == uniq and all(np.isfinite(v).all() for v in out.values())
    for seen, predicted in log:
        assert not (seen & predicted) and seen <= sample_codes
    # and the held-out targets never reach the fit, inside or outside the sample
    base = rf_site_oob(X, Y, sites, pools, trees_per_site=3, n_groups=3, random_state=0)
    for s in (sample[0], uniq[-1]):
        Y2 = Y.copy()
        Y2[sites == s] = 1e3
        np.testing.assert_array_equal(rf_site_oob(X, Y2, sites, pools, trees_per_site=3, n_groups=3,
                                                  random_state=0)[s], base[s])


def test_rf_tree_rows_capped_in_learner_and_fast_forest(monkeypatch):
    """``max_tree_rows`` caps every tree's bootstrap sample, in the per-fold learner and in the
    site-level out-of-bag forest alike (the floor ``min_tree_rows`` still applies below it)."""
    import pandas as pd
    from sklearn.tree import DecisionTreeRegressor

    from fluxcore.learners.rf import RFLearner

    X, Y, sites, pools = make_problem(n_sites=6, seed=3, missing=0.0)
    dates = np.zeros(len(X), dtype="datetime64[D]")
    Xf, Yf = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]), pd.DataFrame(Y, columns=["GPP", "ER"])
    lrn = RFLearner(n_estimators=3, max_samples=0.5, min_tree_rows=10, max_tree_rows=40).fit(
        Xf, Yf, sites=sites, dates=dates)
    assert [f.max_samples for _, f in lrn.forests_] == [40]
    uncapped = RFLearner(n_estimators=3, max_samples=0.5, min_tree_rows=10, max_tree_rows=None).fit(
        Xf, Yf, sites=sites, dates=dates)
    assert uncapped.forests_[0][1].max_samples > 40

    rows: list[int] = []
    orig_fit = DecisionTreeRegressor.fit

    def fit(self, X_, y_, *a, **k):
        rows.append(len(X_))
        return orig_fit(self, X_, y_, *a, **k)

    monkeypatch.setattr(DecisionTreeRegressor, "fit", fit)
    from fluxcore.learners import rf_fast

    orig_lazy = rf_fast.lazy_tree_predict_sample

    def lazy(X_, miss, fill, pick, y, x_test, **k):
        rows.append(-len(pick))
        return orig_lazy(X_, miss, fill, pick, y, x_test, **k)

    monkeypatch.setattr(rf_fast, "lazy_tree_predict_sample", lazy)
    for grow in ("full", "lazy"):
        rows.clear()
        rf_site_oob(X, Y, sites, pools, trees_per_site=2, n_groups=3, max_samples=0.5, min_tree_rows=10,
                    max_tree_rows=40, grow=grow, n_jobs=1)
        assert rows and set(rows) == ({40} if grow == "full" else {-40})


def test_spread_groups_keep_similar_sites_apart_and_use_predictors_only(monkeypatch):
    """Spread groups put far-apart sites together (so each tree keeps a test site's nearest
    neighbours); the plan depends on the predictors alone: other flux values, same groups."""
    from fluxcore.learners import rf_fast
    from fluxcore.strategies.base import spread_groups

    pts = np.array([[0, 0], [0, 0.1], [0, 0.2], [10, 0], [10, 0.1], [10, 0.2]], dtype=float)
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(axis=-1))
    for seed in range(5):
        groups = spread_groups(list("abcdef"), 3, np.random.default_rng(seed), dist)
        assert sorted(len(g) for g in groups) == [2, 2, 2]
        for g in groups:  # one site of each cluster per group
            assert len({x in "abc" for x in g}) == 2

    X, Y, sites, _ = make_problem(n_sites=9, seed=4, missing=0.1)
    tests = ["S00", "S01", "S03", "S06", "S07", "S08"]
    pools = {t: [s for s in np.unique(sites) if s != t] for t in tests}
    plans: list = []
    orig = rf_fast.spread_groups

    def spy(items, n_groups, rng, distance):
        out = orig(items, n_groups, rng, distance)
        plans[-1].append(out)
        return out

    monkeypatch.setattr(rf_fast, "spread_groups", spy)
    for yy in (Y, Y[::-1] * 2.0 + 1.0):
        plans.append([])
        rf_site_oob(X, yy, sites, pools, trees_per_site=3, n_groups=10, tests_per_group=2, grouping="spread",
                    n_jobs=1)
    assert plans[0] and plans[0] == plans[1]
    with pytest.raises(ValueError, match="grouping"):
        rf_site_oob(X, Y, sites, pools, trees_per_site=1, grouping="nearest", n_jobs=1)


def test_auto_grouping_spreads_small_selections_only(monkeypatch):
    """grouping="auto" (the default) draws spread groups when the tests_per_group rule of
    ``scaled_groups`` sets the groups (a zone), random groups when every site is a test site (W)
    and without ``scaled_groups`` (the default: one group per test site of a small selection)."""
    from fluxcore.learners import rf_fast

    calls: list[int] = []
    orig = rf_fast.spread_groups
    monkeypatch.setattr(rf_fast, "spread_groups", lambda items, *a: calls.append(len(items)) or orig(items, *a))
    X, Y, sites, pools = make_problem(n_sites=9, seed=4, missing=0.0)
    rf_site_oob(X, Y, sites, pools, trees_per_site=2, n_groups=3, n_jobs=1)  # all 9 test sites
    assert calls == []
    tests = ["S00", "S03", "S06", "S07"]
    zone = {t: [s for s in np.unique(sites) if s != t] for t in tests}
    rf_site_oob(X, Y, sites, zone, trees_per_site=2, n_groups=10, n_jobs=1)
    assert calls == []  # four groups of one
    rf_site_oob(X, Y, sites, zone, trees_per_site=2, n_groups=10, scaled_groups=True, n_jobs=1)
    assert calls == [4, 4]  # one spread draw per round


def test_svm_small_selection_runs_the_per_fold_loop(monkeypatch):
    """A selection with fewer test sites than n_groups x n_rounds gets one model per test site
    (the per-fold loop: fewer fits), each fitted on the site's pool without the site; W-sized
    selections keep the group hold-out."""
    from fluxcore.learners.svm_fast import per_fold_plan

    sites9 = [f"S{i:02d}" for i in range(9)]
    zone = {t: [s for s in sites9 if s != t] for t in sites9[:4]}
    assert per_fold_plan(zone, 10, 3) == (4, 1)
    assert per_fold_plan(zone, 10, 3, per_fold_when_fewer=False) == (10, 3)
    many = {f"T{i:03d}": [f"T{j:03d}" for j in range(40) if j != i] for i in range(40)}
    assert per_fold_plan(many, 10, 3) == (10, 3)

    import pandas as pd

    from fluxcore.learners.svm import SVMLearner
    from fluxcore.strategies import StrategyContext, get_strategy

    X, Y, sites, _ = make_problem(n_sites=9, seed=6)
    pools = {t: [s for s in np.unique(sites) if s != t] for t in ["S00", "S04", "S07"]}
    fitted: list[set] = []
    orig = SVMLearner.fit

    def spy(self, Xf, yf, *, sites, dates, **k):
        fitted.append(set(np.unique(sites).tolist()))
        return orig(self, Xf, yf, sites=sites, dates=dates, **k)

    monkeypatch.setattr(SVMLearner, "fit", spy)
    cols = [f"x{i}" for i in range(X.shape[1])]
    strat = get_strategy("svm_group")
    out = strat.run(SVMLearner(**SVMLearner.get_test_params()[0]), pd.DataFrame(X, columns=cols),
                    pd.DataFrame(Y, columns=["GPP", "ER"]), sites, np.zeros(len(X), dtype="datetime64[D]"),
                    pools, {}, StrategyContext(n_jobs=1))
    assert sorted(out) == ["S00", "S04", "S07"]
    assert sorted(map(sorted, fitted)) == sorted(sorted(set(p)) for p in pools.values())  # one fit per fold


def test_site_codes_and_rows_by_code_match_sorting_every_row():
    from fluxcore.strategies.base import rows_by_code, site_codes

    rng = np.random.default_rng(0)
    cases = [rng.choice(np.array([f"S{i:02d}" for i in range(30)]), 500),
             np.array([3, 1, "3", 2.5], dtype=object),  # ids equal as text share a code
             np.array(["B", None, "A", "None"], dtype=object),  # a missing id: its text, as astype(str)
             np.array([], dtype=str)]
    for sites in cases:
        ref_u, ref_c = np.unique(sites.astype(str), return_inverse=True)
        uniq, codes = site_codes(sites)
        assert np.array_equal(uniq, ref_u) and np.array_equal(codes, ref_c)
        rows = rows_by_code(codes, len(uniq))
        assert len(rows) == len(uniq)
        for i, r in enumerate(rows):
            assert np.array_equal(r, np.flatnonzero(codes == i))
