"""Validation in the loaders (fluxcore.validation, QC not_finite): unit and property tests."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_daily
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxcore.aridity import aridity_zone, extraterrestrial_radiation
from fluxcore.dataset import FluxDataset
from fluxcore.errors import ConfigError, DataError
from fluxcore.qc import QCConfig, apply_qc
from fluxcore.sources import load_dataset
from fluxcore.validation import (
    check_site_values,
    missing_target_problems,
    saturation_vapour_pressure,
    scan_csv_lines,
    sniff_separator,
    unit_hint,
    unit_hints,
)


# ------------------------------------------------------------ QC: not finite
def _daily(**cols):
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"SITE_ID": ["A"] * (n // 2) + ["B"] * (n - n // 2),
                         "DATE": pd.date_range("2005-01-01", periods=n), **cols})


def test_qc_removes_and_counts_non_finite_values():
    d = _daily(GPP=[1.0, np.inf, 2.0, -np.inf, np.nan, 3.0], TA=[1.0, 2, 3, 4, 5, 6])
    out, rep = apply_qc(d, QCConfig())
    assert np.isnan(out["GPP"].to_numpy()[[1, 3]]).all()
    assert out["GPP"].to_numpy()[[0, 2, 5]].tolist() == [1.0, 2.0, 3.0]
    nf = rep[rep["reason"] == "not_finite"].set_index("SITE_ID")
    assert nf.loc["A", "n_removed"] == 1 and nf.loc["B", "n_removed"] == 1
    assert nf.loc["A", "n_total"] == 3  # inf counts as present before the check
    assert nf.loc["B", "n_total"] == 2
    assert set(nf["variable"]) == {"GPP"}  # no rows for TA, which has no inf


def test_qc_none_still_removes_non_finite():
    d = _daily(NEE=[np.inf, 1.0, 2.0, 3.0])
    out, rep = apply_qc(d, QCConfig.none())
    assert np.isnan(out.loc[0, "NEE"]) and out["NEE"].notna().sum() == 3
    assert rep["reason"].tolist() == ["not_finite", "not_finite"]


def test_qc_helper_column_inf_removed():
    d = _daily(GPP=[1.0, 2.0], QC_NEE_FRAC=[np.inf, 0.5])
    out, _ = apply_qc(d)
    assert np.isnan(out.loc[0, "QC_NEE_FRAC"])


def test_loader_keeps_minus_inf_for_qc_and_9999_as_missing(tmp_path):
    d = synthetic_daily(sites=("XX-Aaa",), n_days=40)
    d.loc[3, "TA"] = -np.inf
    d.loc[4, "TA"] = -9999.0
    f = tmp_path / "t.csv"
    d.to_csv(f, index=False)
    ds = load_dataset(f)
    assert np.isnan(ds.daily.loc[3, "TA"]) and np.isnan(ds.daily.loc[4, "TA"])
    q = ds.qc[(ds.qc.reason == "not_finite") & (ds.qc.variable == "TA")]
    assert q["n_removed"].sum() == 1  # the -inf, not the missing marker


# --------------------------------------------------------------- CSV lines
def test_scan_good_file_with_quotes_and_blank_lines(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text('SITE_ID,NAME,GPP\nA,"Hainich, DE",1.0\n\nB,x,2.0\n')
    s = scan_csv_lines(f)
    assert s.n_fields == 3 and s.n_records == 2 and s.cut_last is None


def test_scan_cut_last_line(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("SITE_ID,DATE,GPP\nA,20050101,1.0\nA,2005")
    s = scan_csv_lines(f)
    assert "line 3" in s.cut_last and "2 of 3 fields" in s.cut_last


def test_scan_short_last_line_with_newline_raises(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("SITE_ID,DATE,GPP\nA,20050101,1.0\nA,2005\n")
    with pytest.raises(DataError, match=r"a\.csv: line 3 has 2 fields but the header has 3"):
        scan_csv_lines(f)


def test_scan_counts_bad_lines_and_reads_gzip(tmp_path):
    f = tmp_path / "a.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("SITE_ID,DATE,GPP\nA,1,2,3\nA,20050101,1.0\nA,4,5,6\n")
    with pytest.raises(DataError, match=r"line 2 has 4 fields .*\(2 lines have"):
        scan_csv_lines(f)


def test_sniff_separator(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("SITE_ID;DATE;TA\nA;2005-01-01;12,5\n")
    assert sniff_separator(f) == ";"
    f.write_text("SITE_ID,DATE,TA\n")
    assert sniff_separator(f) == ","


def test_semicolon_file_with_decimal_commas_is_not_malformed(tmp_path):
    d = synthetic_daily(sites=("XX-Aaa",), n_days=20)
    f = tmp_path / "semi.csv"
    d.to_csv(f, index=False, sep=";", decimal=",")
    ds = load_dataset(f)
    assert ds.n_site_days == 20


def test_read_official_file_cut_raises_without_problem_list(tmp_path, make_dd):
    from fluxcore.sources import read_official_file

    p = make_dd(tmp_path, "XX-Aaa", n_days=30)
    p.write_text(p.read_text()[:-30])
    with pytest.raises(DataError, match="cut short"):
        read_official_file(p)
    problems: list[str] = []
    df = read_official_file(p, problems=problems)
    assert len(df) == 29 and len(problems) == 1 and p.name in problems[0]


# -------------------------------------------------------------- site values
def _sites(**cols):
    return pd.DataFrame({"SITE_ID": ["A", "B", "C"], **cols})


@pytest.mark.parametrize("col, bad, words", [
    ("LAT", 90.5, "outside -90..90 deg"),
    ("LON", 361.0, "outside -180..360 deg"),
    ("ELEV", -600.0, "outside -500..9000 m"),
    ("SLOPE", 95.0, "outside 0..90 deg"),
    ("ASPECT", -1.0, "outside 0..360 deg"),
    ("SAND", 101.0, "outside 0..100 %"),
    ("ARIDITY_INDEX", 0.0, "0 < ARIDITY_INDEX"),
    ("ARIDITY_INDEX", -np.inf, "not finite"),
    ("LAT", "north", "not numbers"),
])
def test_check_site_values_names_column_and_first_row(col, bad, words):
    good = {"LAT": 45.0, "LON": 10.0, "ELEV": 100.0, "SLOPE": 2.0, "ASPECT": 10.0,
            "SAND": 40.0, "ARIDITY_INDEX": 0.7}[col]
    df = _sites(**{col: [good, bad, bad]})
    with pytest.raises(DataError) as exc:
        check_site_values(df, "t.csv")
    msg = str(exc.value)
    assert msg.startswith(f"t.csv: column {col}: 2 value(s)") and words in msg
    assert "data row 2, site B" in msg


def test_check_site_values_allows_missing_and_marker():
    check_site_values(_sites(LAT=[np.nan, -9999.0, 45.0], LON=[None, 10.0, -179.9],
                             ARIDITY_INDEX=[0.05, np.nan, 3.0], ELEV=[-9999, 8800, -10]), "t")
    check_site_values(_sites(CLAY=[20, 30, 10], SAND=[40, 30, 60], SILT=[40, 40, 30]), "t")


def test_check_site_values_swapped_and_fractions():
    with pytest.raises(DataError, match="swapped"):
        check_site_values(_sites(LAT=[10.0, 150.0, 12.0], LON=[20.0, 45.0, 30.0]), "t")
    with pytest.raises(DataError, match="column CLAY: every value is at most 1"):
        check_site_values(pd.DataFrame({"SITE_ID": list("ABCDE"),
                                        "CLAY": [0.1, 0.2, 0.3, 0.25, 0.15]}), "t")


@pytest.mark.realdata
def test_real_site_table_passes(real_data):
    from fluxcore.sources import read_sites_table

    assert len(read_sites_table(real_data / "sites.csv")) == 204


# --------------------------------------------------------------- unit hints
def _year(seed=0):
    return synthetic_daily(sites=("XX-Aaa",), n_days=400, seed=seed)


def test_unit_hint_plausible_data_give_none():
    d = _year()
    for v in ("TA", "TMIN", "TMAX", "SW_IN"):
        assert unit_hint(d[v], v) is None
    assert unit_hint(d["VPD"], "VPD", ta=d["TA"]) is None
    assert unit_hint(d["P"], "P") is None  # no rule for P


def test_unit_hint_names_the_likely_unit():
    d = _year()
    assert unit_hint(d["TA"] + 273.15, "TA").unit == "kelvin"
    assert unit_hint(d["TA"] * 1.8 + 32, "TA").unit == "degrees Fahrenheit"
    assert unit_hint(d["VPD"] / 10, "VPD", ta=d["TA"]).unit == "kPa"
    assert unit_hint(d["VPD"] / 10, "VPD") is None  # p99 1.2: not clear without TA
    assert unit_hint(d["VPD"] / 30, "VPD").unit == "kPa"
    assert unit_hint(d["VPD"] * 100, "VPD").unit == "Pa"
    assert unit_hint(d["SW_IN"] * 0.0864, "SW_IN").unit == "MJ m-2 d-1"
    assert unit_hint(d["SW_IN"] * 86400, "SW_IN").unit == "J m-2 d-1"
    assert unit_hint(d["SW_IN"] * 86.4, "SW_IN").unit == "kJ m-2 d-1"
    h = unit_hint(d["TA"] + 273.15, "TA", site="XX-Aaa")
    assert h.site == "XX-Aaa" and "subtract 273.15" in h.message and h.message.startswith("TA ")


def test_unit_hint_needs_enough_values():
    d = _year()
    assert unit_hint(d["SW_IN"][:200] * 0.0864, "SW_IN") is None  # a winter alone is not enough
    assert unit_hint(d["TA"][:5] + 273.15, "TA") is None
    assert unit_hint(d["TA"][:10] + 273.15, "TA") is not None


def test_unit_hints_vpd_ignores_ta_in_kelvin():
    d = _year()
    d["TA"] += 273.15
    hints = unit_hints(d)
    assert [(h.variable, h.unit) for h in hints] == [("TA", "kelvin")]


def test_saturation_vapour_pressure():
    assert saturation_vapour_pressure(0.0) == pytest.approx(6.112)
    assert saturation_vapour_pressure(20.0) == pytest.approx(23.37, rel=1e-3)


# ----------------------------------------------------------- missing targets
def test_missing_target_problems():
    before = _daily(GPP=[1.0, 2.0, np.nan, np.nan], ER=[1.0, 1.0, 1.0, 1.0],
                    QC_NEE_FRAC=[0.0, 0.0, 1.0, 1.0])
    after, rep = apply_qc(before, QCConfig())
    pairs = missing_target_problems(before, after, rep, ("GPP", "ER", "NEE"))
    assert pairs == [
        ("A", "GPP entirely missing after quality control (2 days; removed: "
              "low_measured_fraction 2)"),
        ("B", "GPP entirely missing (2 days)"),
        ("A", "ER entirely missing after quality control (2 days; removed: "
              "low_measured_fraction 2)"),
    ]  # NEE is not in the dataset: not a per-site problem


def test_demo_has_no_new_problems():
    assert load_dataset("demo").problems == []


# --------------------------------------------------------------- aridity
def test_aridity_zone_rejects_negative_and_infinite():
    assert aridity_zone(-0.3) is None and aridity_zone(np.inf) is None
    assert aridity_zone(0.0) == "arid"
    assert np.isnan(extraterrestrial_radiation(999.0, 100))


# --------------------------------------------------------- property-based
_COLS = ["SITE_ID", "DATE", "GPP", "ER", "NEE", "TA", "VPD", "SW_IN", "LAT", "LON",
         "ARIDITY_INDEX", "QC_NEE_FRAC", "CLAY", "IGBP"]
_cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-50, max_value=50),
    st.integers(min_value=-10**12, max_value=10**12),
    st.text(max_size=6),
    st.sampled_from(["", "NA", "-9999", "inf", "2005-01-01", "20050101", "XX-Aaa", "1e308"]),
    st.none(),
)


@st.composite
def tidy_tables(draw):
    cols = draw(st.lists(st.sampled_from(_COLS[2:]), min_size=0, max_size=len(_COLS) - 2,
                         unique=True))
    for c in ("GPP", "DATE", "SITE_ID"):  # usually present, so that many tables load
        if c not in cols and draw(st.integers(0, 9)) > 0:
            cols.insert(0, c)
    n = draw(st.integers(min_value=0, max_value=12))
    data = {}
    for c in cols:
        if c == "SITE_ID" and draw(st.integers(0, 3)) > 0:
            data[c] = draw(st.lists(st.sampled_from(["XX-Aaa", "XX-Bbb"]), min_size=n, max_size=n))
        elif c == "DATE" and draw(st.integers(0, 3)) > 0:
            start = draw(st.integers(min_value=0, max_value=3))
            data[c] = [str(d.date()) for d in pd.date_range("2005-01-01", periods=n)
                       + pd.Timedelta(days=start)]
        elif c in ("GPP", "TA") and draw(st.integers(0, 3)) > 0:
            data[c] = draw(st.lists(st.floats(min_value=-5, max_value=30), min_size=n, max_size=n))
        else:
            data[c] = draw(st.lists(_cell, min_size=n, max_size=n))
    df = pd.DataFrame(data, columns=cols)
    if len(df) and draw(st.booleans()):
        df = pd.concat([df, df.iloc[[0]]], ignore_index=True)  # a duplicated row
    return df


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(df=tidy_tables(), parquet=st.booleans())
def test_tidy_loader_gives_dataset_or_clear_error(df, parquet, tmp_path):
    f = tmp_path / ("t.parquet" if parquet else "t.csv")
    if parquet:
        df = df.astype({c: str for c in df.columns if df[c].dtype == object})
        df.to_parquet(f)
    else:
        df.to_csv(f, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = load_dataset(f)
        except (DataError, ConfigError) as exc:
            assert "\n" not in str(exc) and f.name in str(exc) or isinstance(exc, ConfigError)
            return
    assert isinstance(ds, FluxDataset)
    values = ds.daily.drop(columns=["SITE_ID", "DATE"]).to_numpy(dtype=float)
    assert not np.isinf(values).any()
    assert ds.daily["DATE"].dtype == "datetime64[ns]"
    lat = ds.sites["LAT"].dropna()
    assert ((lat >= -90) & (lat <= 90)).all()
