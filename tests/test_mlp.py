"""The dense network ``mlp``: NARCF architecture, MAE loss, scalers, validation by sites / years."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from factories_learners import make_synthetic  # noqa: E402

from fluxcore.errors import ConfigError  # noqa: E402
from fluxcore.learners import available_learners, make_learner  # noqa: E402
from fluxcore.learners.losses import available_losses, get_loss  # noqa: E402
from fluxcore.learners.mlp import NARCF_WIDTHS, MLPLearner  # noqa: E402
from fluxcore.strategies import strategy_for  # noqa: E402
from fluxcore.strategies.group_holdout import group_holdout  # noqa: E402

pytestmark = pytest.mark.requires_torch

TINY = {"hidden": (16, 16), "max_epochs": 4, "patience": 2, "batch_size": 64,
        "max_windows_per_epoch": 600, "max_val_windows": 300, "lr": 1e-2}


def mlp(**kw) -> MLPLearner:
    return make_learner("mlp", **{**TINY, **kw})


@pytest.fixture(scope="module")
def data():
    X, y, s, d = make_synthetic(n_sites=6, n_days=120, seed=5)
    return X, y[["GPP", "ER"]], s, d


@pytest.fixture(scope="module")
def years_data():
    """Six sites with three calendar years (2010-2012) of daily rows each."""
    X, y, s, d = make_synthetic(n_sites=6, n_days=3 * 365, seed=6, start="2010-01-01")
    keep = pd.DatetimeIndex(d).year <= 2012
    return X[keep].reset_index(drop=True), y[keep][["GPP", "ER"]].reset_index(drop=True), s[keep], d[keep]


def test_registered_with_tags_and_mae_loss():
    assert "mlp" in available_learners()
    est = make_learner("mlp")
    assert isinstance(est, MLPLearner)
    assert est.get_tag("multi_target") and est.get_tag("fine_tune") and est.get_tag("sample_weight")
    assert not est.get_tag("sequence")
    assert est.get_tag("time_resolution") == ("daily", "monthly")
    assert est.get_tag("fast_strategy") == "group_holdout"
    assert strategy_for(est).name == "group_holdout"
    assert "mae" in available_losses()
    assert est.get_test_params() and all(make_learner("mlp", **p) for p in est.get_test_params())


def test_mae_loss_known_answer():
    loss = get_loss("mae")(None)
    pred = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    y = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])   # the last target of row 2 is missing
    w = torch.tensor([1.0, 3.0])
    # (1*1 + 1*2 + 3*3) / (1 + 1 + 3) = 12 / 5
    assert float(loss(pred, y, mask, w)) == pytest.approx(12.0 / 5.0)


def test_default_is_the_narcf_architecture(data):
    est = make_learner("mlp")
    p = est.get_params()
    assert tuple(p["hidden"]) == NARCF_WIDTHS == (50, 100, 100, 100, 50, 50)
    assert p["dropout"] == 0.25 and p["batch_norm"] is True and p["loss"] == "mae"
    assert p["batch_size"] == 256 and p["max_epochs"] == 100 and p["val_fraction"] == 0.2
    net = est._build_network(7, 3)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (7, 50), (50, 100), (100, 100), (100, 100), (100, 50), (50, 50), (50, 3)]
    for block in net.blocks:  # Linear, ReLU, batch norm, dropout 0.25 after each hidden layer
        kinds = [type(m) for m in block]
        assert kinds[0] is torch.nn.Linear and kinds[1] is torch.nn.ReLU
        assert isinstance(block[2], torch.nn.BatchNorm1d)
        assert isinstance(block[3], torch.nn.Dropout) and block[3].p == 0.25


def test_fits_predicts_multi_target_and_beats_the_mean(data):
    X, y, s, d = data
    tr, te = s != "S05", s == "S05"
    est = mlp(max_epochs=15).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    p = est.predict(X[te], sites=s[te], dates=d[te])
    assert p.shape == (te.sum(), 2) and np.isfinite(p).all()
    obs = y[te].to_numpy()
    assert ((p - obs) ** 2).mean() < 0.5 * ((est.y_mean_ - obs) ** 2).mean()
    # rows are independent (eval mode: batch norm uses running statistics)
    one = np.flatnonzero(te)[5:6]
    np.testing.assert_allclose(est.predict(X.iloc[one], sites=s[one], dates=d[one])[0], p[5], rtol=1e-5)
    # seeded: same numbers again
    again = mlp(max_epochs=15).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    assert np.array_equal(again.predict(X[te], sites=s[te], dates=d[te]), p)


def test_batch_of_one_row_trains(data):
    X, y, s, d = data
    k = 65  # batches of 64 leave one row
    est = mlp(batch_size=64, max_windows_per_epoch=k, max_epochs=2, val_fraction=0.0)
    est.fit(X.iloc[:k], y.iloc[:k], sites=s[:k], dates=d[:k])
    assert est.n_steps_ == 4 and np.isfinite(est.predict(X.iloc[:3], sites=s[:3], dates=d[:3])).all()


def test_scalers_see_only_the_fit_rows(data, monkeypatch):
    X, y, s, d = data
    seen = []
    orig_x, orig_y = MLPLearner._fit_feature_scaler, MLPLearner._fit_target_scaler

    def spy_x(self, Xa):
        seen.append(("x", Xa.copy()))
        return orig_x(self, Xa)

    def spy_y(self, ya):
        seen.append(("y", ya.copy()))
        return orig_y(self, ya)

    monkeypatch.setattr(MLPLearner, "_fit_feature_scaler", spy_x)
    monkeypatch.setattr(MLPLearner, "_fit_target_scaler", spy_y)
    tr = s != "S05"
    est = mlp(max_epochs=1).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    assert [k for k, _ in seen] == ["x", "y"]
    assert np.array_equal(seen[0][1], X[tr].to_numpy(dtype=float), equal_nan=True)
    assert np.array_equal(seen[1][1], y[tr].to_numpy(dtype=float), equal_nan=True)
    np.testing.assert_allclose(est.x_mean_, np.nanmean(X[tr].to_numpy(dtype=float), axis=0))
    te = ~tr
    est.predict(X[te], sites=s[te], dates=d[te])
    est.fine_tune(X[te], y[te], sites=s[te], dates=d[te])
    assert len(seen) == 2  # predicting / fine-tuning never refits a scaler
    assert "S05" not in set(est.val_sites_)


def test_val_by_sites_holds_out_training_sites(data):
    X, y, s, d = data
    tr = s != "S05"
    est = mlp(val_fraction=0.4).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    assert est.val_mode_ == "sites" and len(est.val_sites_) == 2
    assert set(est.val_sites_) <= set(np.unique(s[tr]))


def test_val_by_years_uses_the_last_training_years_never_the_evaluation_years(years_data, monkeypatch):
    X, y, s, d = years_data
    year = pd.DatetimeIndex(d).year.to_numpy()
    fit_rows = year <= 2011  # evaluation period 2012 is never given to fit
    captured = {}
    orig = MLPLearner._split

    def spy(self, sites, dates, rows, rng):
        out = orig(self, sites, dates, rows, rng)
        captured["dates"], captured["val"] = dates, out[1]
        return out

    monkeypatch.setattr(MLPLearner, "_split", spy)
    est = mlp(val_by="years", val_fraction=0.3, max_epochs=2)
    est.fit(X[fit_rows], y[fit_rows], sites=s[fit_rows], dates=d[fit_rows])
    assert est.val_mode_ == "years" and len(est.val_sites_) == 0
    assert list(est.val_years_) == [2011]  # round(0.3 * 2) = 1: each site's last training year
    val_years = pd.DatetimeIndex(captured["dates"][captured["val"]]).year
    assert set(val_years) == {2011} and 2012 not in set(val_years)
    assert len(captured["dates"]) == fit_rows.sum()  # validation rows come from the fit rows only
    # a site's years are split per site: a site with only 2010 gives no validation rows
    one_year = (s == "S00") & (year == 2010) | (s != "S00") & fit_rows
    est2 = mlp(val_by="years", val_fraction=0.3, max_epochs=2)
    est2.fit(X[one_year], y[one_year], sites=s[one_year], dates=d[one_year])
    val_sites = {str(x) for x in s[one_year][captured["val"]]}
    assert "S00" not in val_sites and val_sites == {f"S0{i}" for i in range(1, 6)}
    # a single year everywhere: nothing to hold out, no early stopping
    only = year == 2010
    est3 = mlp(val_by="years", max_epochs=2).fit(X[only], y[only], sites=s[only], dates=d[only])
    assert est3.val_mode_ == "none" and est3.n_epochs_ == 2 and len(est3.val_years_) == 0


def test_bad_hyperparameters_are_config_errors(data):
    X, y, s, d = data
    for bad in ({"hidden": []}, {"hidden": [10, 0]}, {"hidden": "50"}, {"val_by": "months"},
                {"dropout": 1.0}, {"loss": "huber"}):
        with pytest.raises(ConfigError):
            mlp(**bad).fit(X, y, sites=s, dates=d)


def test_save_load_and_threaded_group_models_are_deterministic(data, tmp_path):
    X, y, s, d = data
    tr, te = s != "S05", s == "S05"
    est = mlp(max_epochs=2).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    back = MLPLearner.load(est.save(tmp_path / "m.pt"))
    assert tuple(back.hidden) == (16, 16)
    assert np.array_equal(back.predict(X[te], sites=s[te], dates=d[te]),
                          est.predict(X[te], sites=s[te], dates=d[te]))
    pools = {f"S0{i}": [f"S0{j}" for j in range(6) if j != i] for i in range(6)}
    kw = {"n_groups": 3, "random_state": 1}
    one = group_holdout(mlp(max_epochs=2), X, y, s, d, pools, n_jobs=1, **kw)
    two = group_holdout(mlp(max_epochs=2), X, y, s, d, pools, n_jobs=3, **kw)
    assert all(np.array_equal(one[k], two[k]) for k in pools)
