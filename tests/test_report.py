"""Tests of fluxcore.report: the paper tables recomputed independently from a small run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories_heterogeneity import make_world
from scipy import stats

from fluxcore import report


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A real leave-one-site-out run (MLR and MLR + fuzzy) on 8 synthetic sites."""
    from threadpoolctl import threadpool_limits

    from fluxcore.config import RunConfig
    from fluxcore.loso import run_loso

    world = make_world(n_sites=8, years=1, seed=21, prefix=["US-", "DE-"])
    cfg = RunConfig(data="synthetic-test", learners=["mlr", "mlr_fuzzy"], targets=["GPP", "ER"], seed=1)
    with threadpool_limits(1):  # small BLAS problems: threads only contend on a shared machine
        run_dir = run_loso(cfg, dataset=world, runs_dir=tmp_path_factory.mktemp("runs"))
    return world, run_dir


@pytest.mark.slow
def test_report_numbers_recomputed_with_pandas(small_run, tmp_path):
    world, run_dir = small_run
    path = report.write_report(run_dir, dataset=world, out_dir=tmp_path / "rep")
    assert path.name == "report.md" and path.is_file()
    text = path.read_text()
    assert "SYNTHETIC" in text and "Table 3" in text and "0.72" in text
    met = pd.read_parquet(run_dir / "metrics.parquet")

    # Table 3 with plain pandas
    t3 = pd.read_csv(tmp_path / "rep" / "table3.csv")
    g = met.groupby(["target", "zone", "learner"])["RMSE"]
    ref = pd.DataFrame({"mean": g.mean(), "var": g.var(ddof=1), "n": g.size()}).reset_index()
    merged = t3[t3["zone"] != "all"].merge(ref, on=["target", "zone", "learner"], how="outer")
    assert len(merged) == len(ref) and merged["rmse_mean"].notna().all()
    np.testing.assert_allclose(merged["rmse_mean"], merged["mean"])
    np.testing.assert_allclose(merged["rmse_var"], merged["var"], equal_nan=True)
    assert (merged["n_sites"] == merged["n"]).all()
    gpp_arid = t3[(t3["target"] == "GPP") & (t3["zone"] == "arid")]
    assert (gpp_arid["paper_lstm_rmse"] == 0.62).all()
    all_rows = t3[t3["zone"] == "all"].set_index(["target", "learner"])["rmse_mean"]
    np.testing.assert_allclose(all_rows.sort_index(), met.groupby(["target", "learner"])["RMSE"].mean().sort_index())

    # US mean R² / r² with plain pandas
    us = pd.read_csv(tmp_path / "rep" / "us_skill.csv").set_index(["learner", "target"])
    usm = met[met["SITE_ID"].str.startswith("US-")].groupby(["learner", "target"])[["R2", "r2"]].mean()
    assert len(us) == len(usm) == 4
    np.testing.assert_allclose(us.loc[usm.index, "R2_mean"], usm["R2"])
    np.testing.assert_allclose(us.loc[usm.index, "r2_mean"], usm["r2"])
    assert (us["paper_R2"] == 0.72).all() and (us["n_sites"] == 4).all()

    # fuzzy versus plain: paired differences and Wilcoxon p-value
    fz = pd.read_csv(tmp_path / "rep" / "fuzzy_vs_plain.csv")
    row = fz[(fz["variant"] == "mlr_fuzzy") & (fz["target"] == "GPP") & (fz["zone"] == "all")].iloc[0]
    a = met[(met["learner"] == "mlr_fuzzy") & (met["target"] == "GPP")].set_index("SITE_ID")
    b = met[(met["learner"] == "mlr") & (met["target"] == "GPP")].set_index("SITE_ID")
    d = (a["R2"] - b.loc[a.index, "R2"]).to_numpy()
    assert row["dR2_mean"] == pytest.approx(d.mean())
    assert row["n_better_R2"] == int((d > 0).sum())
    assert row["p_wilcoxon_R2"] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert np.abs(d).max() > 1e-6  # the runner passed the fuzzy weights to the learner

    # distances and their correlation with R²
    dist = pd.read_csv(tmp_path / "rep" / "distances.csv")
    assert set(dist["SITE_ID"]) == set(met["SITE_ID"])
    assert (run_dir / "distances.parquet").is_file()
    dsk = pd.read_csv(tmp_path / "rep" / "distance_skill.csv")
    r = dsk[(dsk["learner"] == "mlr") & (dsk["target"] == "ER") & (dsk["zone"] == "all")
            & (dsk["distance"] == "D_mean") & (dsk["metric"] == "R2")].iloc[0]
    j = met[(met["learner"] == "mlr") & (met["target"] == "ER")].merge(dist, on="SITE_ID")
    assert r["pearson_r"] == pytest.approx(stats.pearsonr(j["D_mean"], j["R2"]).statistic)


@pytest.mark.slow
def test_report_cli_without_loadable_data(small_run, tmp_path, capsys):
    from fluxcore.cli import main

    _, run_dir = small_run
    rc = main(["report", str(run_dir), "--out", str(tmp_path / "cli")])
    assert rc == 0
    text = (tmp_path / "cli" / "report.md").read_text()
    assert "heterogeneity sections skipped" in text
    assert (tmp_path / "cli" / "table3.csv").is_file()
    assert "report:" in capsys.readouterr().out


@pytest.mark.parametrize("html", [False, True], ids=["markdown", "html"])
def test_report_out_that_is_a_file_is_one_error(small_run, tmp_path, capsys, html):
    """--out naming an existing file (or a path below one) was a FileExistsError traceback."""
    from fluxcore.cli import main

    _, run_dir = small_run
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    for out in (f, f / "sub"):
        rc = main(["report", str(run_dir), "--out", str(out), *(["--html"] if html else [])])
        err = capsys.readouterr().err
        assert rc == 2 and f"{f}: is a file, not a folder for the report" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f.read_text() == "keep me"


def test_fuzzy_vs_plain_by_hand():
    met = pd.DataFrame({
        "SITE_ID": ["A", "B", "C", "D"] * 2, "target": "GPP", "zone": ["arid", "arid", "humid", "humid"] * 2,
        "learner": ["rf"] * 4 + ["rf_fuzzy"] * 4,
        "R2": [0.5, 0.6, 0.7, 0.2, 0.55, 0.62, 0.65, 0.3], "RMSE": [1, 1, 1, 1, 0.9, 1.1, 1.0, 0.8],
    })
    fz = report.fuzzy_vs_plain(met)
    allrow = fz[fz["zone"] == "all"].iloc[0]
    assert allrow["dR2_mean"] == pytest.approx(np.mean([0.05, 0.02, -0.05, 0.1]))
    assert allrow["n_better_R2"] == 3 and allrow["n_better_RMSE"] == 2
    assert set(fz["zone"]) == {"all", "arid", "humid"}
    assert report.fuzzy_pairs(met.assign(learner="rf")).empty


def test_table3_and_us_skill_by_hand():
    rng = np.random.default_rng(4)
    n = 12
    met = pd.DataFrame({"SITE_ID": [f"{'US' if i % 3 else 'FR'}-{i:02d}" for i in range(n)] * 2,
                        "learner": "lstm", "target": ["GPP"] * n + ["ER"] * n,
                        "zone": ["arid", "semi-arid", "semi-humid", "humid"] * (n // 2),
                        "R2": rng.uniform(0, 1, 2 * n), "r2": rng.uniform(0, 1, 2 * n),
                        "RMSE": rng.uniform(0.2, 2, 2 * n)})
    t3 = report.table3(met).set_index(["target", "zone", "learner"])
    sel = met[(met["target"] == "ER") & (met["zone"] == "humid")]["RMSE"]
    assert t3.loc[("ER", "humid", "lstm"), "rmse_mean"] == pytest.approx(sel.mean())
    assert t3.loc[("ER", "humid", "lstm"), "rmse_var"] == pytest.approx(sel.var(ddof=1))
    assert t3.loc[("ER", "humid", "lstm"), "paper_lstm_rmse"] == 0.63
    assert t3.loc[("GPP", "all", "lstm"), "n_sites"] == n
    us = report.us_skill(met).set_index("target")
    assert us.loc["GPP", "R2_mean"] == pytest.approx(
        met[(met["target"] == "GPP") & met["SITE_ID"].str.startswith("US-")]["R2"].mean())
    assert us.loc["GPP", "n_sites"] == 8


def test_published_skill_is_the_median_per_site_skill():
    met = pd.DataFrame({"SITE_ID": ["A", "B", "C", "A", "B", "C"], "learner": "rf",
                        "target": ["GPP"] * 3 + ["ER"] * 3,
                        "R2": [0.2, 0.5, 0.9, -1.0, 0.1, 0.4], "r2": [0.3, 0.6, 0.95, 0.2, 0.3, 0.5]})
    pub = report.published_skill(met).set_index("target")
    assert pub.loc["GPP", "R2_median"] == pytest.approx(0.5)
    assert pub.loc["ER", "r2_median"] == pytest.approx(0.3)
    assert pub.loc["GPP", "tamrl_R2_median"] == pytest.approx(0.644)
    assert pub.loc["ER", "fluxcom_R2"] == pytest.approx(0.6)
    assert (pub["n_sites"] == 3).all()


@pytest.mark.slow
def test_report_sets_real_sites_beside_carbonfluxbench(small_run, tmp_path, monkeypatch):
    """A run on real data gets the common-site comparison; a synthetic one never does."""
    import json
    import shutil

    world, run_dir = small_run
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    met = pd.read_parquet(run_dir / "metrics.parquet")
    common = sorted(met["SITE_ID"].unique())[:3]
    pd.DataFrame({"site": common + ["ZZ-Far"], "R2": [0.1, 0.2, 0.3, 0.9], "RMSE": 1.0,
                  "target": "GPP_NT_VUT_USTAR50", "model": "LightGBM"}).to_csv(
        anchors / "lgbm_Koppen_minimal.csv", index=False)
    monkeypatch.setenv("FLUXCORE_ANCHORS", str(anchors))

    # synthetic: no comparison, and the report says why
    text = report.write_report(run_dir, dataset=world, out_dir=tmp_path / "syn").read_text()
    assert not (tmp_path / "syn" / "carbonfluxbench.csv").exists()
    assert "CarbonFluxBench comparison skipped: synthetic sites" in text

    # the same run marked as real data: compared on the 3 common sites only
    real = tmp_path / "real_run"
    shutil.copytree(run_dir, real)
    man = json.loads((real / "manifest.json").read_text())
    man["data"]["synthetic"] = False
    (real / "manifest.json").write_text(json.dumps(man))
    text = report.write_report(real, dataset=None, out_dir=tmp_path / "real").read_text()
    cfb = pd.read_csv(tmp_path / "real" / "carbonfluxbench.csv")
    assert "Beside CarbonFluxBench" in text
    assert (cfb[cfb["target"] == "GPP"]["n_sites"] == 3).all()
    lgbm = cfb[(cfb["model"] == "LightGBM") & (cfb["target"] == "GPP")]
    assert lgbm["median_R2"].item() == pytest.approx(0.2)
    ours = met[(met["target"] == "GPP") & (met["learner"] == "mlr") & met["SITE_ID"].isin(common)]
    row = cfb[(cfb["model"] == "mlr") & (cfb["target"] == "GPP")]
    assert row["median_R2"].item() == pytest.approx(ours["R2"].median())
