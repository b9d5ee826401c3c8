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
