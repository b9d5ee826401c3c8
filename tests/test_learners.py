"""The shared learner contract, run for every registered learner (small, fast hyperparameters)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories_learners import make_synthetic
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression

import fluxcore.pmlearner  # noqa: E402,F401  (registers "processmodel": the registry is the same in any test order)
from fluxcore.errors import ConfigError, DataError
from fluxcore.learners import available_learners, make_learner

#: Learners fitted from features (the contract's skill and input checks below); the process
#: model is not one (it reads named drivers and fits nothing by default): its conformance is
#: checked with fluxcore.testing.check_learner in tests/test_conformance.py and test_transfer.py.
STATISTICAL = [n for n in available_learners() if n != "processmodel" and not n.startswith("test_")]
TARGETS = ["GPP", "ER"]
TEST_SITES = ["S06", "S07"]


def learner(name: str, **kw):
    """The learner with its ``get_test_params("skill")`` set (fast, trained enough) and ``kw``."""
    cls = type(make_learner(name))
    return make_learner(name, **{**cls.get_test_params("skill")[0], **kw})


@pytest.fixture(scope="module")
def data():
    X, y, sites, dates = make_synthetic(n_sites=8, n_days=200, seed=0)
    return X, y[TARGETS], sites, dates


def split(data):
    X, y, sites, dates = data
    te = np.isin(sites, TEST_SITES)
    tr = ~te
    return (X[tr], y[tr], sites[tr], dates[tr]), (X[te], y[te], sites[te], dates[te])


def fit_predict(est, train, test, **fit_kw):
    X, y, s, d = train
    est.fit(X, y, sites=s, dates=d, **fit_kw)
    return est.predict(test[0], sites=test[2], dates=test[3])


def test_registry_names():
    names = available_learners()
    assert {"mlr", "rf", "svm", "lstm"} <= set(names)
    with pytest.raises(ConfigError, match="unknown learner"):
        make_learner("nope")
    with pytest.raises(ConfigError, match="no parameter"):
        make_learner("mlr").set_params(bogus=1)


@pytest.mark.parametrize("name", STATISTICAL)
def test_fit_returns_self_params_unchanged_fitted_attrs(name, data):
    train, test = split(data)
    est = learner(name, random_state=3)
    params_before = repr(est.get_params())
    attrs_before = set(vars(est))
    out = est.fit(train[0], train[1], sites=train[2], dates=train[3])
    assert out is est
    assert repr(est.get_params()) == params_before
    new_public = {a for a in set(vars(est)) - attrs_before if not a.startswith("_")}
    assert new_public, "fit must set fitted attributes"
    assert all(a.endswith("_") for a in new_public), new_public
    # params are stored unchanged (no validation / conversion in __init__)
    assert est.get_params()["random_state"] == 3
    clone = est.clone()
    assert repr(clone.get_params()) == params_before
    assert not any(a.endswith("_") and not a.startswith("_") for a in vars(clone))
    with pytest.raises(RuntimeError, match="not fitted"):
        clone.predict(test[0], sites=test[2], dates=test[3])


@pytest.mark.parametrize("name", STATISTICAL)
def test_same_random_state_identical_predictions(name, data):
    train, test = split(data)
    p1 = fit_predict(learner(name, random_state=7), train, test)
    p2 = fit_predict(learner(name, random_state=7), train, test)
    assert np.array_equal(p1, p2)  # bitwise (CPU)


@pytest.mark.parametrize("name", STATISTICAL)
def test_inputs_not_modified(name, data):
    train, test = split(data)
    X, y, s, d = (train[0].copy(), train[1].copy(), train[2].copy(), train[3].copy())
    X.iloc[::7, 0] = np.nan
    y.iloc[::5, 1] = np.nan
    w = np.linspace(0.5, 1.5, len(X))
    copies = (X.copy(), y.copy(), s.copy(), d.copy(), w.copy())
    est = learner(name).fit(X, y, sites=s, dates=d, sample_weight=w)
    Xt = test[0].copy()
    Xt.iloc[::3, 1] = np.nan
    Xt_copy = Xt.copy()
    est.predict(Xt, sites=test[2], dates=test[3])
    pd.testing.assert_frame_equal(X, copies[0])
    pd.testing.assert_frame_equal(y, copies[1])
    assert np.array_equal(s, copies[2]) and np.array_equal(d, copies[3])
    assert np.array_equal(w, copies[4])
    pd.testing.assert_frame_equal(Xt, Xt_copy)


@pytest.mark.parametrize("name", STATISTICAL)
def test_refit_ignores_previous_fit(name, data):
    train, test = split(data)
    X2, y2, s2, d2 = make_synthetic(n_sites=5, n_days=150, seed=11)
    other = (X2 * 1.3 + 2.0, y2[TARGETS] * 0.5, s2, d2)
    est = learner(name)
    fit_predict(est, train, test)
    p_refit = fit_predict(est, other, test)
    p_fresh = fit_predict(learner(name), other, test)
    assert np.array_equal(p_refit, p_fresh)


@pytest.mark.parametrize("name", STATISTICAL)
@pytest.mark.parametrize("targets", [["GPP"], ["GPP", "ER", "NEE"]])
def test_predict_shape(name, targets):
    X, y, s, d = make_synthetic(n_sites=4, n_days=120, seed=2)
    est = learner(name).fit(X, y[targets], sites=s, dates=d)
    p = est.predict(X.iloc[:50], sites=s[:50], dates=d[:50])
    assert p.shape == (50, len(targets))
    assert np.isfinite(p).all()
    assert est.target_names_ == targets


@pytest.mark.parametrize("name", STATISTICAL)
def test_nan_in_X(name, data):
    train, test = split(data)
    rng = np.random.default_rng(0)
    Xtr = train[0].mask(rng.random(train[0].shape) < 0.1)
    Xtr["CLAY"] = np.nan  # a column without any training value
    Xte = test[0].mask(rng.random(test[0].shape) < 0.1)
    est = learner(name).fit(Xtr, train[1], sites=train[2], dates=train[3])
    p = est.predict(Xte, sites=test[2], dates=test[3])
    assert p.shape == (len(Xte), 2) and np.isfinite(p).all()


@pytest.mark.parametrize("name", STATISTICAL)
def test_nan_in_y(name, data):
    train, test = split(data)
    rng = np.random.default_rng(1)
    y = train[1].copy()
    y.loc[rng.random(len(y)) < 0.2, "GPP"] = np.nan
    y.loc[rng.random(len(y)) < 0.1, "ER"] = np.nan
    y.iloc[:40] = np.nan  # rows without any target
    est = learner(name).fit(train[0], y, sites=train[2], dates=train[3])
    p = est.predict(test[0], sites=test[2], dates=test[3])
    assert np.isfinite(p).all()
    r2 = 1 - ((test[1].to_numpy() - p) ** 2).sum(0) / ((test[1] - test[1].mean()) ** 2).sum().to_numpy()
    assert (r2 > 0.3).all(), r2
    with pytest.raises(DataError, match="no usable row|no finite"):
        y_bad = y.copy()
        y_bad["ER"] = np.nan
        learner(name).fit(train[0], y_bad, sites=train[2], dates=train[3])


@pytest.mark.parametrize("name", STATISTICAL)
def test_sample_weight(name, data):
    train, test = split(data)
    p0 = fit_predict(learner(name), train, test)
    p1 = fit_predict(learner(name), train, test, sample_weight=np.ones(len(train[0])))
    np.testing.assert_allclose(p1, p0, rtol=1e-6, atol=1e-6)
    # heavy weight on two sites, tiny on the others: a different fit
    w = np.where(np.isin(train[2], ["S00", "S01"]), 10.0, 0.05)
    pw = fit_predict(learner(name), train, test, sample_weight=w)
    assert np.abs(pw - p0).max() > 1e-3
    with pytest.raises(DataError, match="sample_weight"):
        learner(name).fit(train[0], train[1], sites=train[2], dates=train[3],
                          sample_weight=-np.ones(len(train[0])))


@pytest.mark.parametrize("name", STATISTICAL)
def test_beats_mean_predictor_on_held_out_sites(name, data):
    train, test = split(data)
    p = fit_predict(learner(name), train, test)
    obs = test[1].to_numpy()
    mse = ((obs - p) ** 2).mean(axis=0)
    mse_mean = ((obs - train[1].mean().to_numpy()) ** 2).mean(axis=0)
    assert (mse < 0.5 * mse_mean).all(), (mse, mse_mean)


@pytest.mark.parametrize("name", STATISTICAL)
def test_bad_input_messages(name, data):
    train, _ = split(data)
    with pytest.raises(DataError, match="rows"):
        learner(name).fit(train[0], train[1].iloc[:10], sites=train[2], dates=train[3])
    est = learner(name).fit(train[0], train[1], sites=train[2], dates=train[3])
    with pytest.raises(DataError, match="feature columns"):
        est.predict(train[0][train[0].columns[::-1]], sites=train[2], dates=train[3])



# ------------------------------------------------------------- hyperparameter constraints
BAD_PARAMS = [
    ("rf", "n_estimators", "abc", "an integer >= 1"),
    ("rf", "n_estimators", 0, "an integer >= 1"),
    ("rf", "max_samples", 7.5, "a number in (0, 1]"),
    ("rf", "max_features", "all", "'sqrt', 'log2'"),
    ("rf", "splitter", "fast", "'best'"),
    ("svm", "C", -1.0, "a number > 0"),
    ("svm", "gamma", "auto", "'scale'"),
    ("svm", "method", "fast", "'nystroem'"),
    ("mlr", "fit_intercept", "maybe", "true or false"),
    ("lstm", "max_epochs", -3, "an integer >= 1"),
    ("lstm", "dropout", 1.0, "a number in [0, 1)"),
    ("lstm", "device", "gpu", "'cuda:N'"),
    ("lstm", "lr", float("nan"), "a number > 0"),
]


@pytest.mark.parametrize("name", STATISTICAL)
def test_every_parameter_has_a_constraint_and_defaults_pass(name):
    from fluxcore.learners.base import check_params

    est = make_learner(name)
    assert set(type(est)._parameter_constraints) == set(est.get_params())
    check_params(est)  # the defaults are allowed values
    check_params(learner(name))  # and so are the test suite's fast settings


@pytest.mark.parametrize("name, param, value, words", BAD_PARAMS)
def test_fit_rejects_out_of_range_hyperparameter(name, param, value, words, data):
    train, _ = split(data)
    with pytest.raises(ConfigError) as exc:
        learner(name, **{param: value}).fit(train[0], train[1], sites=train[2], dates=train[3])
    msg = str(exc.value)
    assert f"{param} must be" in msg and words in msg and repr(value) in msg


@pytest.mark.parametrize("name, param, value, words", BAD_PARAMS)
def test_run_config_rejects_out_of_range_hyperparameter_before_any_fold(name, param, value, words):
    from fluxcore.config import RunConfig

    for lrn in (name, f"{name}_fuzzy"):  # a fuzzy variant's base learner is checked too
        cfg = RunConfig(learners=[lrn], params={lrn: {param: value}})
        with pytest.raises(ConfigError, match=f"learner '{lrn}': {param} must be"):
            cfg.validate()
        with pytest.raises(ConfigError, match=f"{param} must be"):
            cfg.resolved()


def test_constraint_descriptions_and_edges():
    from fluxcore.learners.base import Interval, Options, Seed

    half_open = Interval(float, 0, 1, closed="left")
    assert str(half_open) == "a number in [0, 1)"
    assert half_open.ok(0) and half_open.ok(0.5) and not half_open.ok(1.0) and not half_open.ok(-0.1)
    assert not Interval(int, 1).ok(True) and not Interval(int, 1).ok(2.0) and Interval(int, 1).ok(np.int64(3))
    assert not Interval(float).ok(float("inf")) and str(Interval(float, 0, None, closed="neither")) == "a number > 0"
    assert Options("a", "b").ok("a") and not Options("a", "b").ok(1) and str(Options("a")) == "one of 'a'"
    assert Seed().ok(0) and Seed().ok(np.random.default_rng(1)) and not Seed().ok(-1) and not Seed().ok("1")


def test_exponent_numbers_in_config_params_are_numbers():
    from fluxcore.config import RunConfig

    cfg = RunConfig.from_dict({"learners": ["lstm"], "params": {"lstm": {"lr": "1e-3", "device": "cpu"}}})
    assert cfg.params["lstm"] == {"lr": 0.001, "device": "cpu"}


# --------------------------------------------------------------------------- mlr specifics
def test_mlr_matches_sklearn_linear_regression(data):
    X, y, s, d = data
    rng = np.random.default_rng(5)
    X = X.mask(rng.random(X.shape) < 0.05)
    y = y.copy()
    y.loc[rng.random(len(y)) < 0.1, "GPP"] = np.nan
    w = rng.uniform(0.2, 2.0, len(X))
    for weights in (None, w):
        est = make_learner("mlr").fit(X, y, sites=s, dates=d, sample_weight=weights)
        pred = est.predict(X, sites=s, dates=d)
        imp = SimpleImputer(strategy="mean").fit(X)
        Xi = imp.transform(X)
        for j, t in enumerate(y.columns):
            m = y[t].notna().to_numpy()
            lr = LinearRegression().fit(Xi[m], y[t][m], sample_weight=None if weights is None else weights[m])
            np.testing.assert_allclose(pred[:, j], lr.predict(Xi), rtol=0, atol=1e-6)
            np.testing.assert_allclose(est.coef_[j], lr.coef_, rtol=1e-6, atol=1e-8)
    # fitted state is small
    assert est.coef_.shape == (2, X.shape[1]) and est.intercept_.shape == (2,)


def test_per_target_wrapper_matches_separate_fits(data):
    from fluxcore.learners._util import PerTarget

    train, test = split(data)
    y = train[1].copy()
    y.iloc[::4, 0] = np.nan
    pt = PerTarget(make_learner("mlr")).fit(train[0], y, sites=train[2], dates=train[3])
    p = pt.predict(test[0], sites=test[2], dates=test[3])
    assert p.shape == (len(test[0]), 2)
    joint = make_learner("mlr").fit(train[0], y, sites=train[2], dates=train[3])
    np.testing.assert_allclose(p, joint.predict(test[0], sites=test[2], dates=test[3]), atol=1e-9)
    assert len(pt.estimators_) == 2 and pt.estimators_[0].n_train_[0] == y["GPP"].notna().sum()


@pytest.mark.parametrize("name", STATISTICAL)
def test_pickle_round_trip(name, data):
    import pickle

    train, test = split(data)
    est = learner(name).fit(train[0], train[1], sites=train[2], dates=train[3])
    p = est.predict(test[0], sites=test[2], dates=test[3])
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.predict(test[0], sites=test[2], dates=test[3]), p)


REAL = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared/data/fluxnet2015"


@pytest.mark.realdata
@pytest.mark.slow
def test_real_data_smoke_one_fold():
    """mlr, rf and svm on 6 real FLUXNET2015 sites: fit on 5, predict the 6th."""
    from fluxcore.features import build_features
    from fluxcore.sources import load_dataset

    ds = load_dataset(REAL)
    humid = [s for s in ds.site_ids if ds.zone_of(s) == "humid"][:6]
    # the paper's variables only: with five training sites the extra drivers (monthly P, EVI)
    # and the site-level features are extrapolated from five points (a tropical test site's
    # rainfall lies outside them), which is not what this smoke test checks
    ft = build_features(ds.subset(sites=humid), {
        "variables": ("TA", "TMIN", "TMAX", "VPD", "SW_IN", "LAI", "ELEV"), "absorbed_radiation": False,
        "site_means": (), "site_attributes": (), "igbp": False})
    te = ft.sites == humid[-1]
    tr = ~te
    obs = ft.y[te].to_numpy()
    ok = np.isfinite(obs).all(axis=1)
    for name, kw in [("mlr", {}), ("rf", {"n_estimators": 30}), ("svm", {"max_fit_rows": 5000})]:
        est = make_learner(name, **kw).fit(ft.X[tr], ft.y[tr], sites=ft.sites[tr], dates=ft.dates[tr])
        p = est.predict(ft.X[te], sites=ft.sites[te], dates=ft.dates[te])
        assert p.shape == (te.sum(), 2) and np.isfinite(p).all()
        r = [np.corrcoef(obs[ok, j], p[ok, j])[0, 1] for j in range(2)]
        assert min(r) > 0.3, (name, r)
