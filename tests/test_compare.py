"""Tests of fluxcore.compare: paired per-site differences with bootstrap intervals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fluxcore import compare
from fluxcore.errors import ConfigError

ZONES4 = ["arid", "semi-arid", "semi-humid", "humid"]


def _metrics(n: int = 40, delta: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Two learners; sites differ a lot in difficulty, B = A - delta + small noise."""
    rng = np.random.default_rng(seed)
    sites = [f"S{i:03d}" for i in range(n)]
    zones = [ZONES4[i % 4] for i in range(n)]
    base = rng.uniform(-0.2, 0.9, n)  # site difficulty shared by both learners
    a = base + rng.normal(0, 0.01, n)
    b = base - delta + rng.normal(0, 0.01, n)
    rows = [pd.DataFrame({"SITE_ID": sites, "learner": lrn, "target": "GPP", "zone": zones, "R2": v,
                          "RMSE": 1 - v}) for lrn, v in (("rf", a), ("mlr", b))]
    return pd.concat(rows, ignore_index=True)


def test_paired_differences_are_exact_per_site():
    m = _metrics()
    p = compare.paired_scores(m, "rf", learner_b="mlr")
    assert list(p.columns) == list(compare.PAIR_COLUMNS) and len(p) == 40
    a = m[m.learner == "rf"].set_index("SITE_ID")["R2"]
    b = m[m.learner == "mlr"].set_index("SITE_ID")["R2"]
    np.testing.assert_allclose(p.set_index("SITE_ID")["diff"], (a - b).reindex(p["SITE_ID"]))
    with pytest.raises(ConfigError, match="two different learners"):
        compare.paired_scores(m, "rf")
    with pytest.raises(ConfigError, match="no learner 'svm'"):
        compare.paired_scores(m, "svm", learner_b="rf")


def test_interval_contains_true_difference_and_is_seeded():
    m = _metrics(delta=0.05)
    s = compare.summarize_pairs(compare.paired_scores(m, "rf", learner_b="mlr"), seed=1)
    row = s[s.zone == "all"].iloc[0]
    assert row["ci_lo"] < 0.05 < row["ci_hi"]
    assert row["mean_diff"] == pytest.approx(0.05, abs=0.01)
    assert row["verdict"] == "A better" and row["n_a_better"] >= 38
    again = compare.summarize_pairs(compare.paired_scores(m, "rf", learner_b="mlr"), seed=1)
    pd.testing.assert_frame_equal(s, again)
    other = compare.summarize_pairs(compare.paired_scores(m, "rf", learner_b="mlr"), seed=2)
    assert other.loc[0, "ci_lo"] != s.loc[0, "ci_lo"]
    assert set(s.zone) == {"all", *ZONES4} and (s[s.zone != "all"].n_sites == 10).all()


def test_paired_interval_is_much_narrower_than_unpaired():
    m = _metrics(delta=0.05)
    row = compare.summarize_pairs(compare.paired_scores(m, "rf", learner_b="mlr")).iloc[0]
    paired = row["ci_hi"] - row["ci_lo"]
    unpaired = row["unpaired_hi"] - row["unpaired_lo"]
    assert paired < unpaired / 5
    assert row["unpaired_lo"] < 0 < row["unpaired_hi"]  # unpaired cannot see the difference


def test_bootstrap_coverage_on_known_distribution():
    # 95 % intervals of the mean of N(0.1, 0.2) samples cover 0.1 in most of 100 draws
    rng = np.random.default_rng(5)
    hits = 0
    for i in range(100):
        _, lo, hi = compare.bootstrap_mean_ci(rng.normal(0.1, 0.2, 30), n_boot=500, seed=i)
        hits += lo < 0.1 < hi
    assert 0.85 <= hits / 100 <= 1.0
    assert np.isnan(compare.bootstrap_mean_ci([0.1, 0.2])[1])
    with pytest.raises(ConfigError):
        compare.bootstrap_mean_ci([1, 2, 3], level=1.5)


def test_rmse_lower_is_better_and_no_difference():
    m = _metrics(delta=0.0, seed=3)
    p = compare.paired_scores(m, "rf", learner_b="mlr", metric="RMSE")
    s = compare.summarize_pairs(p, higher_is_better=False)
    assert s.loc[0, "verdict"] == "no clear difference"
    m2 = _metrics(delta=0.1)
    s2 = compare.summarize_pairs(compare.paired_scores(m2, "rf", learner_b="mlr", metric="RMSE"),
                                 higher_is_better=False)
    assert s2.loc[0, "verdict"] == "A better"  # rf has the lower RMSE


def _write_run(path, metrics, seed=0):
    path.mkdir(parents=True)
    metrics.to_parquet(path / "metrics.parquet")
    (path / "config.json").write_text(json.dumps({"data": "demo", "seed": seed}))
    return path


def test_two_runs_on_common_sites_and_seed_spread(tmp_path):
    m1 = _metrics(seed=0)
    m2 = m1.copy()
    m2["R2"] = m2["R2"] + np.where(m2["learner"] == "rf", 0.02, 0.0)
    m2 = m2[m2["SITE_ID"] != "S000"]  # one site missing in run 2
    r1 = _write_run(tmp_path / "run1", m1)
    r2 = _write_run(tmp_path / "run2", m2, seed=1)
    c = compare.compare(r2, "rf", run_b=r1, synthetic=True)
    assert c.pairs["SITE_ID"].nunique() == 39
    assert c.summary.loc[0, "mean_diff"] == pytest.approx(0.02)
    assert c.summary.loc[0, "ci_lo"] == pytest.approx(0.02) and c.summary.loc[0, "ci_hi"] == pytest.approx(0.02)
    assert any("39 sites" in n for n in c.notes) and any("synthetic" in n for n in c.notes)
    assert "run2: rf" in c.label_a and "is better" in c.sentence("GPP")
    sp = compare.seed_spread([m1, m2], "rf")
    row = sp[sp.zone == "all"].iloc[0]
    assert row["n_runs"] == 2 and row["n_sites"] == 39
    assert row["median_site_sd"] == pytest.approx(0.02 / np.sqrt(2))
    with pytest.raises(ConfigError):
        compare.seed_spread([m1], "rf")


def test_benchmark_on_real_site_ids_uses_common_sites():
    m = _metrics(n=8)
    m["SITE_ID"] = m["SITE_ID"].str.replace("S00", "US-X")
    anchors = pd.DataFrame({"SITE_ID": ["US-X0", "US-X1", "US-X2", "DE-Zzz"], "target": "GPP", "model": "tam-rl",
                            "split": "Koppen", "features": "minimal", "ensemble": False,
                            "R2": [0.5, 0.6, 0.7, 0.9], "RMSE": 1.0})
    run = {"metrics": m}
    c = compare.compare(type("R", (), {"config": {}, "metrics": m, "key": "abc"})(), "rf", "mlr",
                        synthetic=False, anchors=anchors)
    assert c.benchmark is not None
    cfb = c.benchmark[c.benchmark.source == "CarbonFluxBench"].iloc[0]
    assert cfb["n_sites"] == 3 and cfb["median_R2"] == pytest.approx(0.6)
    assert set(c.benchmark[c.benchmark.source == "fluxcore"]["model"]) == {"rf", "mlr"}
    assert run


def test_figures():
    c = compare.compare(type("R", (), {"config": {}, "metrics": _metrics(), "key": "k"})(), "rf", "mlr",
                        synthetic=True)
    fig = compare.paired_difference_figure(c, "GPP")
    names = [t.name for t in fig.data]
    assert {"interval", "mean", "zero", "arid", "humid"} <= set(names)
    pts = sum(len(t.y) for t in fig.data if t.name in ZONES4)
    assert pts == 40
    band = fig.data[names.index("interval")]
    assert min(band.y) == pytest.approx(c.summary.loc[0, "ci_lo"])
    zfig = compare.zone_difference_figure(c, "GPP")
    assert list(zfig.data[0].x) == ["all", *ZONES4]


@pytest.mark.slow
def test_compare_page_on_a_stored_run(tmp_path, monkeypatch):
    """The Compare page (AppTest): two learners of one run, sentence, figures and tables."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from fluxcore.sources import load_dataset
    from tests.factories_dashboard import write_fake_run

    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("FLUXCORE_RUNS_DIR", str(runs))
    monkeypatch.delenv("FLUXCORE_DATA", raising=False)
    demo = load_dataset("demo")
    sites = [s for s in demo.site_ids if demo.zone_of(s) == "arid"][:3] + \
        [s for s in demo.site_ids if demo.zone_of(s) == "humid"][:3]
    write_fake_run(runs, demo, sites)
    from pathlib import Path

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="cmp_learner_a").value != at.selectbox(key="cmp_learner_b").value
    assert len(at.get("plotly_chart")) == 2
    info = " ".join(str(i.value) for i in at.info)
    assert "minus" in info and "interval" in info
    assert any("synthetic" in str(c.value) for c in at.caption)  # no CarbonFluxBench on synthetic sites
