"""Figures of fluxcore.plots: traces, 1:1 line, score annotations, density mode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from fluxcore import plots
from fluxcore.metrics import scores
from tests.factories_dashboard import make_predictions, make_sites


def _types(fig):
    return [t.type for t in fig.data]


def test_scatter_has_one_to_one_line_and_scores():
    pred = make_predictions()
    zones = make_sites()["ARIDITY_ZONE"]
    fig = plots.scatter_pred_obs(pred, target="GPP", learners=["rf"], zones=zones, color_by="zone")
    names = [t.name for t in fig.data]
    assert "1:1" in names
    line = fig.data[names.index("1:1")]
    assert list(line.x) == list(line.y)  # a true 1:1 line
    assert {"arid", "semi-arid", "semi-humid", "humid"} == set(names) - {"1:1"}
    assert all(t == "scattergl" for t, n in zip(_types(fig), names, strict=True) if n != "1:1")
    sub = pred[(pred.target == "GPP") & (pred.learner == "rf")]
    s = scores(sub.observed, sub.predicted)
    text = fig.layout.annotations[0].text
    assert f"R² = {s['R2']:.3f}" in text and f"r² = {s['r2']:.3f}" in text
    assert f"RMSE = {s['RMSE']:.3f}" in text and f"n = {s['n']:,}" in text
    assert s["R2"] != pytest.approx(s["r2"])  # biased predictions: R2 and r2 differ


def test_scatter_colour_by_learner_lists_scores_per_learner():
    pred = make_predictions(learners=("rf", "mlr", "svm"))
    fig = plots.scatter_pred_obs(pred, target="ER", color_by="learner")
    names = [t.name for t in fig.data]
    assert names[:3] == ["rf", "mlr", "svm"]
    text = fig.layout.annotations[0].text
    for lrn in ("rf", "mlr", "svm"):
        g = pred[(pred.target == "ER") & (pred.learner == lrn)]
        assert f"<b>{lrn}</b>: R² {scores(g.observed, g.predicted)['R2']:.3f}" in text


def test_density_mode_above_threshold():
    pred = make_predictions(n_sites=4, n_days=400, learners=("rf",), targets=("GPP",))
    n = len(pred)
    small = plots.scatter_pred_obs(pred, threshold=n + 1)
    assert "heatmap" not in _types(small)
    big = plots.scatter_pred_obs(pred, threshold=n - 1)
    assert _types(big)[0] == "heatmap"
    z = np.asarray(big.data[0].z, dtype=float)
    assert np.nansum(z) == n  # every point counted once, nothing sent point by point
    assert z.size <= 150 * 150
    assert "1:1" in [t.name for t in big.data]
    assert f"n = {n:,}" in big.layout.annotations[0].text
    assert plots.DENSITY_THRESHOLD == 20_000


def test_density_grid_square_and_complete():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=1000), rng.normal(2, 1, size=1000)
    c, xe, ye = plots.density_grid(x, y, bins=40)
    assert c.shape == (40, 40) and c.sum() == 1000
    assert np.array_equal(xe, ye)  # same bins on both axes, so the 1:1 line is the diagonal


def test_scatter_drops_nan_and_handles_empty():
    pred = make_predictions(learners=("rf",), targets=("GPP",))
    pred.loc[:9, "observed"] = np.nan
    fig = plots.scatter_pred_obs(pred)
    assert f"n = {len(pred) - 10:,}" in fig.layout.annotations[0].text
    empty = plots.scatter_pred_obs(pred.iloc[:0])
    assert "n = 0" in empty.layout.annotations[0].text


def test_timeseries_traces():
    pred = make_predictions()
    fig = plots.timeseries(pred, "XX-S01", "GPP")
    assert [t.name.split(" ")[0] for t in fig.data] == ["observed", "rf", "mlr"]
    assert len(fig.data[0].x) == 100


def test_table3_frame_layout():
    from fluxcore.metrics import site_metrics, zone_summary

    pred = make_predictions(n_sites=8)
    m = site_metrics(pred, make_sites()["ARIDITY_ZONE"])
    t = plots.table3_frame(zone_summary(m), "GPP")
    assert list(t.index) == ["arid", "semi-arid", "semi-humid", "humid", "all"]
    assert "rf RMSE mean" in t.columns and "mlr RMSE var" in t.columns
    exp = m[(m.target == "GPP") & (m.learner == "rf") & (m.zone == "arid")]["RMSE"].mean()
    assert t.loc["arid", "rf RMSE mean"] == pytest.approx(exp, abs=1e-3)


def test_distance_skill_figure_fit_and_correlations():
    rng = np.random.default_rng(1)
    sites = make_sites(20)
    d = pd.DataFrame({"SITE_ID": sites.SITE_ID, "D_mean": rng.uniform(1, 4, 20)})
    metrics = pd.DataFrame({"SITE_ID": sites.SITE_ID, "learner": "rf", "target": "GPP",
                            "zone": sites.ARIDITY_ZONE.to_numpy(),
                            "R2": 0.9 - 0.2 * d.D_mean.to_numpy() + rng.normal(0, 0.05, 20)})
    fig = plots.distance_skill_figure(metrics, d, learner="rf", target="GPP")
    names = [t.name for t in fig.data]
    assert "fit" in names and "arid" in names
    fit = fig.data[names.index("fit")]
    assert fit.y[-1] < fit.y[0]  # negative slope
    text = fig.layout.annotations[0].text
    from scipy.stats import pearsonr

    r = pearsonr(d.D_mean, metrics.R2).statistic
    assert f"Pearson r = {r:+.2f}" in text and "Spearman ρ = " in text and "p < 0.001" in text
    assert "R² ≈ " in text and " − " in text and "× D_mean" in text  # negative slope written once
    assert "Small sample" not in text
    # the statistics sit below the plotting area (never over the points or the line)
    assert fig.layout.annotations[0].y < 0


def test_distance_skill_figure_small_sample_is_honest():
    d = pd.DataFrame({"SITE_ID": ["a", "b", "c"], "D_mean": [1.0, 2.0, 3.0]})
    metrics = pd.DataFrame({"SITE_ID": ["a", "b", "c"], "learner": "rf", "target": "GPP", "zone": "arid",
                            "R2": [0.9, 0.5, 0.1]})
    text = plots.distance_skill_figure(metrics, d, learner="rf", target="GPP").layout.annotations[0].text
    assert "ρ = -1.00" in text and "exact p = 0.33" in text and "p = 0 " not in text
    assert "Small sample" in text
    one = plots.distance_skill_figure(metrics.iloc[:1], d, learner="rf", target="GPP").layout.annotations[0].text
    assert "n/a (1 site)" in one and "None" not in one


def _skill_table():
    sites = make_sites(6)
    pred = pd.DataFrame({"SITE_ID": sites.SITE_ID, "distance": [1.0, 1.5, 2.0, 2.5, 9.0, np.nan],
                         "inside": [True, True, True, True, False, False],
                         "outside_reason": ["", "", "", "", "beyond the fitted distances", "no distance"],
                         "R2_pred": [0.72, 0.715, -0.9, 0.71, np.nan, np.nan],
                         "R2_lo": [0.5, 0.5, -1.0, 0.4, np.nan, np.nan],
                         "R2_hi": [0.9, 0.9, -0.6, 0.95, np.nan, np.nan],
                         "R2_observed": [0.7, np.nan, np.nan, np.nan, np.nan, np.nan]})
    pred.attrs["skill_model"] = {"x_min": 1.0, "x_max": 2.5, "level": 0.9}
    return sites, pred


def test_skill_map_fixed_scale_clipping_and_outside_markers():
    sites, pred = _skill_table()
    fig = plots.skill_map_figure(pred, sites)
    names = [t.name for t in fig.data]
    main = fig.data[names.index("predicted R²")]
    # fixed colour scale, not stretched over 0.71-0.72
    assert (main.marker.cmin, main.marker.cmax) == plots.SKILL_RANGE
    assert min(main.marker.color) == plots.SKILL_RANGE[0]  # -0.9 clipped to -0.5
    assert len(main.x) == 4
    out = fig.data[names.index("outside the fit")]
    assert len(out.x) == 1 and out.marker.color == plots.OUTSIDE_COLOR
    assert "beyond the fitted distances" in out.text[0]
    assert len(fig.data[names.index("no distance")].x) == 1
    note = next(a.text for a in fig.layout.annotations if a.name == "skill_note")
    assert "1 site predicted below -0.5" in note and "1 site outside the fit" in note and "1.00..2.50" in note
    assert "±" in note and "interval" in main.text[0] and "observed R² 0.70" in main.text[0]
    html = plots.figure_html(fig)
    assert "cdn.plot.ly" not in html.split("<script")[0]


def test_figure_html_embeds_plotlyjs():
    fig = plots.zone_bar({"arid": 1, "humid": 3})
    html = plots.figure_html(fig)
    import re

    assert not [u for u in re.findall(r'<script[^>]+src="([^"]+)"', html)]  # no external script
    assert len(html) > 1_000_000  # plotly.js embedded
    assert isinstance(fig, go.Figure)
