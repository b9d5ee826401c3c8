"""Tests of fluxcore.fuzzy: membership functions, alpha-cut, fuzzy zones, FuzzyZoneLearner, presets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories_heterogeneity import make_world

from fluxcore import fuzzy
from fluxcore import heterogeneity as het
from fluxcore.aridity import aridity_zone
from fluxcore.errors import ConfigError
from fluxcore.variables import ZONES

FEATURES = ["TA", "P", "SW_IN", "VPD", "LAI"]


@pytest.fixture(scope="module")
def world():
    return make_world(n_sites=12, years=1, seed=7)


@pytest.fixture(scope="module")
def desc(world):
    return het.site_descriptors(world)


def _xy(world, sites):
    fr = world.frame()
    fr = fr[fr["SITE_ID"].isin(sites)]
    return (fr[FEATURES].reset_index(drop=True), fr[["GPP", "ER"]].reset_index(drop=True),
            fr["SITE_ID"].to_numpy(dtype=str), fr["DATE"].to_numpy())


# ------------------------------------------------------------------ membership functions
@pytest.mark.parametrize("fn", [fuzzy.gaussian, fuzzy.cauchy])
def test_membership_functions_bounded_and_monotone(fn):
    d = np.linspace(0, 10, 101)
    mu = fn(d, 1.3)
    assert mu[0] == pytest.approx(1.0)
    assert ((mu >= 0) & (mu <= 1)).all()
    assert (np.diff(mu) <= 0).all() and mu[-1] < 0.05
    with pytest.raises(ConfigError):
        fn(d, 0.0)


def test_gaussian_and_cauchy_values():
    assert fuzzy.gaussian(1.0, 1.0) == pytest.approx(np.exp(-0.5))
    assert fuzzy.cauchy(2.0, 2.0) == pytest.approx(0.5)


def test_site_memberships_monotone_in_distance_and_training_only_width(desc):
    train = list(desc.index[1:])
    mu = fuzzy.site_memberships(desc, train, "S00")
    d = het.site_distances(desc, train, "S00")
    assert list(mu.index) == train
    assert ((mu >= 0) & (mu <= 1)).all()
    order = d.sort_values().index
    assert (np.diff(mu[order].to_numpy()) <= 1e-12).all()
    width = fuzzy.training_width(desc, train)
    np.testing.assert_allclose(mu.to_numpy(), np.exp(-0.5 * (d.to_numpy() / width) ** 2))
    # the width and normalisation do not move when the test site's values change
    changed = desc.copy()
    changed.loc["S00"] = changed.loc["S00"] + 5.0
    assert fuzzy.training_width(changed, train) == pytest.approx(width)
    mu_c = fuzzy.site_memberships(changed, train, "S00", kind="cauchy", width=0.8)
    assert ((mu_c > 0) & (mu_c <= 1)).all()
    with pytest.raises(ConfigError):
        fuzzy.site_memberships(desc, train, "S00", kind="triangle")


def test_alpha_cut_keeps_min_sites(desc):
    train = list(desc.index[1:])
    full = fuzzy.site_memberships(desc, train, "S00")
    cut = fuzzy.site_memberships(desc, train, "S00", alpha_cut=0.6, min_sites=3)
    top3 = full.sort_values(ascending=False).index[:3]
    expect = full.where((full >= 0.6) | full.index.isin(top3), 0.0)
    pd.testing.assert_series_equal(cut, expect)
    all_cut = fuzzy.site_memberships(desc, train, "S00", alpha_cut=1.0, min_sites=4)
    assert (all_cut > 0).sum() == 4
    assert set(all_cut[all_cut > 0].index) == set(full.sort_values(ascending=False).index[:4])
    with pytest.raises(ConfigError):
        fuzzy.apply_alpha_cut(full, 1.5)


# ------------------------------------------------------------------ fuzzy aridity zones
def test_zone_memberships_partition_of_unity_and_hard_zones():
    ai = np.exp(np.linspace(np.log(0.01), np.log(5), 400))
    zm = fuzzy.zone_memberships(ai)
    assert list(zm.columns) == list(ZONES)
    np.testing.assert_allclose(zm.sum(axis=1), 1.0)
    assert ((zm >= 0) & (zm <= 1)).all().all()
    assert (np.diff(zm["arid"]) <= 1e-12).all() and (np.diff(zm["humid"]) >= -1e-12).all()
    far = [0.05, 0.1, 0.3, 0.4, 0.57, 1.0, 3.0]
    zf = fuzzy.zone_memberships(far)
    for a, (_, row) in zip(far, zf.iterrows(), strict=True):
        assert row[aridity_zone(a)] == pytest.approx(1.0)
    at = fuzzy.zone_memberships([0.2, 0.5, 0.65])
    assert at.loc[0, "arid"] == pytest.approx(0.5) and at.loc[0, "semi-arid"] == pytest.approx(0.5)
    assert at.loc[1, "semi-humid"] == pytest.approx(0.5) and at.loc[2, "humid"] == pytest.approx(0.5)
    s = fuzzy.zone_memberships(pd.Series([0.1, np.nan], index=["a", "b"]))
    assert list(s.index) == ["a", "b"] and s.loc["b"].isna().all()
    with pytest.raises(ConfigError):
        fuzzy.zone_memberships(0.3, overlap=0.2)


def test_fuzzy_zone_learner_contract(world):
    ai = fuzzy.site_aridity(world)
    train = world.site_ids[1:]
    X, y, s, d = _xy(world, train)
    Xt, yt, st, dt = _xy(world, ["S00"])
    lrn = fuzzy.FuzzyZoneLearner(base="mlr", aridity=ai.to_dict(), random_state=0)
    assert lrn.clone().get_params()["base"] == "mlr"
    assert lrn.fit(X, y, sites=s, dates=d) is lrn
    p1 = lrn.predict(Xt, sites=st, dates=dt)
    assert p1.shape == (len(Xt), 2) and np.isfinite(p1).all()
    p2 = fuzzy.FuzzyZoneLearner(base="mlr", aridity=ai.to_dict(), random_state=0).fit(
        X, y, sites=s, dates=d).predict(Xt, sites=st, dates=dt)
    np.testing.assert_array_equal(p1, p2)
    # every zone model is trained on the sites whose membership passes min_membership
    zm = fuzzy.zone_memberships(ai[train])
    for z, sites in lrn.zone_sites_.items():
        assert set(sites) == set(zm.index[zm[z] >= 0.05])
    # a test site deep inside one zone is predicted by that zone's model alone
    z0 = aridity_zone(ai["S00"])
    if z0 in lrn.models_ and fuzzy.zone_memberships(ai["S00"]).loc[0, z0] == 1.0:
        np.testing.assert_allclose(p1, lrn.models_[z0].predict(Xt, sites=st, dates=dt))
    with pytest.raises(ConfigError):
        fuzzy.FuzzyZoneLearner(base="mlr", aridity={"S01": 0.3}).fit(X, y, sites=s, dates=d)


def test_fuzzy_zone_learner_random_forest_deterministic(world):
    ai = fuzzy.site_aridity(world).to_dict()
    X, y, s, d = _xy(world, world.site_ids[1:])
    Xt, _, st, dt = _xy(world, ["S00"])
    kw = {"base": "rf", "base_params": {"n_estimators": 5, "max_samples": 0.3}, "aridity": ai}
    a = fuzzy.FuzzyZoneLearner(**kw, random_state=3).fit(X, y, sites=s, dates=d).predict(Xt, sites=st, dates=dt)
    b = fuzzy.FuzzyZoneLearner(**kw, random_state=3).fit(X, y, sites=s, dates=d).predict(Xt, sites=st, dates=dt)
    np.testing.assert_array_equal(a, b)


def test_zone_fallback_to_nearest_zone_model(world):
    ai = {**fuzzy.site_aridity(world).to_dict(), "S00": 0.05}  # test site deep in arid
    humid = [k for k, v in ai.items() if v > 0.8 and k != "S00"]
    X, y, s, d = _xy(world, humid)
    Xt, _, st, dt = _xy(world, ["S00"])
    assert len(humid) >= 3
    lrn = fuzzy.FuzzyZoneLearner(base="mlr", aridity=ai).fit(X, y, sites=s, dates=d)
    assert list(lrn.models_) == ["humid"] and not lrn.fallback_
    np.testing.assert_allclose(lrn.predict(Xt, sites=st, dates=dt),
                               lrn.models_["humid"].predict(Xt, sites=st, dates=dt))
    # too few sites in every zone: one model on all training rows
    X2, y2, s2, d2 = _xy(world, humid[:2])
    lrn2 = fuzzy.FuzzyZoneLearner(base="mlr", aridity=ai, min_sites=3).fit(X2, y2, sites=s2, dates=d2)
    assert lrn2.fallback_ and list(lrn2.models_) == ["all"]
    from fluxcore.learners import make_learner

    plain = make_learner("mlr").fit(X2, y2, sites=s2, dates=d2)
    np.testing.assert_allclose(lrn2.predict(Xt, sites=st, dates=dt), plain.predict(Xt, sites=st, dates=dt))


# ------------------------------------------------------------------ presets / variants
def test_presets_and_make_variant(world):
    for name in ("lstm_fuzzy", "rf_fuzzy", "svm_fuzzy", "mlr_fuzzy", "lstm_fuzzyzones", "rf_fuzzyzones"):
        assert name in fuzzy.PRESETS
    v = fuzzy.make_variant("rf_fuzzy", world, {"n_estimators": 7, "alpha_cut": 0.9, "min_sites": 2},
                           random_state=11)
    assert v.learner.get_params()["n_estimators"] == 7
    assert v.learner.get_params()["random_state"] == 11
    train = world.site_ids[1:]
    w = v.weight_fn(train, "S00")
    assert list(w.index) == train and w.max() == pytest.approx(1.0) and (w >= 0).all()
    assert (w > 0).sum() >= 2
    vz = fuzzy.make_variant("mlr_fuzzyzones", world, {}, random_state=0)
    assert vz.weight_fn is None and isinstance(vz.learner, fuzzy.FuzzyZoneLearner)
    assert set(vz.learner.aridity) == set(world.site_ids)
    with pytest.raises(ConfigError):
        fuzzy.make_variant("knn_fuzzy", world)


def test_site_aridity_falls_back_to_drivers(world):
    from dataclasses import replace

    sites = world.sites.copy()
    sites["ARIDITY_INDEX"] = np.nan
    ai = fuzzy.site_aridity(replace(world, sites=sites))
    assert ai.notna().all() and (ai > 0).all()
