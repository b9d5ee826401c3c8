"""Tests of fluxcore.skill: distance-skill model and predicted skill of any site."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from factories_heterogeneity import make_world
from scipy import stats

from fluxcore import heterogeneity as het
from fluxcore import skill
from fluxcore.errors import ConfigError

NO_FLUX = ["S13", "S14"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    world = make_world(n_sites=15, years=1, seed=11)
    # two sites have drivers but no flux observations
    daily = world.daily.copy()
    daily.loc[daily["SITE_ID"].isin(NO_FLUX), ["GPP", "ER", "NEE"]] = np.nan
    world = replace(world, daily=daily)
    run = tmp_path_factory.mktemp("skillrun")
    tested = [s for s in world.site_ids if s not in NO_FLUX]
    # distances of the run's folds: every other site of the dataset (pool="all")
    desc = het.site_descriptors(world)
    pd.DataFrame({"SITE_ID": tested, "learner": "rf", "target": "GPP", "zone": "humid", "R2": 0.0}
                 ).to_parquet(run / "metrics.parquet")
    (run / "config.json").write_text(json.dumps({"data": "synthetic", "pool": "all"}))
    dist = het.run_distances(run, world, descriptors=desc)
    rng = np.random.default_rng(0)
    r2 = 0.95 - 0.4 * dist["D_mean"].to_numpy() + rng.normal(0, 0.03, len(dist))
    met = pd.DataFrame({"SITE_ID": dist["SITE_ID"], "learner": "rf", "target": "GPP",
                        "zone": [world.zone_of(s) for s in dist["SITE_ID"]], "R2": r2, "r2": r2,
                        "RMSE": 1 - r2, "MAE": 0.1, "bias": 0.0, "n": 365})
    met.to_parquet(run / "metrics.parquet")
    return world, run, desc, dist, met


def test_fit_skill_model_ols_and_interval(setup):
    _, _, _, dist, met = setup
    m = skill.fit_skill_model(met, dist, "rf", "GPP")
    x, y = dist["D_mean"].to_numpy(), met["R2"].to_numpy()
    lr = stats.linregress(x, y)
    assert m.slope == pytest.approx(lr.slope) and m.intercept == pytest.approx(lr.intercept)
    assert m.slope < 0 and m.n == len(x)
    # textbook prediction interval at one distance
    d0 = 1.3
    n = len(x)
    s = np.sqrt(np.sum((y - lr.intercept - lr.slope * x) ** 2) / (n - 2))
    half = stats.t.ppf(0.95, n - 2) * s * np.sqrt(1 + 1 / n + (d0 - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2))
    p = m.predict([d0], level=0.9).iloc[0]
    assert p["pred"] == pytest.approx(lr.intercept + lr.slope * d0)
    assert p["hi"] - p["pred"] == pytest.approx(half)
    # intervals widen away from the mean distance; everything clipped to [-1, 1]
    far = m.predict([x.mean(), x.mean() + 3, 100.0])
    assert far["hi"].iloc[1] - far["lo"].iloc[1] > far["hi"].iloc[0] - far["lo"].iloc[0]
    assert far["pred"].iloc[2] == -1.0
    with pytest.raises(ConfigError):
        skill.fit_skill_model(met, dist, "lstm", "GPP")
    with pytest.raises(ConfigError):
        skill.fit_skill_model(met.iloc[:2], dist, "rf", "GPP")


def test_isotonic_model_is_non_increasing(setup):
    _, _, _, dist, met = setup
    m = skill.fit_skill_model(met, dist, "rf", "GPP", method="isotonic")
    grid = np.linspace(0, 4, 50)
    p = m.predict(grid)
    assert (np.diff(p["pred"]) <= 1e-12).all()
    assert (p["lo"] <= p["pred"]).all() and (p["pred"] <= p["hi"]).all()


def test_predicted_skill_every_site(setup):
    world, run, desc, dist, met = setup
    out = skill.predicted_skill(run, world, "rf", "GPP", distances=dist, descriptors=desc, extrapolate=True)
    assert sorted(out["SITE_ID"]) == sorted(world.sites.index)
    assert not out.set_index("SITE_ID").loc[NO_FLUX, "has_flux"].any()
    assert out["R2_pred"].notna().all()
    assert ((out["R2_lo"] <= out["R2_pred"]) & (out["R2_pred"] <= out["R2_hi"])).all()
    assert out["R2_pred"].between(-1, 1).all()
    data_sites = [s for s in world.site_ids if s not in NO_FLUX]
    o = out.set_index("SITE_ID")
    for s in ["S00", NO_FLUX[0]]:
        train = [t for t in data_sites if t != s]
        assert o.loc[s, "distance"] == pytest.approx(het.comprehensive_distance(desc, train, s))
    # a run site's distance to all other data sites equals its LOSO distance here (pool=all
    # but the two no-flux sites are not training sites of the skill model)
    assert o.loc["S00", "in_run"] and not o.loc[NO_FLUX[0], "in_run"]
    assert o.loc["S00", "R2_observed"] == pytest.approx(met.set_index("SITE_ID").loc["S00", "R2"])
    # predicted skill falls with distance
    assert np.corrcoef(out["distance"], out["R2_pred"])[0, 1] < -0.99


def test_predict_skill_for_descriptor(setup):
    world, run, desc, dist, _ = setup
    out = skill.predicted_skill(run, world, "rf", "GPP", distances=dist, descriptors=desc,
                                extrapolate=True).set_index("SITE_ID")
    target = NO_FLUX[1]  # not a training site, so a copy of it is at the same distance
    values = desc.loc[target].dropna().to_dict()
    res = skill.predict_skill_for_descriptor(run, world, "rf", "GPP", values, distances=dist, descriptors=desc,
                                             extrapolate=True)
    assert res["distance"] == pytest.approx(out.loc[target, "distance"])
    assert res["R2_pred"] == pytest.approx(out.loc[target, "R2_pred"])
    assert res["n_descriptors"] == len(values)
    few = skill.predict_skill_for_descriptor(run, world, "rf", "GPP", {"TA": 30.0, "P": 0.1, "ASPECT": 90},
                                             distances=dist, descriptors=desc, extrapolate=True)
    assert few["n_descriptors"] == 4 and np.isfinite(few["R2_pred"])
    # a site far from every training site is refused unless extrapolation is asked for
    far = skill.predict_skill_for_descriptor(run, world, "rf", "GPP", {"TA": 80.0, "P": 40.0},
                                             distances=dist, descriptors=desc)
    assert not far["inside"] and far["outside_reason"] == "beyond the fitted distances"
    assert np.isnan(far["R2_pred"])
    with pytest.raises(ConfigError):
        skill.descriptor_row(desc, {"SOC": 3.0})
    with pytest.raises(ConfigError):
        skill.descriptor_row(desc, {})


def test_predicted_skill_with_explicit_training_set(setup):
    world, run, desc, dist, _ = setup
    train = ["S01", "S02", "S03", "S04", "S05", NO_FLUX[0]]  # the no-flux site is ignored
    out = skill.predicted_skill(run, world, "rf", "GPP", distances=dist, descriptors=desc,
                                train_sites=train).set_index("SITE_ID")
    expect = [t for t in train[:-1] if t != "S09"]
    assert out.loc["S09", "distance"] == pytest.approx(het.comprehensive_distance(desc, expect, "S09"))
    assert out.loc["S01", "distance"] == pytest.approx(het.comprehensive_distance(desc, expect[1:], "S01"))


def test_predicted_skill_refuses_to_extrapolate(setup):
    world, run, desc, dist, met = setup
    out = skill.predicted_skill(run, world, "rf", "GPP", distances=dist, descriptors=desc)
    model = skill.fit_skill_model(met, dist, "rf", "GPP")
    lo, hi = model.x_range
    assert (lo, hi) == (pytest.approx(dist["D_mean"].min()), pytest.approx(dist["D_mean"].max()))
    inside = out["distance"].between(lo, hi)
    assert (out["inside"] == inside).all()
    assert out.loc[inside, "R2_pred"].notna().all()
    assert out.loc[~inside, ["R2_pred", "R2_lo", "R2_hi"]].isna().all().all()
    assert set(out.loc[~inside, "outside_reason"]) <= {"beyond the fitted distances", "below the fitted distances"}
    assert out.attrs["skill_model"]["x_max"] == pytest.approx(hi)


def test_line_fitted_on_one_zone_is_not_used_for_other_zones(setup):
    world, run, desc, dist, met = setup
    z = met["zone"].value_counts().index[0]
    one = met[met["zone"] == z]
    model = skill.fit_skill_model(one, dist, "rf", "GPP")
    assert model.zones == (z,)
    why = skill._outside_reasons(model, np.full(2, np.mean(model.x_range)), np.array([z, "other"], dtype=object))
    assert list(why) == ["", "zone not in the fit"]
