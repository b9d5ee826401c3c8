"""Skill scores (R² vs r², RMSE, MAE, bias) and the zone summary (paper Table 3)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from fluxcore import metrics as M


def _pair(seed=0, n=200):
    rng = np.random.default_rng(seed)
    o = rng.normal(5, 2, n)
    p = o + rng.normal(0.3, 1, n)
    return o, p


def test_scores_match_sklearn_and_numpy():
    o, p = _pair()
    assert M.r2_score(o, p) == pytest.approx(r2_score(o, p), abs=1e-12)
    assert M.pearson_r2(o, p) == pytest.approx(np.corrcoef(o, p)[0, 1] ** 2, abs=1e-12)
    assert M.rmse(o, p) == pytest.approx(np.sqrt(mean_squared_error(o, p)), abs=1e-12)
    assert M.mae(o, p) == pytest.approx(mean_absolute_error(o, p), abs=1e-12)
    assert M.bias(o, p) == pytest.approx(np.mean(p - o), abs=1e-12)


def test_R2_and_r2_differ_for_biased_scaled_predictions():
    o, _ = _pair()
    p = 2 * o + 3  # perfectly correlated, badly scaled
    assert M.pearson_r2(o, p) == pytest.approx(1.0)
    assert M.r2_score(o, p) < 0  # worse than the mean of the observations


def test_nan_pairs_are_ignored_and_counted():
    o = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    p = np.array([1.5, np.nan, 3.0, 4.0, 5.5])
    s = M.scores(o, p)
    assert s["n"] == 3
    assert s["RMSE"] == pytest.approx(np.sqrt((0.25 + 0 + 0.25) / 3))
    assert np.isnan(M.r2_score([1.0], [1.0]))
    assert np.isnan(M.r2_score([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))  # constant observations
    with pytest.raises(ValueError):
        M.rmse([1, 2], [1, 2, 3])


def _preds():
    rng = np.random.default_rng(1)
    rows = []
    for i, (site, _zone) in enumerate([("A", "arid"), ("B", "arid"), ("C", "humid"), ("D", "humid"), ("E", "humid")]):
        o = rng.normal(3, 1, 50)
        for learner, noise in (("mlr", 0.5 + 0.1 * i), ("rf", 0.3)):
            rows.append(pd.DataFrame({"SITE_ID": site, "learner": learner, "target": "GPP",
                                      "observed": o, "predicted": o + rng.normal(0, noise, 50)}))
    return pd.concat(rows, ignore_index=True), {"A": "arid", "B": "arid", "C": "humid", "D": "humid", "E": "humid"}


def test_site_metrics_and_zone_summary_ddof1():
    preds, zones = _preds()
    m = M.site_metrics(preds, zones)
    assert list(m.columns) == M.METRIC_COLUMNS
    assert len(m) == 10
    one = m[(m.SITE_ID == "C") & (m.learner == "mlr")].iloc[0]
    sel = preds[(preds.SITE_ID == "C") & (preds.learner == "mlr")]
    assert one["RMSE"] == pytest.approx(M.rmse(sel.observed, sel.predicted))
    assert one["zone"] == "humid" and one["n"] == 50
    zs = M.zone_summary(m)
    assert list(zs.columns) == M.ZONE_SUMMARY_COLUMNS
    humid = zs[(zs.zone == "humid") & (zs.learner == "mlr")].iloc[0]
    r = m[(m.zone == "humid") & (m.learner == "mlr")]["RMSE"].to_numpy()
    assert humid["rmse_mean"] == pytest.approx(r.mean())
    assert humid["rmse_var"] == pytest.approx(np.var(r, ddof=1))
    assert humid["n_sites"] == 3
    allrow = zs[(zs.zone == "all") & (zs.learner == "rf")].iloc[0]
    assert allrow["n_sites"] == 5
    # zones in paper order, 'all' last
    assert list(dict.fromkeys(zs.zone)) == ["arid", "humid", "all"]
    wide = M.table3(zs, "GPP")
    assert list(wide.index) == ["arid", "humid", "all"]
    assert wide[("mlr", "rmse_var")]["humid"] == pytest.approx(np.var(r, ddof=1))


def test_zone_summary_single_site_variance_is_nan():
    m = pd.DataFrame({"SITE_ID": ["A"], "learner": ["mlr"], "target": ["GPP"], "zone": ["arid"],
                      "R2": [0.5], "r2": [0.6], "RMSE": [1.2], "MAE": [1.0], "bias": [0.1], "n": [10]})
    zs = M.zone_summary(m)
    assert np.isnan(zs.iloc[0]["rmse_var"])
    assert M.zone_summary(m, ddof=0).iloc[0]["rmse_var"] == 0.0
