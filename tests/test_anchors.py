"""Published anchors: CarbonFluxBench loading and the common-site comparison."""

from __future__ import annotations

import pandas as pd
import pytest

from fluxcore.anchors import (
    CFB_TAMRL_MEDIAN_R2,
    PAPER_TABLE3_LSTM_RMSE,
    compare_with_carbonfluxbench,
    default_anchor_dir,
    load_carbonfluxbench,
)
from fluxcore.errors import DataError


def test_paper_table3_has_every_zone_and_target():
    for target in ("GPP", "ER"):
        assert set(PAPER_TABLE3_LSTM_RMSE[target]) == {"arid", "semi-arid", "semi-humid", "humid"}
    assert PAPER_TABLE3_LSTM_RMSE["GPP"]["semi-humid"] == 1.06


def test_load_carbonfluxbench_from_a_small_folder(tmp_path):
    pd.DataFrame({
        "site": ["US-Ha1", "DE-Hai", "US-Ha1"],
        "R2": [0.8, 0.6, 0.5],
        "RMSE": [1.0, 1.2, 0.9],
        "target": ["GPP_NT_VUT_USTAR50", "GPP_NT_VUT_USTAR50", "RECO_NT_VUT_USTAR50"],
    }).to_csv(tmp_path / "tam-rl_Koppen_minimal_ensemble.csv", index=False)
    (tmp_path / "README.md").write_text("not a result file")
    a = load_carbonfluxbench(tmp_path)
    assert set(a["target"]) == {"GPP", "ER"}
    assert (a["model"] == "tam-rl").all() and (a["split"] == "Koppen").all()
    metrics = pd.DataFrame({
        "SITE_ID": ["US-Ha1", "DE-Hai", "FR-Pue", "US-Ha1"],
        "learner": ["rf", "rf", "rf", "rf"],
        "target": ["GPP", "GPP", "GPP", "ER"],
        "R2": [0.7, 0.5, 0.9, 0.4],
    })
    cmp_ = compare_with_carbonfluxbench(metrics, a)
    gpp = cmp_[(cmp_["target"] == "GPP")].set_index("source")
    # FR-Pue is not in the anchors: only the two common sites count
    assert gpp.loc["fluxcore", "n_sites"] == 2
    assert gpp.loc["fluxcore", "median_R2"] == pytest.approx(0.6)
    assert gpp.loc["CarbonFluxBench", "median_R2"] == pytest.approx(0.7)


def test_tree_baselines_are_named_by_their_model_column(tmp_path):
    # CarbonFluxBench's tree baselines live in lgbm_/xgb_ files whose model column says
    # "LightGBM" / "XGBoost"; the comparison must find them under those names
    for stem, name, r2 in (("lgbm", "LightGBM", 0.55), ("xgb", "XGBoost", 0.45)):
        pd.DataFrame({
            "site": ["US-Ha1", "DE-Hai"], "R2": [r2, r2 + 0.1], "RMSE": [1.0, 1.1],
            "target": ["GPP_NT_VUT_USTAR50"] * 2, "model": [name] * 2,
        }).to_csv(tmp_path / f"{stem}_Koppen_minimal.csv", index=False)
    a = load_carbonfluxbench(tmp_path)
    assert set(a["model"]) == {"LightGBM", "XGBoost"}
    assert not a["ensemble"].any()
    metrics = pd.DataFrame({"SITE_ID": ["US-Ha1", "DE-Hai"], "learner": ["rf", "rf"],
                            "target": ["GPP", "GPP"], "R2": [0.5, 0.7]})
    cmp_ = compare_with_carbonfluxbench(metrics, a).set_index("model")
    assert cmp_.loc["LightGBM", "median_R2"] == pytest.approx(0.6)
    assert cmp_.loc["XGBoost", "median_R2"] == pytest.approx(0.5)
    assert cmp_.loc["rf", "source"] == "fluxcore"


def test_missing_anchor_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_carbonfluxbench(tmp_path / "nope")
    with pytest.raises(DataError, match="no CarbonFluxBench"):
        load_carbonfluxbench(tmp_path)


@pytest.mark.realdata
def test_shared_anchors_reproduce_the_quoted_tamrl_medians():
    if not default_anchor_dir().is_dir():
        pytest.skip("shared anchors absent")
    a = load_carbonfluxbench()
    sel = a[(a["model"] == "tam-rl") & (a["split"] == "Koppen") & (a["features"] == "minimal")]
    med = sel.groupby("target")["R2"].median()
    for target, value in CFB_TAMRL_MEDIAN_R2.items():
        assert med[target] == pytest.approx(value, abs=0.001)


@pytest.mark.realdata
def test_shared_anchors_compare_tree_baselines_on_the_common_sites():
    if not default_anchor_dir().is_dir():
        pytest.skip("shared anchors absent")
    sites = pd.read_csv(default_anchor_dir().parents[1] / "data" / "fluxnet2015" / "sites.csv")["SITE_ID"]
    metrics = pd.DataFrame({"SITE_ID": list(sites) * 2, "learner": "rf",
                            "target": ["GPP"] * len(sites) + ["ER"] * len(sites), "R2": 0.5})
    cmp_ = compare_with_carbonfluxbench(metrics)
    cfb = cmp_[cmp_["source"] == "CarbonFluxBench"]
    assert {"tam-rl", "lstm", "LightGBM", "XGBoost"} <= set(cfb["model"])
    # the same common sites for every model of a target
    assert set(cmp_.groupby("target")["n_sites"].nunique()) == {1}
