"""LSTM specifics: validation sites, windowing causality, fine-tuning, balance loss, CUDA."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from factories_learners import make_synthetic  # noqa: E402

from fluxcore.errors import ConfigError  # noqa: E402
from fluxcore.learners import make_learner  # noqa: E402
from fluxcore.learners.lstm import _layout  # noqa: E402

pytestmark = pytest.mark.requires_torch

FAST = {"hidden_size": 16, "lr": 1e-2, "max_epochs": 6, "batch_size": 64,
        "max_windows_per_epoch": 800, "lookback": 10}


def lstm(**kw):
    return make_learner("lstm", **{**FAST, **kw})


@pytest.fixture(scope="module")
def data():
    X, y, s, d = make_synthetic(n_sites=8, n_days=150, seed=4)
    return X, y[["GPP", "ER"]], s, d


@pytest.fixture(scope="module")
def fitted(data):
    X, y, s, d = data
    tr = ~np.isin(s, ["S07"])
    return lstm(random_state=2).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])


def test_validation_sites_are_training_sites(data):
    X, y, s, d = data
    tr = ~np.isin(s, ["S07"])
    est = lstm(random_state=2, val_fraction=0.3).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    assert est.val_mode_ == "sites"
    assert len(est.val_sites_) == 2  # round(0.3 * 7)
    assert set(est.val_sites_) <= set(np.unique(s[tr]))
    assert "S07" not in set(est.val_sites_)
    # seeded: same random_state, same validation sites; another seed may differ
    est2 = lstm(random_state=2, val_fraction=0.3, max_epochs=1).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    assert np.array_equal(est.val_sites_, est2.val_sites_)
    seen = {tuple(lstm(random_state=r, val_fraction=0.3, max_epochs=1)
                  .fit(X[tr], y[tr], sites=s[tr], dates=d[tr]).val_sites_) for r in range(4)}
    assert len(seen) > 1
    # early stopping history carries a validation loss per epoch, best epoch restored
    assert all(np.isfinite(h["val_loss"]) for h in est.history_)
    best = min(h["val_loss"] for h in est.history_)
    assert est.history_[est.best_epoch_ - 1]["val_loss"] == best


def test_few_sites_use_time_validation(data):
    X, y, s, d = data
    two = np.isin(s, ["S00", "S01"])
    est = lstm().fit(X[two], y[two], sites=s[two], dates=d[two])
    assert est.val_mode_ == "time" and len(est.val_sites_) == 0
    est0 = lstm(val_fraction=0.0, max_epochs=2).fit(X[two], y[two], sites=s[two], dates=d[two])
    assert est0.val_mode_ == "none" and est0.n_epochs_ == 2


def test_early_stopping_stops(data):
    X, y, s, d = data
    est = lstm(max_epochs=40, patience=1, lr=5e-2).fit(X, y, sites=s, dates=d)
    assert est.n_epochs_ < 40
    assert est.n_epochs_ == est.best_epoch_ + 1


def test_prediction_is_causal_and_site_local(fitted, data):
    X, y, s, d = data
    a = s == "S07"
    Xa, sa, da = X[a].reset_index(drop=True), s[a], d[a]
    p = fitted.predict(Xa, sites=sa, dates=da)
    # changing the future leaves the past unchanged
    t = 60
    Xf = Xa.copy()
    Xf.loc[t + 1:, "TA"] += 10.0
    pf = fitted.predict(Xf, sites=sa, dates=da)
    assert np.array_equal(pf[: t + 1], p[: t + 1])
    assert not np.allclose(pf[t + 1:], p[t + 1:])
    # a day outside the look-back window does not matter, one inside does
    L = fitted.lookback
    Xo = Xa.copy()
    Xo.loc[t - L, "TA"] += 10.0
    assert np.array_equal(fitted.predict(Xo, sites=sa, dates=da)[t], p[t])
    Xi = Xa.copy()
    Xi.loc[t - L + 1, "TA"] += 10.0
    assert fitted.predict(Xi, sites=sa, dates=da)[t, 0] != p[t, 0]
    # another site in the same call does not change this site's predictions
    b = np.isin(s, ["S06", "S07"])
    pb = fitted.predict(X[b], sites=s[b], dates=d[b])
    assert np.array_equal(pb[s[b] == "S07"], p)


def test_every_day_predicted_including_first_days_and_gaps(fitted, data):
    X, y, s, d = data
    a = np.flatnonzero(s == "S07")
    keep = np.r_[a[:3], a[20:25], a[90:]]  # first days, then gaps in the calendar
    p = fitted.predict(X.iloc[keep], sites=s[keep], dates=d[keep])
    assert p.shape == (len(keep), 2) and np.isfinite(p).all()
    # shuffled rows give the same predictions in the shuffled order
    perm = np.random.default_rng(0).permutation(keep)
    pp = fitted.predict(X.iloc[perm], sites=s[perm], dates=d[perm])
    order = np.argsort(perm)
    assert np.array_equal(pp[order], fitted.predict(X.iloc[np.sort(perm)], sites=s[np.sort(perm)],
                                                     dates=d[np.sort(perm)]))


def test_layout_calendar_positions():
    sites = np.array(["B", "A", "A", "B", "A"])
    dates = np.array(["2020-01-02", "2020-01-01", "2020-01-04", "2020-01-01", "2020-01-02"],
                     dtype="datetime64[ns]")
    pos, start, total = _layout(sites, dates)
    # A spans 4 days (slots 0-3), B spans 2 days (slots 4-5)
    assert total == 6
    assert pos.tolist() == [5, 0, 3, 4, 1]
    assert start.tolist() == [4, 0, 0, 4, 0]


def test_fine_tune_changes_weights_keeps_scalers(fitted, data):
    X, y, s, d = data
    import copy

    est = copy.deepcopy(fitted)
    before = {k: v.clone() for k, v in est.model_.state_dict().items()}
    scalers = [est.x_mean_.copy(), est.x_scale_.copy(), est.y_mean_.copy(), est.y_scale_.copy()]
    a = s == "S07"
    out = est.fine_tune(X[a], y[a], sites=s[a], dates=d[a], epochs=3, lr=1e-2)
    assert out is est
    after = est.model_.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    for old, new in zip(scalers, [est.x_mean_, est.x_scale_, est.y_mean_, est.y_scale_], strict=True):
        assert np.array_equal(old, new)
    assert est.n_fine_tune_epochs_ == 3
    assert [h["phase"] for h in est.history_][-3:] == ["fine_tune"] * 3
    # fine-tuning on the site improves the fit on that site
    mse = lambda m: float(((m.predict(X[a], sites=s[a], dates=d[a]) - y[a].to_numpy()) ** 2).mean())  # noqa: E731
    assert mse(est) < mse(fitted)
    # parts="head" trains only the head
    est2 = copy.deepcopy(fitted)
    est2.fine_tune(X[a], y[a], sites=s[a], dates=d[a], epochs=1, parts="head")
    sd = est2.model_.state_dict()
    assert all(torch.equal(before[k], sd[k]) for k in before if k.startswith("lstm."))
    assert not torch.equal(before["head.weight"], sd["head.weight"])


def test_fine_tune_head_and_last_layer_of_two(data):
    X, y, s, d = data
    import copy

    tr = ~np.isin(s, ["S07"])
    est = lstm(num_layers=2, max_epochs=1).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    before = {k: v.clone() for k, v in est.model_.state_dict().items()}
    a = s == "S07"
    ft = copy.deepcopy(est).fine_tune(X[a], y[a], sites=s[a], dates=d[a], parts="head+last", lr=1e-2)
    sd = ft.model_.state_dict()
    changed = {k for k in before if not torch.equal(before[k], sd[k])}
    assert {k for k in before if k.endswith("_l0")}.isdisjoint(changed)  # first layer frozen
    assert {"head.weight", "lstm.weight_hh_l1"} <= changed
    with pytest.raises(ConfigError, match="parts"):
        copy.deepcopy(est).fine_tune(X[a], y[a], sites=s[a], dates=d[a], parts="encoder")


def test_tags_and_test_params():
    from fluxcore.learners.lstm import LSTMLearner

    tags = LSTMLearner.get_class_tags()
    assert tags["sequence"] and tags["multi_target"] and tags["fine_tune"] and tags["sample_weight"]
    assert tags["fast_strategy"] == "group_finetune"
    assert tags["time_resolution"] == ("daily", "monthly")
    assert "multi_target" not in vars(LSTMLearner) and "sequence" not in vars(LSTMLearner)
    assert make_learner("lstm").multi_target
    for params in LSTMLearner.get_test_params():
        make_learner("lstm", **params)  # valid hyperparameters
        assert params["max_epochs"] <= 2 and params["hidden_size"] <= 8


def test_monthly_data_use_monthly_steps():
    """Month-start dates give a monthly calendar: a window of L months, gaps in months."""
    X, y, s, d = make_synthetic(n_sites=4, n_days=48, seed=2)
    month = np.tile(np.arange("2000-01", 48, dtype="datetime64[M]"), 4).astype("datetime64[ns]")
    est = lstm(lookback=6, max_epochs=2, max_windows_per_epoch=200).fit(X, y[["GPP", "ER"]],
                                                                        sites=s, dates=month)
    assert est.time_step_ == "M"
    a = s == "S01"
    Xa, ma = X[a].reset_index(drop=True), month[a]
    p = est.predict(Xa, sites=s[a], dates=ma)
    assert p.shape == (48, 2) and np.isfinite(p).all()
    # the window is 6 months: a change 6 months back does not matter, 5 months back does
    t = 30
    Xo = Xa.copy()
    Xo.loc[t - 6, "TA"] += 10.0
    assert np.array_equal(est.predict(Xo, sites=s[a], dates=ma)[t], p[t])
    Xi = Xa.copy()
    Xi.loc[t - 5, "TA"] += 10.0
    assert est.predict(Xi, sites=s[a], dates=ma)[t, 0] != p[t, 0]
    # daily dates for a monthly model are a clear error
    from fluxcore.errors import DataError

    with pytest.raises(DataError, match="monthly"):
        est.predict(Xa, sites=s[a], dates=d[a])
    # a 48-month record spans 48 slots (a daily calendar would need ~1,430)
    pos, start, total = _layout(s, month, "M")
    assert total == 4 * 48 and pos.max() == total - 1


def test_fine_tune_needs_fit(data):
    X, y, s, d = data
    with pytest.raises(RuntimeError, match="not fitted"):
        lstm().fine_tune(X, y, sites=s, dates=d)


def test_carbon_balance_loss_reduces_imbalance(data):
    X, _, s, d = data
    X2, y3, s2, d2 = make_synthetic(n_sites=8, n_days=150, seed=4)
    y3 = y3[["GPP", "ER", "NEE"]]
    kw = dict(max_epochs=4, random_state=1)
    plain = lstm(**kw).fit(X2, y3, sites=s2, dates=d2)
    bal = lstm(loss="mse+balance", balance_weight=10.0, **kw).fit(X2, y3, sites=s2, dates=d2)

    def imbalance(m):
        p = m.predict(X2, sites=s2, dates=d2)
        return float(np.mean((p[:, 1] - p[:, 0] - p[:, 2]) ** 2))

    assert imbalance(bal) < 0.5 * imbalance(plain)
    with pytest.raises(ConfigError, match="mse\\+balance"):
        lstm(loss="mse+balance").fit(X2, y3[["GPP", "ER"]], sites=s2, dates=d2)


def test_torch_global_state_restored(data):
    X, y, s, d = data
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    det = torch.are_deterministic_algorithms_enabled()
    lstm(max_epochs=1, n_threads=1).fit(X, y, sites=s, dates=d)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.are_deterministic_algorithms_enabled() == det


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_path(data):
    X, y, s, d = data
    est = lstm(device="cuda", max_epochs=2).fit(X, y, sites=s, dates=d)
    assert est.device_.startswith("cuda")
    p = est.predict(X, sites=s, dates=d)
    assert p.shape == (len(X), 2) and np.isfinite(p).all()
    auto = lstm(device="auto", max_epochs=1).fit(X, y, sites=s, dates=d)
    assert auto.device_.startswith("cuda")


def test_cuda_unavailable_is_a_clear_error(data):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    X, y, s, d = data
    with pytest.raises(ConfigError, match="CUDA is not available"):
        lstm(device="cuda").fit(X, y, sites=s, dates=d)
    assert lstm(device="auto", max_epochs=1).fit(X, y, sites=s, dates=d).device_ == "cpu"


def test_bad_dates_are_clear_errors():
    from fluxcore.errors import DataError

    s = np.array(["A", "A", "B"])
    with pytest.raises(DataError, match="same date twice"):
        _layout(s, np.array(["2020-01-01", "2020-01-01", "2020-01-01"], dtype="datetime64[ns]"))
    with pytest.raises(DataError, match="NaT"):
        _layout(s, np.array(["2020-01-01", "NaT", "2020-01-01"], dtype="datetime64[ns]"))
    many = np.repeat([f"S{i}" for i in range(20)], 2)
    bad = np.tile(np.array(["1700-01-01", "2020-01-01"], dtype="datetime64[ns]"), 20)
    with pytest.raises(DataError, match="wrong dates"):
        _layout(many, bad)


def test_fine_tune_with_one_target_missing(fitted, data):
    import copy

    X, y, s, d = data
    a = s == "S07"
    y_a = y[a].copy()
    y_a["ER"] = np.nan
    est = copy.deepcopy(fitted).fine_tune(X[a], y_a, sites=s[a], dates=d[a], epochs=1)
    assert np.isfinite(est.predict(X[a], sites=s[a], dates=d[a])).all()
