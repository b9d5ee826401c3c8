"""Loaders: prepared FLUXNET2015 layout, official DD files, tidy files, demo; LAI method."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcore.dataset import FluxDataset
from fluxcore.errors import ConfigError, DataError
from fluxcore.lai import monthly_to_daily
from fluxcore.qc import QCConfig
from fluxcore.sources import load_dataset, parse_column_map, parse_dates


def assert_contract(ds: FluxDataset) -> None:
    """The FluxDataset contract of docs/ARCHITECTURE.md."""
    d = ds.daily
    assert list(d.columns[:2]) == ["SITE_ID", "DATE"]
    assert d["DATE"].dtype == "datetime64[ns]"
    assert all(isinstance(s, str) for s in d["SITE_ID"].unique())
    assert d.equals(d.sort_values(["SITE_ID", "DATE"]).reset_index(drop=True))
    assert not d.duplicated(["SITE_ID", "DATE"]).any()
    for c in d.columns[2:]:
        assert d[c].dtype == "float64", c
    assert set(ds.site_ids) <= set(ds.sites.index)
    assert list(ds.qc.columns) == ["SITE_ID", "variable", "reason", "n_removed", "n_total"]
    assert ds.sites.crs.to_epsg() == 4326


# -------------------------------------------------------------- LAI method
def _monthly(values, start="2005-01", site="S"):
    months = pd.period_range(start, periods=len(values), freq="M")
    return pd.DataFrame({"SITE_ID": site, "YEAR_MONTH": [p.year * 100 + p.month for p in months],
                         "LAI": values})


def _days(start, end, site="S"):
    return pd.DataFrame({"SITE_ID": site, "DATE": pd.date_range(start, end, freq="D")})


def test_lai_preserves_monthly_means_of_smooth_cycle():
    k = np.arange(36)
    vals = 2.5 + 1.5 * np.sin(2 * np.pi * (k - 3) / 12)
    m = _monthly(vals)
    days = _days("2005-01-01", "2007-12-31")
    lai = monthly_to_daily(m, days)
    got = lai.groupby(days["DATE"].dt.to_period("M")).mean().to_numpy()
    # interior months: mean error = 1/8 of the local curvature (docs), a few % of the amplitude
    curv = (vals[:-2] - 2 * vals[1:-1] + vals[2:]) / 8
    np.testing.assert_allclose(got[1:-1] - vals[1:-1], curv, atol=0.012)
    assert np.abs(got[1:-1] - vals[1:-1]).max() < 0.04 * 1.5 * 2  # < 4 % of the peak-to-peak range
    assert np.abs(got.mean() - vals.mean()) < 0.01  # long-term mean preserved
    assert lai.notna().all()


def test_lai_linear_between_mid_months_and_exact_at_anchor():
    m = _monthly([1.0, 2.0], start="2005-01")  # Jan mid = 16th, Feb mid = 14.5th
    days = _days("2005-01-01", "2005-02-28")
    lai = monthly_to_daily(m, days).to_numpy()
    assert lai[15] == pytest.approx(1.0)  # 16 January
    assert np.all(np.diff(lai[15:46]) > 0)  # increasing up to Feb mid (14.5th)
    assert np.all(lai[:15] == 1.0)  # held constant in its own month only
    assert lai[44] < 2.0 and np.all(lai[45:] == 2.0)


def test_lai_no_extrapolation_beyond_half_a_month():
    m = _monthly([1.0, 2.0, 3.0], start="2005-03")
    days = _days("2005-01-01", "2005-08-31")
    lai = monthly_to_daily(m, days)
    d = days["DATE"]
    assert lai[d < "2005-03-01"].isna().all()
    assert lai[d > "2005-05-31"].isna().all()
    assert lai[(d >= "2005-03-01") & (d <= "2005-05-31")].notna().all()


def test_lai_gaps_one_month_bridged_two_not():
    vals = [1.0, np.nan, 3.0, np.nan, np.nan, 6.0]
    m = _monthly(vals, start="2005-01")
    days = _days("2005-01-01", "2005-06-30")
    lai = monthly_to_daily(m, days)
    d = days["DATE"]
    assert lai[(d >= "2005-02-01") & (d <= "2005-02-28")].notna().all()  # one month bridged
    assert lai[(d >= "2005-04-01") & (d <= "2005-05-31")].isna().all()  # two missing months
    assert lai[d == "2005-03-31"].iloc[0] == 3.0  # held to the end of its own month


def test_lai_per_site():
    m = pd.concat([_monthly([1.0] * 3, site="A"), _monthly([5.0] * 3, site="B")])
    days = pd.concat([_days("2005-01-01", "2005-03-31", "A"), _days("2005-01-01", "2005-03-31", "B"),
                      _days("2005-01-01", "2005-01-05", "C")], ignore_index=True)
    lai = monthly_to_daily(m, days)
    assert (lai[days.SITE_ID == "A"] == 1.0).all() and (lai[days.SITE_ID == "B"] == 5.0).all()
    assert lai[days.SITE_ID == "C"].isna().all()


def test_lai_bad_or_out_of_range_months_cover_no_day():
    # a missing, non-numeric or out-of-range YEAR_MONTH is skipped, not a crash and not a
    # month wrapped round to another century
    m = _monthly([1.0, 2.0, 3.0])
    bad = pd.DataFrame({"SITE_ID": ["S"] * 4, "YEAR_MONTH": [None, "abc", 100001, 300001],
                        "LAI": [9.0] * 4})
    days = _days("2005-01-01", "2005-03-31")
    plain = monthly_to_daily(m, days)
    mixed = monthly_to_daily(pd.concat([m, bad], ignore_index=True), days)
    np.testing.assert_array_equal(mixed.to_numpy(), plain.to_numpy())
    assert plain.notna().all()


# ------------------------------------------------------- prepared layout
def write_prepared(folder, make_daily, n_days=120, sites=("XX-Aaa", "XX-Bbb")):
    d = make_daily(sites=sites, n_days=n_days, start="2005-01-01")
    daily = pd.DataFrame({
        "SITE_ID": d["SITE_ID"], "TIMESTAMP": d["DATE"].dt.date,
        "TA_F": d["TA"].astype("float32"), "TMIN_F": d["TMIN"], "TMAX_F": d["TMAX"],
        "SW_IN_F": d["SW_IN"], "VPD_F": d["VPD"], "GPP_NT_VUT_REF": d["GPP"],
        "GPP_DT_VUT_REF": d["GPP"], "NEE_VUT_REF": d["NEE"], "NEE_MEASURED_FRAC": d["QC_NEE_FRAC"],
        "TA_MEASURED_FRAC": 1.0, "N_HH": 48, "RECO_NT_EST": d["ER"],
    })
    folder.mkdir(parents=True, exist_ok=True)
    daily.to_parquet(folder / "daily.parquet")
    pd.DataFrame({"SITE_ID": list(sites), "LAT": [45.0, -20.0], "LON": [10.0, 130.0],
                  "ELEV_M": [100.0, np.nan], "IGBP": ["GRA", "ENF"], "KOEPPEN": ["Cfb", None],
                  "ARIDITY_INDEX": [0.8, 0.3], "UNEP_CLASS": ["Humid", "Semi-Arid"]}
                 ).to_csv(folder / "sites.csv", index=False)
    rows = []
    for s in sites:
        for ym in (200501, 200502, 200503, 200504):
            rows.append({"SITE_ID": s, "YEAR_MONTH": ym, "LAI": 1.0 + (ym % 100) / 2, "EVI": 0.3,
                         "P_F": 2.0, "WS_F": 3.0})
    pd.DataFrame(rows).to_csv(folder / "monthly_rs.csv", index=False)
    return d


def test_prepared_layout(tmp_path, make_daily):
    d = write_prepared(tmp_path / "prep", make_daily)
    ds = load_dataset(tmp_path / "prep", qc=QCConfig.none())
    assert_contract(ds)
    assert ds.meta["layout"] == "prepared FLUXNET2015"
    assert ds.n_sites == 2 and ds.n_site_days == 240
    assert set(ds.daily.columns) == {"SITE_ID", "DATE", "TA", "TMIN", "TMAX", "SW_IN", "VPD", "GPP",
                                     "ER", "NEE", "LAI", "EVI", "P_MONTHLY", "WS_MONTHLY",
                                     "QC_NEE_FRAC", "QC_TA_FRAC"}
    np.testing.assert_allclose(ds.daily["GPP"], d["GPP"])
    np.testing.assert_allclose(ds.daily["ER"], d["ER"])
    np.testing.assert_allclose(ds.daily["QC_NEE_FRAC"], d["QC_NEE_FRAC"])
    assert ds.sites.loc["XX-Aaa", "ELEV"] == 100.0 and np.isnan(ds.sites.loc["XX-Bbb", "ELEV"])
    assert ds.sites.loc["XX-Aaa", "ARIDITY_ZONE"] == "humid"
    assert ds.sites.loc["XX-Bbb", "ARIDITY_ZONE"] == "semi-arid"
    assert ds.sites.loc["XX-Aaa", "MAP_MM"] == pytest.approx(2.0 * 365.25)
    assert ds.sites.loc["XX-Aaa", "WS_MEAN"] == pytest.approx(3.0)
    assert "P" not in ds.daily and "WS" not in ds.daily  # monthly P/WS are not invented as days
    assert ds.daily["LAI"].notna().all()  # Jan..Apr monthly values cover the 120 days
    assert "ELEV" in ds.statics and "LAI" in ds.drivers
    assert "lai_method" in ds.meta


def test_prepared_default_qc_uses_measured_fraction(tmp_path, make_daily):
    d = write_prepared(tmp_path / "prep", make_daily)
    ds = load_dataset(tmp_path / "prep")
    low = (d["QC_NEE_FRAC"] < 0.1).to_numpy()
    assert ds.daily.loc[low, "GPP"].isna().all()
    assert ds.qc.query("reason == 'low_measured_fraction' and variable == 'GPP'").n_removed.sum() \
        == int(low.sum())


# ---------------------------------------------------------- official DD
def test_official_folder_with_sites_table_in_folder(tmp_path, make_dd):
    folder = tmp_path / "dd"
    folder.mkdir()
    make_dd(folder, "XX-Aaa", seed=1)
    make_dd(folder, "XX-Bbb", seed=2, prefix="AMF")
    (folder / "README.txt").write_text("not data")
    pd.DataFrame({"SITE_ID": ["XX-Aaa", "XX-Bbb"], "LAT": [40.0, 50.0], "LON": [1.0, 2.0],
                  "IGBP": ["CRO", "DBF"], "ARIDITY_INDEX": [0.1, 1.0]}).to_csv(folder / "sites.csv", index=False)
    ds = load_dataset(folder)
    assert_contract(ds)
    assert ds.site_ids == ["XX-Aaa", "XX-Bbb"]
    assert ds.meta["sites_table"] == str(folder / "sites.csv")
    assert {"P", "WS", "TA", "SW_IN", "VPD", "GPP", "ER", "NEE"} <= set(ds.daily.columns)
    assert "TMIN" not in ds.daily and "TMAX" not in ds.daily
    assert ds.daily["P"].isna().sum() == 2  # the -9999 of each file
    assert (ds.daily["P"].dropna() >= 0).all()
    assert ds.zone_counts() == {"arid": 1, "semi-arid": 0, "semi-humid": 0, "humid": 1}
    assert ds.sites.loc["XX-Aaa", "ARIDITY_SOURCE"] == "site table"
    assert ds.summary()["sites_without_position"] == []


def test_official_parent_table_explicit_table_and_none(tmp_path, make_dd):
    folder = tmp_path / "parent" / "dd"
    folder.mkdir(parents=True)
    make_dd(folder, "XX-Aaa")
    pd.DataFrame({"SITE_ID": ["XX-Aaa"], "LAT": [40.0], "LON": [1.0], "ARIDITY_INDEX": [0.3]}
                 ).to_csv(tmp_path / "parent" / "sites.csv", index=False)
    ds = load_dataset(folder)
    assert ds.meta["sites_table"] == str(tmp_path / "parent" / "sites.csv")
    assert ds.zone_of("XX-Aaa") == "semi-arid"
    other = tmp_path / "other.csv"
    pd.DataFrame({"site": ["XX-Aaa"], "latitude": [10.0], "longitude": [1.0], "AI": [0.7]}).to_csv(other, index=False)
    ds2 = load_dataset(folder, sites_table=other)
    assert ds2.meta["sites_table"] == str(other)
    assert ds2.sites.loc["XX-Aaa", "LAT"] == 10.0 and ds2.zone_of("XX-Aaa") == "humid"
    # no table anywhere: loads, position unknown and listed
    lone = tmp_path / "lone"
    lone.mkdir()
    make_dd(lone, "XX-Ccc")
    ds3 = load_dataset(lone)
    assert ds3.meta["sites_table"] is None
    assert ds3.summary()["sites_without_position"] == ["XX-Ccc"]
    assert ds3.zone_counts() == {"arid": 0, "semi-arid": 0, "semi-humid": 0, "humid": 0, "unknown": 1}


def test_official_fullset_preferred_and_duplicate_listed(tmp_path, make_dd):
    folder = tmp_path / "dd"
    folder.mkdir()
    sub = make_dd(folder, "XX-Aaa", seed=1)
    full = folder / sub.name.replace("SUBSET", "FULLSET")
    df = pd.read_csv(sub)
    df["GPP_NT_VUT_REF"] = 7.0
    df.to_csv(full, index=False)
    ds = load_dataset(folder)
    assert ds.n_sites == 1
    assert (ds.daily["GPP"].dropna() == 7.0).all()
    assert any(sub.name in p and "skipped" in p for p in ds.problems)


# ------------------------------------------------------------- tidy files
def test_tidy_csv_canonical_names_and_catalogue(tmp_path, make_daily):
    d = make_daily(n_days=60)
    f = tmp_path / "tidy.csv"
    d.drop(columns=["QC_NEE_FRAC"]).to_csv(f, index=False)
    ds = load_dataset(f)
    assert_contract(ds)
    assert ds.meta["layout"] == "tidy file"
    assert ds.n_sites == 3 and ds.n_site_days == 180
    assert ds.sites.loc["XX-Bbb", "LAT"] == 46.0 and ds.sites.loc["XX-Bbb", "IGBP"] == "GRA"
    assert ds.sites.loc["XX-Ccc", "ELEV"] == 300.0
    # P, TMIN, TMAX and latitude present: aridity index from daily P / Hargreaves PET
    assert (ds.sites["ARIDITY_SOURCE"] == "daily P / Hargreaves PET").all()
    assert ds.sites["ARIDITY_ZONE"].notna().all()
    assert set(ds.drivers) == {"TA", "TMIN", "TMAX", "P", "WS", "VPD", "SW_IN"}


def test_tidy_fluxnet_names_yyyymmdd_and_parquet(tmp_path, make_daily):
    d = make_daily(n_days=40, sites=("XX-Aaa",))
    t = pd.DataFrame({"site": d["SITE_ID"], "TIMESTAMP": d["DATE"].dt.strftime("%Y%m%d").astype(int),
                      "TA_F": d["TA"], "GPP_NT_VUT_REF": d["GPP"], "RECO_NT_VUT_REF": d["ER"],
                      "NEE_VUT_REF_QC": d["QC_NEE_FRAC"], "something_else": 1})
    f = tmp_path / "t.parquet"
    t.to_parquet(f)
    ds = load_dataset(f, qc=QCConfig.none())
    assert_contract(ds)
    assert ds.daily["DATE"].iloc[0] == pd.Timestamp("2005-01-01")
    np.testing.assert_allclose(ds.daily["ER"], d["ER"])
    assert "QC_NEE_FRAC" in ds.daily
    assert ds.meta["ignored_columns"] == ["something_else"]
    assert ds.summary()["sites_without_position"] == ["XX-Aaa"]


def test_tidy_column_map_and_sites_table(tmp_path, make_daily):
    d = make_daily(n_days=40, sites=("XX-Aaa", "XX-Bbb"))
    t = pd.DataFrame({"tower": d["SITE_ID"], "day": d["DATE"].dt.strftime("%Y-%m-%d"),
                      "temp": d["TA"], "gpp_obs": d["GPP"]})
    f = tmp_path / "mine.csv"
    t.to_csv(f, index=False)
    table = tmp_path / "meta.csv"
    pd.DataFrame({"SITE_ID": ["XX-Aaa", "XX-Bbb"], "LAT": [1.0, 2.0], "LON": [3.0, 4.0],
                  "ARIDITY_INDEX": [0.1, 0.55]}).to_csv(table, index=False)
    cmap = parse_column_map("tower=SITE_ID,temp=TA,gpp_obs=GPP")
    ds = load_dataset(f, column_map=cmap, sites_table=table)
    assert_contract(ds)
    assert ds.targets == ["GPP"] and "TA" in ds.drivers
    assert ds.zone_counts() == {"arid": 1, "semi-arid": 0, "semi-humid": 1, "humid": 0}
    with pytest.raises(ConfigError):
        load_dataset(f, column_map={"temp": "TEMPERATURE"})


def test_parse_column_map_forms(tmp_path):
    assert parse_column_map("a=TA, b = GPP") == {"a": "TA", "b": "GPP"}
    y = tmp_path / "m.yaml"
    y.write_text("a: TA\nb: GPP\n")
    assert parse_column_map(str(y)) == {"a": "TA", "b": "GPP"}
    j = tmp_path / "m.json"
    j.write_text('{"a": "TA"}')
    assert parse_column_map(str(j)) == {"a": "TA"}
    with pytest.raises(ConfigError):
        parse_column_map("a:TA")
    with pytest.raises(ConfigError):
        parse_column_map(str(tmp_path / "missing.yaml"))


def test_parse_dates_forms():
    assert parse_dates(pd.Series([20050102]), "f").iloc[0] == pd.Timestamp("2005-01-02")
    assert parse_dates(pd.Series(["2005-01-02"]), "f").iloc[0] == pd.Timestamp("2005-01-02")
    # YYYYMMDDHHMM as numbers (how a CSV reader gives them) as well as text: was rejected
    assert parse_dates(pd.Series([200501020000]), "f").iloc[0] == pd.Timestamp("2005-01-02")
    assert parse_dates(pd.Series(["200501020000"]), "f").iloc[0] == pd.Timestamp("2005-01-02")
    s = parse_dates(pd.Series(["2005-01-02T13:30"]), "f")
    assert s.iloc[0] == pd.Timestamp("2005-01-02") and s.dtype == "datetime64[ns]"
    with pytest.raises(DataError, match="cannot be parsed"):
        parse_dates(pd.Series(["2005-01-02", "yesterday"]), "f")


@pytest.mark.parametrize("bad", ["-1", "00010101", "2300-01-01", "0001-01-01"])
def test_parse_dates_out_of_range_is_a_clear_error(bad):
    # pandas parses these to years it cannot hold in nanoseconds: a DataError naming the
    # file, the column and the value, not an OutOfBoundsDatetime traceback
    with pytest.raises(DataError, match=r"daily\.csv.*'DATE' lie outside the supported dates") as e:
        parse_dates(pd.Series(["2005-01-01", bad]), "daily.csv")
    assert repr(bad) in str(e.value) and "data row 2" in str(e.value)
    with pytest.raises(DataError, match="outside the supported dates"):
        import datetime
        parse_dates(pd.Series([datetime.date(1, 1, 1)], dtype=object), "daily.csv")
    edge = parse_dates(pd.Series(["1677-09-22", "2262-04-11"]), "f")
    assert edge.tolist() == [pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")]


def test_same_data_same_fingerprint_whatever_the_path(tmp_path, make_daily):
    d = make_daily(n_days=30)
    d.to_csv(tmp_path / "a.csv", index=False)
    d.to_parquet(tmp_path / "b.parquet")
    assert load_dataset(tmp_path / "a.csv").fingerprint() == load_dataset(tmp_path / "b.parquet").fingerprint()


# --------------------------------------------------------------- demo
def test_demo_zones():
    pytest.importorskip("fluxcore.demo")
    ds = load_dataset("demo")
    assert ds.synthetic
    assert ds.zone_counts() == {"arid": 15, "semi-arid": 44, "semi-humid": 20, "humid": 111}
    assert ds.meta["layout"] == "demo"


# ----------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_prepared_folder(real_data):
    t0 = time.perf_counter()
    ds = load_dataset(real_data)
    elapsed = time.perf_counter() - t0
    assert_contract(ds)
    assert ds.n_sites == 204 and ds.n_site_days == 541305
    assert ds.zone_counts() == {"arid": 12, "semi-arid": 38, "semi-humid": 16, "humid": 138}
    assert ds.variables == ["TA", "TMIN", "TMAX", "VPD", "SW_IN", "LAI", "ELEV", "EVI", "P_MONTHLY", "WS_MONTHLY",
                            "GPP", "ER", "NEE"]
    assert ds.problems == []
    assert ds.daily["LAI"].notna().mean() > 0.85
    assert ds.sites["MAP_MM"].between(0, 5000).all()
    assert elapsed < 10.0  # about 1 s alone; generous for a shared 2-core machine


@pytest.mark.realdata
def test_real_official_folder_and_agreement(real_data):
    dd = load_dataset(real_data / "official_dd", qc=QCConfig.none())
    assert_contract(dd)
    assert dd.n_sites == 6 and dd.problems == []
    assert Path(dd.meta["sites_table"]).resolve() == (real_data / "sites.csv").resolve()  # parent
    assert dd.zone_counts() == {"arid": 1, "semi-arid": 2, "semi-humid": 1, "humid": 2}
    raw = pd.read_csv(next((real_data / "official_dd").glob("FLX_DE-Hai_*.csv")), na_values=[-9999])
    hai = dd.daily[dd.daily.SITE_ID == "DE-Hai"]
    np.testing.assert_allclose(hai["GPP"].to_numpy(), raw["GPP_NT_VUT_REF"].to_numpy())
    np.testing.assert_allclose(hai["ER"].to_numpy(), raw["RECO_NT_VUT_REF"].to_numpy())
    # README: TA identical between the prepared table and the official files
    prep = pd.read_parquet(real_data / "daily.parquet", filters=[("SITE_ID", "==", "DE-Hai")])
    prep_ta = pd.Series(prep["TA_F"].to_numpy(float), index=pd.to_datetime(prep["TIMESTAMP"]))
    both = hai.set_index("DATE")["TA"].to_frame().join(prep_ta.rename("P_TA"), how="inner")
    assert len(both) > 1000
    np.testing.assert_allclose(both["TA"], both["P_TA"], atol=1e-3)


def test_climatology_fill_of_monthly_remote_sensing():
    """Days before the first MODIS month get the site's mean seasonal cycle, cyclically."""
    from fluxcore.lai import climatology_by_day, monthly_to_daily

    months = [f"{y}{m:02d}" for y in (2001, 2002) for m in range(1, 13)]
    vals = [1.0 + (m in (6, 7, 8)) * 2.0 for y in (2001, 2002) for m in range(1, 13)]
    monthly = pd.DataFrame({"SITE_ID": "XX-One", "YEAR_MONTH": months, "LAI": vals})
    days = pd.DataFrame({"SITE_ID": "XX-One",
                         "DATE": pd.date_range("1999-01-01", "2002-12-31", freq="D")})
    plain = monthly_to_daily(monthly, days, "LAI")
    filled = monthly_to_daily(monthly, days, "LAI", climatology_fill=True)
    before = days["DATE"] < "2001-01-01"
    assert plain[before].isna().all() and filled.notna().all()
    np.testing.assert_array_equal(filled[~before], plain[~before])  # observed days unchanged
    jul = days["DATE"] == "1999-07-16"
    assert filled[jul].item() == pytest.approx(3.0)
    assert filled[days["DATE"] == "1999-01-16"].item() == pytest.approx(1.0)
    # December -> January wraps around; too few months -> NaN
    mm = np.arange(1.0, 13.0)
    # day 365 is half-way between mid-December (12) and mid-January (1)
    assert climatology_by_day(mm, np.array([365]))[0] == pytest.approx(6.5)
    assert np.isnan(climatology_by_day(np.r_[mm[:5], [np.nan] * 7], np.array([10]))).all()
