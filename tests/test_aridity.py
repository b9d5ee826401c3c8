"""PET (FAO-56), aridity index and zones, checked against worked examples and by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluxcore.aridity import (
    aridity_index,
    aridity_zone,
    extraterrestrial_radiation,
    hargreaves_pet,
    site_aridity_from_daily,
)


def test_ra_fao56_example_8():
    # FAO-56 Example 8: 20 deg S, 3 September (day 246) -> Ra = 32.2 MJ m-2 d-1
    ra = float(extraterrestrial_radiation(-20.0, 246))
    assert ra == pytest.approx(32.2, abs=0.05)


def test_ra_fao56_annex2_table_equator():
    # FAO-56 Annex 2, Table 2.6: Ra at 0 deg on the 15th of each month [MJ m-2 d-1]
    table = [36.2, 37.5, 37.9, 36.8, 34.8, 33.4, 33.9, 35.7, 37.2, 37.4, 36.3, 35.6]
    doy = [pd.Timestamp(2001, m, 15).day_of_year for m in range(1, 13)]
    np.testing.assert_allclose(extraterrestrial_radiation(np.zeros(12), doy), table, atol=0.15)


def test_ra_polar_night_and_day():
    assert float(extraterrestrial_radiation(80.0, 355)) == 0.0  # polar night
    # polar day at 80 N in June: sun up all day, Ra larger than at the equator
    assert float(extraterrestrial_radiation(80.0, 172)) > float(extraterrestrial_radiation(0.0, 172))


def test_ra_vectorised_and_seasonal():
    doy = np.arange(1, 366)
    ra = extraterrestrial_radiation(np.full(doy.shape, 50.0), doy)
    assert ra.shape == doy.shape
    assert doy[np.argmax(ra)] in range(165, 180)  # maximum near the June solstice at 50 N
    assert doy[np.argmin(ra)] in list(range(350, 366)) + list(range(1, 5))


def test_hargreaves_hand_computed_example_8_site():
    # FAO-56 Eq. 52 by hand at the Example 8 site with Tmin 14.8, Tmax 26.6 degC, Ra = 32.2:
    # 0.0023 * (20.7 + 17.8) * sqrt(11.8) * 0.408 * 32.2 = 3.996 mm d-1
    et0 = float(hargreaves_pet(14.8, 26.6, -20.0, 246))
    assert et0 == pytest.approx(3.996, rel=0.005)


def test_hargreaves_equation_52_structure():
    ra = float(extraterrestrial_radiation(45.0, 200))
    # tmean given explicitly; result proportional to sqrt(Tmax - Tmin) and to (Tmean + 17.8)
    e1 = float(hargreaves_pet(10.0, 20.0, 45.0, 200, tmean=15.0))
    assert e1 == pytest.approx(0.0023 * (15.0 + 17.8) * np.sqrt(10.0) * 0.408 * ra, rel=1e-12)
    e4 = float(hargreaves_pet(10.0, 50.0, 45.0, 200, tmean=15.0))
    assert e4 == pytest.approx(2.0 * e1, rel=1e-12)
    # inverted temperatures are not negative ET0
    assert float(hargreaves_pet(20.0, 10.0, 45.0, 200)) == 0.0
    assert float(hargreaves_pet(-30.0, -20.0, 45.0, 200)) == 0.0  # Tmean + 17.8 < 0


def test_aridity_index_sums():
    p = [1.0, np.nan, 3.0, 0.0]
    pet = [2.0, 5.0, np.nan, 2.0]
    assert aridity_index(p, pet) == pytest.approx(1.0 / 4.0)  # days with both only
    assert np.isnan(aridity_index([np.nan], [1.0]))
    assert np.isnan(aridity_index([1.0], [0.0]))


@pytest.mark.parametrize(
    "ai, zone",
    [(0.0, "arid"), (0.04, "arid"), (0.1999, "arid"), (0.2, "semi-arid"), (0.4999, "semi-arid"),
     (0.5, "semi-humid"), (0.6499, "semi-humid"), (0.65, "humid"), (3.0, "humid")],
)
def test_zone_boundaries(ai, zone):
    assert aridity_zone(ai) == zone


def test_zone_nan_and_array():
    assert aridity_zone(float("nan")) is None
    z = aridity_zone(np.array([0.1, 0.2, 0.5, 0.65, np.nan]))
    assert list(z) == ["arid", "semi-arid", "semi-humid", "humid", None]


def test_site_aridity_from_daily_matches_hand_sum():
    dates = pd.date_range("2010-01-01", periods=365, freq="D")
    tmin = np.full(365, 10.0)
    tmax = np.full(365, 22.0)
    daily = pd.DataFrame({
        "SITE_ID": ["A"] * 365 + ["B"] * 365,
        "DATE": list(dates) * 2,
        "P": np.r_[np.full(365, 1.0), np.full(365, 2.0)],
        "TMIN": np.r_[tmin, tmin],
        "TMAX": np.r_[tmax, tmax],
    })
    lat = pd.Series({"A": 40.0, "B": np.nan})
    ai = site_aridity_from_daily(daily, lat)
    pet = hargreaves_pet(tmin, tmax, 40.0, dates.day_of_year)
    assert ai["A"] == pytest.approx(365.0 / pet.sum(), rel=1e-12)
    assert np.isnan(ai["B"])  # no latitude -> no PET -> unknown


def test_site_aridity_without_columns_is_nan():
    daily = pd.DataFrame({"SITE_ID": ["A"], "DATE": [pd.Timestamp("2010-01-01")], "P": [1.0]})
    out = site_aridity_from_daily(daily, pd.Series({"A": 10.0}))
    assert out.isna().all()


@pytest.mark.realdata
def test_real_site_table_zones(real_data):
    sites = pd.read_csv(real_data / "sites.csv")
    z = pd.Series(aridity_zone(sites["ARIDITY_INDEX"].to_numpy())).value_counts()
    assert z.to_dict() == {"humid": 138, "semi-arid": 38, "semi-humid": 16, "arid": 12}
