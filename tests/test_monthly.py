"""Monthly tower workflow: the temporal split rule, no test month / test site reaches a fit, scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories_loso import SpyLearner, make_flux_dataset

from fluxcore.errors import ConfigError
from fluxcore.features import build_features
from fluxcore.learners.base import _REGISTRY
from fluxcore.monthly import (
    MonthlyEvaluation,
    monthly_loso,
    narcf_feature_config,
    north_american_sites,
    pearson_r,
    score_predictions,
    temporal_holdout,
    temporal_split,
    tower_feature_config,
)
from fluxcore.timeres import to_monthly


@pytest.fixture(scope="module")
def monthly():
    return to_monthly(make_flux_dataset(n_sites=6, n_years=4, seed=11))


class DateSpy(SpyLearner):
    """Mean predictor recording the (site, month) rows given to every fit."""

    name = "test_datespy"
    ROWS: list = []

    def fit(self, X, y, *, sites, dates, sample_weight=None):
        DateSpy.ROWS.append(pd.DataFrame({"SITE_ID": np.asarray(sites).astype(str),
                                          "DATE": np.asarray(dates)}))
        return super().fit(X, y, sites=sites, dates=dates, sample_weight=sample_weight)


@pytest.fixture
def spy(monkeypatch):
    monkeypatch.setitem(_REGISTRY, "test_datespy", DateSpy)
    DateSpy.ROWS.clear()
    SpyLearner.FIT_LOG.clear()
    return DateSpy


def _months(site_years: dict[str, list[int]]):
    s, d = [], []
    for site, years in site_years.items():
        for y in years:
            for m in range(1, 13):
                s.append(site)
                d.append(np.datetime64(f"{y}-{m:02d}-01"))
    return np.array(s), np.array(d, dtype="datetime64[ns]")


# ----------------------------------------------------------------- split rule
def test_temporal_split_rule_known_answers():
    s, d = _months({"A": list(range(2005, 2015)),   # 10 years -> last 3 test
                    "B": [2010, 2011, 2012, 2013],  # 4 years -> round(1.2) = 1 test year
                    "C": [2012],                    # 1 year -> not tested, all training
                    "D": [2008, 2009]})             # 2 years -> the last one
    year = pd.DatetimeIndex(d).year.to_numpy()
    test = temporal_split(s, d)
    assert set(year[(s == "A") & test]) == {2012, 2013, 2014}
    assert set(year[(s == "A") & ~test]) == set(range(2005, 2012))
    assert set(year[(s == "B") & test]) == {2013}
    assert not test[s == "C"].any()
    assert set(year[(s == "D") & test]) == {2009}
    # a year without any observed target does not count as one of the site's years
    obs = np.where((s == "B") & (year == 2013), np.nan, 1.0)
    t2 = temporal_split(s, d, obs)
    assert set(year[(s == "B") & t2]) == {2012, 2013}  # observed 2010-2012: last one, and later rows
    # fraction 0.5 of 10 years: 5
    assert set(year[(s == "A") & temporal_split(s, d, test_fraction=0.5)]) == set(range(2010, 2015))
    # one calendar split for every site (NARCF: train to 2014, test 2015)
    tc = temporal_split(s, d, cutoff_year=2012)
    assert np.array_equal(tc, year >= 2012)
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ConfigError, match="test_fraction"):
            temporal_split(s, d, test_fraction=bad)
    with pytest.raises(ConfigError, match="cutoff_year"):
        temporal_split(s, d, cutoff_year="2012")


# -------------------------------------------------------------- temporal hold-out
def test_temporal_holdout_never_fits_on_test_months(monthly, spy, monkeypatch):
    from fluxcore.learners.mlp import MLPLearner

    val_dates = []
    orig = MLPLearner._split

    def split_spy(self, sites, dates, rows, rng):
        out = orig(self, sites, dates, rows, rng)
        val_dates.append(pd.DataFrame({"SITE_ID": sites[out[1]], "DATE": dates[out[1]]}))
        return out

    monkeypatch.setattr(MLPLearner, "_split", split_spy)
    tiny = {"hidden": (8,), "max_epochs": 2, "batch_size": 64}
    ev = temporal_holdout(monthly, ["test_datespy", "mlp"], targets=["GPP", "NEE"],
                          params={"mlp": tiny})
    assert isinstance(ev, MonthlyEvaluation) and ev.evaluation == "temporal"
    test = ev.predictions[["SITE_ID", "DATE"]].drop_duplicates()
    first_test = test.groupby("SITE_ID")["DATE"].min()
    assert len(first_test) == 6 and (pd.DatetimeIndex(first_test).year == 2013).all()  # 4 years -> last 1
    fit = DateSpy.ROWS[0]
    assert len(DateSpy.ROWS) == 1
    assert not fit.merge(test, on=["SITE_ID", "DATE"]).shape[0]  # no test month was fitted
    assert (fit.groupby("SITE_ID")["DATE"].max() < first_test).all()
    # mlp: validation by years, from the training years only
    assert ev.info["params"]["mlp"]["val_by"] == "years"
    val = val_dates[0]
    assert len(val) and (pd.DatetimeIndex(val["DATE"]).year == 2012).all()
    assert set(ev.scores["learner"]) == {"mlp", "test_datespy"} and set(ev.scores["target"]) == {"GPP", "NEE"}
    assert ev.info["units"]["NEE"] == "gC m-2 month-1"


def test_temporal_holdout_rejects_daily_and_missing_targets(monthly):
    daily = make_flux_dataset(n_sites=3, seed=1)
    with pytest.raises(ConfigError, match="monthly"):
        temporal_holdout(daily, ["mlr"])
    with pytest.raises(ConfigError, match="target"):
        temporal_holdout(monthly, ["mlr"], targets=[])


# ------------------------------------------------------------------------ LOSO
def test_monthly_loso_no_fit_sees_its_test_site(monthly, spy, tmp_path):
    ev = monthly_loso(monthly, ["test_datespy"], targets=["NEE"], runs_dir=tmp_path, strategy="per-fold")
    sites = set(monthly.site_ids)
    assert len(DateSpy.ROWS) == len(sites)
    fitted_without = [sites - set(r["SITE_ID"]) for r in DateSpy.ROWS]
    assert sorted(next(iter(x)) for x in fitted_without) == sorted(sites)  # each fold lacks one site
    assert all(len(x) == 1 for x in fitted_without)
    assert set(ev.predictions["SITE_ID"]) == sites and ev.evaluation == "loso"


def test_monthly_loso_test_targets_do_not_change_its_predictions(monthly, tmp_path):
    site = monthly.site_ids[0]
    d = monthly.daily.copy()
    rows = d["SITE_ID"] == site
    d.loc[rows, "NEE"] = d.loc[rows, "NEE"] * 100 + 500
    poisoned = type(monthly)(sites=monthly.sites, daily=d, name=monthly.name, synthetic=True,
                             time_step="monthly")
    kw = {"targets": ["NEE"], "sites": [site], "strategy": "per-fold"}
    a = monthly_loso(monthly, ["mlr"], runs_dir=tmp_path / "a", **kw).predictions
    b = monthly_loso(poisoned, ["mlr"], runs_dir=tmp_path / "b", **kw).predictions
    np.testing.assert_allclose(a["predicted"].to_numpy(), b["predicted"].to_numpy())
    assert not np.allclose(a["observed"].to_numpy(), b["observed"].to_numpy())


# --------------------------------------------------------------------- scores
def test_scores_known_answers_and_north_american_subset():
    rng = np.random.default_rng(0)
    o = rng.normal(size=40)
    p = o + rng.normal(scale=0.5, size=40)
    preds = pd.DataFrame({"SITE_ID": ["US-Aaa"] * 20 + ["DE-Bbb"] * 20, "learner": "x", "target": "NEE",
                          "observed": o, "predicted": p})
    sc = score_predictions(preds, "temporal").set_index("subset")
    assert sc.loc["all", "r"] == pytest.approx(np.corrcoef(o, p)[0, 1])
    assert sc.loc["all", "RMSE"] == pytest.approx(np.sqrt(np.mean((p - o) ** 2)))
    assert sc.loc["north_america", "r"] == pytest.approx(np.corrcoef(o[:20], p[:20])[0, 1])
    assert sc.loc["north_america", "n_sites"] == 1 and sc.loc["all", "n"] == 40
    assert pearson_r(o, -p) == pytest.approx(-np.corrcoef(o, p)[0, 1])  # signed
    assert north_american_sites(["US-Ha1", "DE-Tha", "CA-Man", "MX-Lpa", "BR-Sa1"]) == ["CA-Man", "MX-Lpa", "US-Ha1"]


def test_feature_configs(monthly):
    narcf = build_features(monthly, narcf_feature_config(monthly), ["NEE"]).X.columns
    assert {"TA", "VPD", "SW_IN", "P", "LAI"} <= set(narcf)
    assert any(c.startswith("IGBP_") for c in narcf)
    assert not {"MONTH_SIN", "LAT", "SW_IN_POT", "ELEV"} & set(narcf)
    assert not any(c.startswith("SITE_MEAN_") for c in narcf)
    tower = build_features(monthly, tower_feature_config(), ["NEE"]).X.columns
    assert "MONTH_SIN" in tower and not any(c.startswith("SITE_MEAN_") for c in tower)
