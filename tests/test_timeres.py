"""Time resolution and grid cells: monthly aggregation, monthly drivers, cells, monthly features."""

from __future__ import annotations

import hashlib

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from fluxcore.aridity import extraterrestrial_radiation
from fluxcore.dataset import FluxDataset, make_sites_frame
from fluxcore.errors import ConfigError, DataError
from fluxcore.features import (
    FeatureConfig,
    build_features,
    monthly_potential_radiation,
    trailing_mean,
)
from fluxcore.learners import make_learner
from fluxcore.timeres import (
    FRAC_SUFFIX,
    MONTHLY_AGGREGATION,
    aggregation_of,
    cells_dataset,
    monthly_feature_config,
    read_monthly_drivers,
    to_monthly,
    unit_of,
)


def _sites(ids=("XX-Aaa",), lat=45.0):
    return make_sites_frame(pd.DataFrame({"SITE_ID": list(ids), "LAT": lat, "LON": 5.0,
                                          "IGBP": "ENF", "ARIDITY_INDEX": 1.0,
                                          "ARIDITY_ZONE": "humid"}))


def _daily(dates, **cols) -> pd.DataFrame:
    d = pd.DataFrame({"SITE_ID": "XX-Aaa", "DATE": pd.to_datetime(dates)})
    for k, v in cols.items():
        d[k] = np.asarray(v, dtype=float) if np.ndim(v) else float(v)
    return d


def _ds(daily: pd.DataFrame, ids=("XX-Aaa",)) -> FluxDataset:
    return FluxDataset(sites=_sites(ids), daily=daily, name="hand", synthetic=True)


def _row(m: FluxDataset, date: str, site: str = "XX-Aaa") -> pd.Series:
    d = m.daily
    hit = d[(d["SITE_ID"] == site) & (d["DATE"] == pd.Timestamp(date))]
    assert len(hit) == 1, f"no single row for {site} {date}"
    return hit.iloc[0]


# ------------------------------------------------------------------ aggregation
def test_sums_and_means_known_answers():
    dates = pd.date_range("2021-01-01", "2021-03-31", freq="D")  # 31 + 28 + 31 days
    k = np.arange(len(dates), dtype=float)
    d = _daily(dates, GPP=2.0, ER=1.5, P=k, TA=k, TMIN=k - 5, TMAX=k + 5, VPD=3.0, SW_IN=100.0,
               LAI=2.0)
    d["NEE"] = d["ER"] - d["GPP"]
    m = to_monthly(_ds(d))
    assert m.time_step == "monthly"
    assert m.daily["DATE"].tolist() == list(pd.to_datetime(["2021-01-01", "2021-02-01", "2021-03-01"]))
    jan, feb, mar = (_row(m, s) for s in ("2021-01-01", "2021-02-01", "2021-03-01"))
    assert jan["GPP"] == 62.0 and feb["GPP"] == 56.0 and mar["GPP"] == 62.0  # gC m-2 month-1
    assert feb["ER"] == 42.0 and feb["NEE"] == -14.0
    assert jan["P"] == sum(range(31)) and feb["P"] == sum(range(31, 59))  # mm month-1
    assert jan["TA"] == pytest.approx(15.0) and feb["TA"] == pytest.approx(44.5)  # means
    assert jan["TMIN"] == pytest.approx(10.0) and jan["TMAX"] == pytest.approx(20.0)
    assert mar["VPD"] == 3.0 and mar["SW_IN"] == 100.0 and mar["LAI"] == 2.0
    for c in ("GPP", "TA", "P"):
        assert (m.daily[c + FRAC_SUFFIX] == 1.0).all()
    assert m.meta["monthly"]["aggregation"]["GPP"] == "sum"
    assert m.meta["monthly"]["aggregation"]["TA"] == "mean"
    assert m.name == "hand-monthly" and m.synthetic


def test_valid_fraction_and_nan_rule():
    dates = pd.date_range("2021-01-01", "2021-02-28", freq="D")
    gpp = np.full(len(dates), 3.0)
    gpp[16:31] = np.nan      # January: 16 of 31 valid (0.516)
    gpp[31 + 14:] = np.nan   # February: 14 of 28 valid (0.5 exactly)
    ta = np.where(np.arange(len(dates)) < 31, 10.0, 20.0)
    ta[:16] = np.nan         # January TA: 15 of 31 valid (0.484)
    m = to_monthly(_ds(_daily(dates, GPP=gpp, TA=ta)))
    jan, feb = _row(m, "2021-01-01"), _row(m, "2021-02-01")
    assert jan["GPP_FRAC_VALID"] == pytest.approx(16 / 31)
    assert jan["GPP"] == pytest.approx(3.0 * 31)   # scaled: valid mean x days in month
    assert feb["GPP_FRAC_VALID"] == 0.5 and feb["GPP"] == pytest.approx(84.0)  # 0.5 is kept
    assert jan["TA_FRAC_VALID"] == pytest.approx(15 / 31)
    assert np.isnan(jan["TA"])                      # below 0.5: NaN, fraction kept
    assert feb["TA"] == 20.0
    m2 = to_monthly(_ds(_daily(dates, GPP=gpp, TA=ta)), min_valid_fraction=0.6)
    assert np.isnan(_row(m2, "2021-01-01")["GPP"]) and np.isnan(_row(m2, "2021-02-01")["GPP"])
    m0 = to_monthly(_ds(_daily(dates, GPP=gpp, TA=ta)), min_valid_fraction=0.0)
    assert _row(m0, "2021-01-01")["TA"] == 10.0
    all_nan = to_monthly(_ds(_daily(dates, GPP=np.nan, TA=1.0)), min_valid_fraction=0.0)
    assert all_nan.daily["GPP"].isna().all() and (all_nan.daily["GPP_FRAC_VALID"] == 0).all()


def test_absent_days_count_as_invalid_and_gap_months_are_rows():
    # record starts on 20 January (12 of 31 days), no rows at all in March
    dates = list(pd.date_range("2021-01-20", "2021-02-28")) + list(pd.date_range("2021-04-01", "2021-04-30"))
    m = to_monthly(_ds(_daily(dates, GPP=1.0)))
    assert m.daily["DATE"].dt.month.tolist() == [1, 2, 3, 4]
    jan, mar = _row(m, "2021-01-01"), _row(m, "2021-03-01")
    assert jan["GPP_FRAC_VALID"] == pytest.approx(12 / 31) and np.isnan(jan["GPP"])
    assert mar["GPP_FRAC_VALID"] == 0.0 and np.isnan(mar["GPP"])
    assert _row(m, "2021-04-01")["GPP"] == 30.0


def test_month_boundaries_and_leap_years():
    dates = pd.date_range("2019-12-31", "2021-03-01", freq="D")
    m = to_monthly(_ds(_daily(dates, GPP=1.0, TA=5.0)), min_valid_fraction=0.0)
    assert _row(m, "2020-02-01")["GPP"] == 29.0       # leap year
    assert _row(m, "2021-02-01")["GPP"] == 28.0
    assert _row(m, "2020-12-01")["GPP"] == 31.0
    assert _row(m, "2019-12-01")["GPP_FRAC_VALID"] == pytest.approx(1 / 31)  # only 31 Dec
    assert _row(m, "2021-03-01")["GPP_FRAC_VALID"] == pytest.approx(1 / 31)  # only 1 Mar
    assert _row(m, "2019-12-01")["GPP"] == pytest.approx(31.0)  # scaled from the one day
    assert (m.daily["DATE"].dt.day == 1).all() and len(m.daily) == 16
    # two sites, different spans: months never cross sites
    d2 = pd.concat([_daily(pd.date_range("2020-01-01", "2020-02-29"), GPP=1.0),
                    _daily(pd.date_range("2020-02-01", "2020-03-31"), GPP=2.0).assign(SITE_ID="XX-Bbb")])
    m2 = to_monthly(_ds(d2, ids=("XX-Aaa", "XX-Bbb")))
    assert m2.daily[["SITE_ID", "DATE"]].astype(str).values.tolist() == [
        ["XX-Aaa", "2020-01-01"], ["XX-Aaa", "2020-02-01"], ["XX-Bbb", "2020-02-01"], ["XX-Bbb", "2020-03-01"]]
    assert _row(m2, "2020-02-01", "XX-Bbb")["GPP"] == 58.0


def test_aggregation_rules_and_units():
    sums = sorted(k for k, v in MONTHLY_AGGREGATION.items() if v == "sum")
    assert sums == ["ER", "GPP", "NEE", "P"]
    for v in ("TA", "TMIN", "TMAX", "VPD", "SW_IN", "WS", "LAI", "EVI", "P_MONTHLY", "WS_MONTHLY"):
        assert MONTHLY_AGGREGATION[v] == "mean"
    assert "ELEV" not in MONTHLY_AGGREGATION
    assert aggregation_of("QC_NEE_FRAC") == "mean" and aggregation_of("P_ERA") == "sum"
    assert unit_of("GPP", "monthly") == "gC m-2 month-1" and unit_of("GPP") == "gC m-2 d-1"
    assert unit_of("P", "monthly") == "mm month-1" and unit_of("TA", "monthly") == "degC"
    assert unit_of("P_MONTHLY", "monthly") == "mm d-1"
    with pytest.raises(ConfigError, match="time_step"):
        unit_of("TA", "hourly")


def test_to_monthly_bad_input():
    d = _daily(pd.date_range("2021-01-01", periods=40), GPP=1.0)
    m = to_monthly(_ds(d))
    with pytest.raises(ConfigError, match="already monthly"):
        to_monthly(m)
    for bad in (-0.1, 1.5, "half", None, True):
        with pytest.raises(ConfigError, match="min_valid_fraction"):
            to_monthly(_ds(d), min_valid_fraction=bad)
    dup = pd.concat([d, d.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataError, match="1 duplicated site-day"):
        to_monthly(_ds(dup))
    with pytest.raises(ConfigError, match="time_step"):
        FluxDataset(sites=_sites(), daily=d, time_step="weekly")


def _write_monthly_rs(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_monthly_drivers_file_replace_and_add(tmp_path):
    dates = pd.date_range("2020-01-01", "2020-03-31")
    d = _daily(dates, GPP=1.0, LAI=1.0, P_MONTHLY=9.0, TA=3.0)
    f = _write_monthly_rs(tmp_path / "monthly_rs.csv", {
        "SITE_ID": ["XX-Aaa", "XX-Aaa", "XX-Zzz"], "YEAR_MONTH": [202001, 202002, 202001],
        "LAI": [2.5, -9999.0, 7.0], "P_F": [1.0, 2.0, 3.0], "WS_F": [4.0, 5.0, 6.0],
        "P_ERA": [0.5, 0.5, 0.5], "TA_ERA": [1.0, 2.0, 3.0]})
    md = read_monthly_drivers(f)
    assert md.loc[md["SITE_ID"] == "XX-Aaa", "P"].tolist() == [31.0, 58.0]  # mm month-1 (leap Feb)
    m = to_monthly(_ds(d), monthly_drivers=f)
    jan, feb, mar = (_row(m, s) for s in ("2020-01-01", "2020-02-01", "2020-03-01"))
    assert jan["LAI"] == 2.5 and jan["LAI_FRAC_VALID"] == 1.0   # file value replaces the aggregate
    assert feb["LAI"] == 1.0                                     # missing in file: aggregate kept
    assert jan["P"] == 31.0 and feb["P"] == 58.0 and np.isnan(mar["P"])
    assert mar["P_FRAC_VALID"] == 0.0 and feb["WS"] == 5.0 and jan["P_ERA"] == 15.5
    assert "P_MONTHLY" not in m.daily and "P_MONTHLY" + FRAC_SUFFIX not in m.daily
    assert set(m.daily["SITE_ID"]) == {"XX-Aaa"}                 # unknown sites ignored
    assert m.meta["monthly"]["monthly_drivers"] == str(f)
    # a DataFrame in monthly units, any day of the month
    frame = pd.DataFrame({"SITE_ID": ["XX-Aaa"], "DATE": ["2020-03-15"], "EVI": [0.4]})
    m2 = to_monthly(_ds(d), monthly_drivers=frame)
    assert _row(m2, "2020-03-01")["EVI"] == 0.4 and np.isnan(_row(m2, "2020-01-01")["EVI"])
    with pytest.raises(DataError, match="YEAR_MONTH"):
        read_monthly_drivers(_write_monthly_rs(tmp_path / "bad.csv", {
            "SITE_ID": ["XX-Aaa"], "YEAR_MONTH": [202013], "LAI": [1.0]}))
    for ym in (100001, 300001):  # beyond datetime64[ns]: used to wrap round to 2169 / 1830
        with pytest.raises(DataError, match="YEAR_MONTH value.*years 1678-2261"):
            read_monthly_drivers(_write_monthly_rs(tmp_path / f"y{ym}.csv", {
                "SITE_ID": ["XX-Aaa", "XX-Aaa"], "YEAR_MONTH": [ym, 202001], "LAI": [1.0, 1.0]}))
    with pytest.raises(DataError, match="duplicated site-month"):
        read_monthly_drivers(_write_monthly_rs(tmp_path / "dup.csv", {
            "SITE_ID": ["XX-Aaa"] * 2, "YEAR_MONTH": [202001] * 2, "LAI": [1.0, 2.0]}))
    with pytest.raises(DataError, match="missing required column"):
        read_monthly_drivers(_write_monthly_rs(tmp_path / "nocol.csv", {"SITE_ID": ["a"], "LAI": [1.0]}))
    # were accepted silently: 202001.5 truncated to January, a blank site id read as site 'nan',
    # text in a driver column read as missing
    with pytest.raises(DataError, match=r"YEAR_MONTH value.*202001\.5"):
        read_monthly_drivers(_write_monthly_rs(tmp_path / "frac.csv", {
            "SITE_ID": ["XX-Aaa"] * 2, "YEAR_MONTH": [202001.5, 202002], "LAI": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"noid\.csv: 1 row\(s\) without a site id.*data row 2"):
        read_monthly_drivers(_write_monthly_rs(tmp_path / "noid.csv", {
            "SITE_ID": ["XX-Aaa", None], "YEAR_MONTH": [202001, 202002], "LAI": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"text\.csv: column LAI: 1 value\(s\) are not numbers.*'--'"):
        read_monthly_drivers(_write_monthly_rs(tmp_path / "text.csv", {
            "SITE_ID": ["XX-Aaa"] * 2, "YEAR_MONTH": [202001, 202002], "LAI": [1.0, "--"]}))


@pytest.mark.realdata
def test_real_monthly_with_monthly_rs(real_data):
    from fluxcore.sources import load_dataset

    ds = load_dataset(real_data).subset(sites=["US-Ha1", "DE-Hai"])
    m = to_monthly(ds, monthly_drivers=real_data / "monthly_rs.csv")
    assert {"P", "WS", "LAI", "EVI", "TA_ERA", "GPP", "GPP_FRAC_VALID"} <= set(m.daily.columns)
    ann = m.daily.assign(Y=m.daily["DATE"].dt.year).groupby(["SITE_ID", "Y"])
    full = ann["GPP"].agg(["sum", "count"]).query("count == 12")["sum"]
    assert len(full) > 5 and full.between(500, 3000).all()  # gC m-2 yr-1, temperate forests
    ft = build_features(m, monthly_feature_config(), targets=["GPP", "ER"])
    assert "P_MEAN3M" in ft.feature_names and ft.time_step == "monthly"


# ------------------------------------------------------------------------ cells
def _cells(n=3):
    return pd.DataFrame({"SITE_ID": [f"c{i}" for i in range(n)], "LAT": [40.0, 50.5, -10.0][:n],
                         "LON": [-100.0, 200.0, 359.5][:n]})


def _cell_drivers(cells, start="2010-01-15", months=24, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for sid in cells["SITE_ID"]:
        dates = pd.date_range(pd.Timestamp(start).to_period("M").start_time, periods=months, freq="MS") + pd.Timedelta(days=14)
        ph = np.sin(2 * np.pi * (dates.month.to_numpy() - 4) / 12)
        rows.append(pd.DataFrame({"SITE_ID": sid, "DATE": dates, "TA": 10 + 10 * ph + rng.normal(0, 1, months),
                                  "SW_IN": 180 + 100 * ph, "VPD": 6 + 4 * ph, "P": rng.gamma(2, 30, months),
                                  "LAI": 2 + ph}))
    return pd.concat(rows, ignore_index=True)


def test_cells_dataset_builds():
    cells = _cells()
    ds = cells_dataset(cells, _cell_drivers(cells), name="grid", synthetic=True)
    assert ds.time_step == "monthly" and ds.site_ids == ["c0", "c1", "c2"]
    assert (ds.daily["DATE"].dt.day == 1).all()            # mid-month stamps -> month start
    assert ds.sites.loc["c1", "LON"] == -160.0 and ds.sites.loc["c2", "LON"] == -0.5
    assert ds.targets == [] and ds.statics == []
    assert ds.sites["IGBP"].isna().all() and ds.sites["ARIDITY_ZONE"].isna().all()
    s = ds.summary()
    assert s["time_step"] == "monthly" and s["n_sites"] == 3 and s["zones"]["unknown"] == 3
    daily = cells_dataset(cells, _cell_drivers(cells).assign(DATE=lambda x: x["DATE"] - pd.Timedelta(days=3)),
                          time_step="daily")
    assert daily.time_step == "daily" and (daily.daily["DATE"].dt.day == 12).all()


@pytest.mark.parametrize("change, where, message", [
    (lambda c, d: (c.drop(columns="LAT"), d), "cells table", "missing required column(s) LAT"),
    (lambda c, d: (c, d.drop(columns="DATE")), "drivers table", "missing required column(s) DATE"),
    (lambda c, d: (c.assign(SITE_ID=["c0", "c0", "c2"]), d), "cells table", "1 duplicated cell id(s) (e.g. 'c0')"),
    (lambda c, d: (c.assign(LAT=[40.0, 95.0, 0.0]), d), "cells table", "LAT outside [-90, 90] for 1 cell(s) (e.g. cell 'c1': 95)"),
    (lambda c, d: (c.assign(LON=[-181.0, 0.0, 0.0]), d), "cells table", "LON outside [-180, 360) for 1 cell(s)"),
    (lambda c, d: (c.assign(LON=[360.0, 0.0, 0.0]), d), "cells table", "LON outside [-180, 360)"),
    (lambda c, d: (c.assign(LAT=[40.0, None, 0.0]), d), "cells table", "1 LAT value(s) missing or not numbers"),
    (lambda c, d: (c, pd.concat([d, d.iloc[[0]].assign(SITE_ID="zz")])), "drivers table",
     "rows for 1 cell(s) not in the cells table (e.g. 'zz')"),
    (lambda c, d: (c, pd.concat([d, d.iloc[[0]].assign(DATE=d["DATE"].iloc[0] + pd.Timedelta(days=3))])),
     "drivers table", "1 duplicated cell-month(s) (e.g. cell 'c0' in 2010-01)"),
    (lambda c, d: (c, d.astype({"TA": object}).assign(TA=["x"] + list(d["TA"].iloc[1:]))), "drivers table",
     "column TA: 1 non-numeric value(s) (e.g. 'x')"),
    (lambda c, d: (c, d.iloc[:0]), "drivers table", "has no rows"),
    (lambda c, d: (c.to_dict(), d), "cells table", "must be a pandas DataFrame"),
])
def test_cells_dataset_validation(change, where, message):
    cells = _cells()
    c, d = change(cells, _cell_drivers(cells, months=3))
    with pytest.raises(DataError) as err:
        cells_dataset(c, d)
    assert str(err.value).startswith(where + ": ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_cells_dataset_bad_dates_and_time_step():
    cells = _cells()
    d = _cell_drivers(cells, months=3).astype({"DATE": object})
    d.loc[4, "DATE"] = "2010-13-45"
    with pytest.raises(DataError, match="drivers table: .*DATE"):
        cells_dataset(cells, d)
    with pytest.raises(ConfigError, match="time_step"):
        cells_dataset(cells, _cell_drivers(cells), time_step="yearly")


def test_minimal_catalogue_and_no_targets_build_features():
    """A catalogue with only SITE_ID, LAT, LON (no IGBP, aridity, statics) and no targets."""
    sites = pd.DataFrame({"SITE_ID": ["c0", "c1"], "LAT": [10.0, 60.0], "LON": [0.0, 1.0]})
    gdf = gpd.GeoDataFrame(sites, geometry=gpd.points_from_xy(sites["LON"], sites["LAT"]), crs="EPSG:4326")
    gdf.index = pd.Index(gdf["SITE_ID"], name="site")
    drivers = _cell_drivers(sites, months=12).assign(DATE=lambda x: x["DATE"].dt.to_period("M").dt.start_time)
    ds = FluxDataset(sites=gdf, daily=drivers, name="bare", time_step="monthly")
    ft = build_features(ds, targets=[])
    assert ft.y.shape == (24, 0) and ft.time_step == "monthly"
    assert not any(c.startswith("IGBP_") for c in ft.feature_names) and "ARIDITY_INDEX" not in ft.feature_names
    assert list(ft.zones) == [None] * 24
    assert np.isfinite(ft.X["SW_IN_POT"]).all()
    assert ft.X.loc[ft.sites == "c1", "SW_IN_POT"].min() < ft.X.loc[ft.sites == "c0", "SW_IN_POT"].min()


def test_tower_model_predicts_cells():
    """Fit on tower months, predict grid cells with the same predict(X, sites=, dates=)."""
    rng = np.random.default_rng(1)
    days = pd.date_range("2010-01-01", "2011-12-31")
    frames = []
    for k, sid in enumerate(["XX-Aaa", "XX-Bbb", "XX-Ccc"]):
        ph = np.sin(2 * np.pi * (days.day_of_year.to_numpy() - 105) / 365.25)
        sw = 180 + 100 * ph + rng.normal(0, 10, len(days))
        frames.append(pd.DataFrame({"SITE_ID": sid, "DATE": days, "TA": 10 + 10 * ph + k, "SW_IN": sw,
                                    "VPD": 6 + 4 * ph, "P": rng.gamma(0.5, 4, len(days)), "LAI": 2 + ph,
                                    "GPP": 0.02 * sw * (2 + ph) + rng.normal(0, 0.3, len(days)), "ER": 2 + 0.1 * k}))
    towers = to_monthly(_ds(pd.concat(frames, ignore_index=True), ids=("XX-Aaa", "XX-Bbb", "XX-Ccc")))
    cfg = monthly_feature_config(igbp=False, site_attributes=(), variables=("TA", "SW_IN", "VPD", "P", "LAI"))
    ft_t = build_features(towers, cfg, targets=["GPP", "ER"])
    cells = _cells()
    grid = cells_dataset(cells, _cell_drivers(cells, start="2012-01-01", months=12), synthetic=True)
    ft_c = build_features(grid, cfg, targets=[])
    assert ft_c.feature_names == ft_t.feature_names
    learner = make_learner("mlr").fit(ft_t.X, ft_t.y, sites=ft_t.sites, dates=ft_t.dates)
    pred = learner.predict(ft_c.X, sites=ft_c.sites, dates=ft_c.dates)
    assert pred.shape == (36, 2) and np.isfinite(pred).all()
    summer = (pd.DatetimeIndex(ft_c.dates).month == 7) & (ft_c.sites == "c0")
    winter = (pd.DatetimeIndex(ft_c.dates).month == 1) & (ft_c.sites == "c0")
    assert pred[summer, 0].mean() > pred[winter, 0].mean()  # GPP [gC m-2 month-1] follows light


# --------------------------------------------------------------------- features
def test_monthly_calendar_radiation_and_windows():
    cells = _cells(2)
    drv = _cell_drivers(cells, start="2011-11-01", months=6)
    drv = drv[~((drv["SITE_ID"] == "c0") & (drv["DATE"].dt.month == 1))]  # a gap month at c0
    ds = cells_dataset(cells, drv)
    ft = build_features(ds, FeatureConfig(rolling_windows=(2,)), targets=[])
    assert {"MONTH_SIN", "MONTH_COS", "TA_MEAN2M"} <= set(ft.feature_names)
    assert not {"DOY_SIN", "DOY_COS", "TA_MEAN2D"} & set(ft.feature_names)
    month = pd.DatetimeIndex(ft.dates).month.to_numpy()
    np.testing.assert_allclose(ft.X["MONTH_SIN"], np.sin(2 * np.pi * (month - 0.5) / 12))
    np.testing.assert_allclose(ft.X["MONTH_COS"], np.cos(2 * np.pi * (month - 0.5) / 12))
    # the 2-month trailing mean: this month and the previous calendar month of the same cell
    ta = ds.daily.set_index(["SITE_ID", "DATE"])["TA"]
    x = pd.Series(ft.X["TA_MEAN2M"].to_numpy(), index=pd.MultiIndex.from_arrays([ft.sites, ft.dates]))
    assert x[("c0", pd.Timestamp("2012-02-01"))] == pytest.approx(ta[("c0", pd.Timestamp("2012-02-01"))])  # no Jan
    assert x[("c1", pd.Timestamp("2012-02-01"))] == pytest.approx(
        (ta[("c1", pd.Timestamp("2012-02-01"))] + ta[("c1", pd.Timestamp("2012-01-01"))]) / 2)
    assert x[("c1", pd.Timestamp("2011-11-01"))] == pytest.approx(ta[("c1", pd.Timestamp("2011-11-01"))])
    # monthly potential radiation = mean of the daily values of the month (leap February)
    feb = pd.date_range("2012-02-01", "2012-02-29")
    ref = extraterrestrial_radiation(40.0, feb.day_of_year.to_numpy()).mean() * 1e6 / 86400
    got = ft.X["SW_IN_POT"][(ft.sites == "c0") & (month == 2)]
    assert got.iloc[0] == pytest.approx(ref, rel=1e-12)
    assert np.isnan(monthly_potential_radiation(np.array([np.nan]), np.array(["2012-02-01"], dtype="datetime64[ns]"))[0])
    with pytest.raises(ConfigError, match="water-balance"):
        build_features(ds, FeatureConfig(water_balance=True), targets=[])
    sub = ft.rows(ft.sites == "c1")
    assert sub.time_step == "monthly" and len(sub) == 6


def test_trailing_mean_monthly_steps_across_years():
    dates = pd.to_datetime(["2011-11-01", "2011-12-01", "2012-01-01", "2012-03-01"]).to_numpy()
    v = np.array([1.0, 2.0, 4.0, 8.0])
    out = trailing_mean(v, np.array(["a"] * 4), dates, 2, step="monthly")
    np.testing.assert_allclose(out, [1.0, 1.5, 3.0, 8.0])  # Feb 2012 is missing: March alone
    with pytest.raises(ConfigError, match="time step"):
        trailing_mean(v, np.array(["a"] * 4), dates, 2, step="weekly")


def test_monthly_feature_config():
    cfg = monthly_feature_config(igbp=False)
    assert cfg.rolling_windows == (3, 12) and cfg.igbp is False
    assert FeatureConfig().rolling_windows == (7, 30)


# ------------------------------------------------------------------ fingerprints
def _fingerprint_before_time_steps(ds: FluxDataset) -> str:
    """FluxDataset.fingerprint as it was before datasets had a time step."""
    h = hashlib.sha256()
    d = ds.daily.sort_values(["SITE_ID", "DATE"]).reset_index(drop=True)
    h.update(",".join(map(str, d.columns)).encode())
    h.update(pd.util.hash_pandas_object(d, index=False).to_numpy().tobytes())
    s = pd.DataFrame(ds.sites.drop(columns="geometry")).reset_index(drop=True).astype(str)
    h.update(pd.util.hash_pandas_object(s, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def test_daily_fingerprint_unchanged_monthly_differs():
    from fluxcore.sources import load_dataset

    demo = load_dataset("demo")
    assert demo.time_step == "daily"
    assert demo.fingerprint() == _fingerprint_before_time_steps(demo)
    assert demo.summary()["time_step"] == "daily"
    d = _daily(pd.date_range("2021-01-01", periods=3, freq="MS"), GPP=1.0)
    daily_label = _ds(d)
    monthly_label = FluxDataset(sites=_sites(), daily=d, name="hand", time_step="monthly")
    assert daily_label.fingerprint() == _fingerprint_before_time_steps(daily_label)
    assert monthly_label.fingerprint() != daily_label.fingerprint()
    assert monthly_label.subset(sites=["XX-Aaa"]).time_step == "monthly"
