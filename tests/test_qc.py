"""Quality control: values to NaN, rows kept, every removal reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluxcore.errors import ConfigError
from fluxcore.qc import QCConfig, apply_qc, merge_reports


def _frame():
    return pd.DataFrame({
        "SITE_ID": ["A"] * 5 + ["B"] * 3,
        "DATE": list(pd.date_range("2001-01-01", periods=5)) + list(pd.date_range("2001-01-01", periods=3)),
        "TA": [10.0, 80.0, -70.0, np.nan, 5.0, 1.0, 2.0, 3.0],
        "GPP": [1.0, -4.0, 50.0, 2.0, 3.0, 1.0, -2.0, 1.0],
        "ER": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "NEE": [0.0, 5.0, -49.0, -1.0, -2.0, 0.0, 3.0, 0.0],
        "QC_NEE_FRAC": [0.5, 0.5, 0.5, 0.05, np.nan, 0.0, 0.9, 0.9],
        "QC_TA_FRAC": [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
    })


def _get(report, site, var, reason):
    r = report[(report.SITE_ID == site) & (report.variable == var) & (report.reason == reason)]
    assert len(r) == 1, (site, var, reason)
    return int(r.n_removed.iloc[0]), int(r.n_total.iloc[0])


def test_defaults_documented():
    c = QCConfig()
    assert c.range_check and c.gpp_min == -3.0 and c.min_measured_frac == 0.1
    assert c.min_ta_measured_frac == 0.0


def test_apply_qc_sets_nan_keeps_rows_and_reports():
    df = _frame()
    out, rep = apply_qc(df, QCConfig())
    assert len(out) == len(df)
    assert out[["SITE_ID", "DATE"]].equals(df[["SITE_ID", "DATE"]])
    assert np.isnan(out.loc[1, "TA"]) and np.isnan(out.loc[2, "TA"])  # 80 and -70 degC
    assert out.loc[0, "TA"] == 10.0
    assert _get(rep, "A", "TA", "out_of_range") == (2, 4)  # one TA was already NaN
    assert _get(rep, "A", "GPP", "out_of_range") == (1, 5)  # 50 > 30
    assert _get(rep, "A", "NEE", "out_of_range") == (1, 5)  # -49 < -25
    assert _get(rep, "A", "GPP", "gpp_below_min") == (1, 4)  # -4 < -3 (-4 is inside -5..30)
    assert _get(rep, "B", "GPP", "gpp_below_min") == (0, 3)  # -2 is kept
    # measured fraction 0.05 < 0.1 at A day 4 (all three targets), NaN fraction kept
    assert _get(rep, "A", "ER", "low_measured_fraction") == (1, 5)
    assert np.isnan(out.loc[3, "GPP"]) and np.isnan(out.loc[3, "ER"]) and np.isnan(out.loc[3, "NEE"])
    assert out.loc[4, "GPP"] == 3.0
    assert _get(rep, "B", "GPP", "low_measured_fraction") == (1, 3)  # fraction 0.0
    assert out.loc[6, "GPP"] == -2.0
    # TA fraction check is off by default
    assert not (rep.reason == "low_ta_measured_fraction").any()
    # input untouched
    assert df.loc[1, "TA"] == 80.0


def test_every_removed_value_is_reported():
    df = _frame()
    out, rep = apply_qc(df, QCConfig())
    var_cols = ["TA", "GPP", "ER", "NEE"]
    newly_nan = int((out[var_cols].isna() & df[var_cols].notna()).to_numpy().sum())
    assert rep.n_removed.sum() == newly_nan


def test_ta_fraction_and_ranges_override():
    df = _frame()
    out, rep = apply_qc(df, QCConfig(min_ta_measured_frac=0.5, ranges={"TA": (0.0, 100.0)}))
    assert out.loc[1, "TA"] == 80.0  # allowed by the override
    assert np.isnan(out.loc[2, "TA"])
    assert np.isnan(out.loc[4, "TA"])  # QC_TA_FRAC 0 < 0.5
    assert _get(rep, "A", "TA", "low_ta_measured_fraction") == (1, 3)


def test_none_removes_nothing():
    df = _frame()
    out, rep = apply_qc(df, QCConfig.none())
    pd.testing.assert_frame_equal(out, df)
    assert len(rep) == 0 or rep.n_removed.sum() == 0


def test_measured_fraction_threshold_is_monotone():
    df = _frame()
    removed = [apply_qc(df, QCConfig(min_measured_frac=t))[1].query("reason == 'low_measured_fraction'")
               .n_removed.sum() for t in (0.0, 0.1, 0.6, 1.0)]
    assert removed == sorted(removed) and removed[0] == 0 and removed[-1] > removed[1]


def test_config_validation_and_round_trip():
    with pytest.raises(ConfigError):
        QCConfig(min_measured_frac=1.5)
    with pytest.raises(ConfigError):
        QCConfig(ranges={"XYZ": (0, 1)})
    with pytest.raises(ConfigError):
        QCConfig(ranges={"TA": (5, 1)})
    with pytest.raises(ConfigError):
        QCConfig.from_dict({"nope": 1})
    c = QCConfig(gpp_min=None, min_measured_frac=0.2, ranges={"TA": (-10, 40)})
    assert QCConfig.from_dict(c.to_dict()) == c
    assert QCConfig.from_dict(None) == QCConfig()


def test_merge_reports_sums():
    df = _frame()
    _, r1 = apply_qc(df, QCConfig())
    m = merge_reports(r1, r1)
    assert m.n_removed.sum() == 2 * r1.n_removed.sum()
    assert list(m.columns) == ["SITE_ID", "variable", "reason", "n_removed", "n_total"]
    assert len(merge_reports()) == 0


def test_empty_table():
    df = _frame().iloc[:0]
    out, rep = apply_qc(df)
    assert len(out) == 0 and len(rep) == 0


@pytest.mark.realdata
def test_real_data_default_qc_counts_match_raw(real_data):
    """Removals reported at load equal an independent count on the raw parquet."""
    from fluxcore.sources import load_dataset

    raw = pd.read_parquet(real_data / "daily.parquet",
                          columns=["GPP_NT_VUT_REF", "NEE_VUT_REF", "RECO_NT_EST", "NEE_MEASURED_FRAC"])
    ds = load_dataset(real_data)
    gpp = raw["GPP_NT_VUT_REF"].astype(float)
    frac = raw["NEE_MEASURED_FRAC"].astype(float)
    gpp_range = (gpp < -5) | (gpp > 30)
    gpp_low = (gpp < -3) & ~gpp_range
    gpp_frac = (frac < 0.1) & gpp.notna() & ~gpp_range & ~gpp_low
    by = ds.qc[ds.qc.variable == "GPP"].groupby("reason").n_removed.sum()
    assert by["out_of_range"] == int(gpp_range.sum())
    assert by["gpp_below_min"] == int(gpp_low.sum())
    assert by["low_measured_fraction"] == int(gpp_frac.sum())
    assert int(ds.daily["GPP"].notna().sum()) == int(gpp.notna().sum() - gpp_range.sum()
                                                     - gpp_low.sum() - gpp_frac.sum())
    assert len(ds.daily) == len(raw)  # QC never deletes a day
