"""Catalogue of bad inputs, part 1: the data loaders (issue 20, item 7).

Each case builds one small bad input (official FLUXNET2015 DD files, the prepared folder
layout, tidy CSV / Parquet files, site tables) and states what a user must get:

``raises``
    a :class:`fluxcore.errors.DataError` whose one-line message names the file, the column
    (where there is one) and the problem;
``problem``
    the data load, and ``dataset.problems`` has a line naming the file and the problem;
``qc``
    the data load, and quality control removed and counted the bad values under a reason.

A few cases also run ``python -m fluxcore data --data ...`` in a subprocess: non-zero exit
(2) for ``raises`` and exit 0 with the problem printed otherwise, never a traceback.
Other parts of the catalogue (config, run store, uploads) live in their own files.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_daily, write_official_dd

from fluxcore.errors import DataError
from fluxcore.sources import load_dataset

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """What one bad input must give (see the module docstring)."""

    src: Path
    kind: str  # "raises", "problem" or "qc"
    words: list[str]  # must all appear in the message / problem line
    file: str  # file name the message must name
    kwargs: dict = field(default_factory=dict)
    reason: str | None = None  # QC reason for kind "qc"
    variable: str | None = None  # QC variable for kind "qc"


# ------------------------------------------------------------------ builders
def _tidy(tmp: Path, name: str, n_days: int = 60, sites=("XX-Aaa", "XX-Bbb"),
          edit: Callable[[pd.DataFrame], None] | None = None, parquet: bool = False) -> Path:
    d = synthetic_daily(sites=sites, n_days=n_days)
    if edit is not None:
        edit(d)
    path = tmp / name
    if parquet:
        d.to_parquet(path)
    else:
        d.to_csv(path, index=False)
    return path


def _dd_folder(tmp: Path, edit: Callable[[pd.DataFrame], None] | None = None,
               n_days: int = 200) -> tuple[Path, Path]:
    """A folder with a good site XX-Aaa and a site XX-Bbb edited by ``edit``."""
    folder = tmp / "dd"
    folder.mkdir()
    write_official_dd(folder, "XX-Aaa", n_days=n_days)
    bad = write_official_dd(folder, "XX-Bbb", n_days=n_days, seed=1)
    if edit is not None:
        df = pd.read_csv(bad)
        edit(df)
        df.to_csv(bad, index=False)
    return folder, bad


def _prepared(tmp: Path, sites_edit: Callable[[pd.DataFrame], None] | None = None,
              daily_edit: Callable[[pd.DataFrame], None] | None = None) -> Path:
    folder = tmp / "prep"
    folder.mkdir()
    d = synthetic_daily(sites=("XX-Aaa", "XX-Bbb"), n_days=90)
    daily = pd.DataFrame({
        "SITE_ID": d["SITE_ID"], "TIMESTAMP": d["DATE"].dt.strftime("%Y%m%d").astype(int),
        "TA_F": d["TA"], "TMIN_F": d["TMIN"], "TMAX_F": d["TMAX"], "SW_IN_F": d["SW_IN"],
        "VPD_F": d["VPD"], "GPP_NT_VUT_REF": d["GPP"], "RECO_NT_EST": d["ER"],
        "NEE_VUT_REF": d["NEE"], "NEE_MEASURED_FRAC": d["QC_NEE_FRAC"],
    })
    if daily_edit is not None:
        daily_edit(daily)
    daily.to_parquet(folder / "daily.parquet")
    sites = pd.DataFrame({"SITE_ID": ["XX-Aaa", "XX-Bbb"], "LAT": [45.0, 46.0],
                          "LON": [10.0, 11.0], "ELEV_M": [100.0, 200.0], "IGBP": ["GRA", "ENF"],
                          "ARIDITY_INDEX": [0.8, 0.3]})
    if sites_edit is not None:
        sites_edit(sites)
    sites.to_csv(folder / "sites.csv", index=False)
    rows = [{"SITE_ID": s, "YEAR_MONTH": ym, "LAI": 1.5} for s in ("XX-Aaa", "XX-Bbb")
            for ym in (200501, 200502, 200503)]
    pd.DataFrame(rows).to_csv(folder / "monthly_rs.csv", index=False)
    return folder


def _cut(path: Path, n_chars: int = 25) -> None:
    """Cut a file in the middle of its last line (no line break at the end)."""
    text = path.read_text()
    path.write_text(text[: len(text) - n_chars])


def _set(col: str, value, rows=slice(None)):
    def edit(d: pd.DataFrame) -> None:
        if d[col].dtype.kind == "f" and not isinstance(value, float):
            d[col] = d[col].astype(object)
        d.loc[d.index[rows], col] = value
    return edit


# ------------------------------------------------------------ official DD files
def dd_cut_last_line(tmp):
    folder, bad = _dd_folder(tmp)
    _cut(bad)
    return Case(folder, "problem", ["cut short", "line 201", "not used"], bad.name)


def dd_short_line_in_middle(tmp):
    folder, bad = _dd_folder(tmp)
    lines = bad.read_text().splitlines()
    lines[50] = ",".join(lines[50].split(",")[:5])
    bad.write_text("\n".join(lines) + "\n")
    return Case(folder, "problem", ["line 51 has 5 fields", "header has 15"], bad.name)


def dd_only_file_extra_fields(tmp):
    folder = tmp / "dd"
    folder.mkdir()
    bad = write_official_dd(folder, "XX-Bbb")
    lines = bad.read_text().splitlines()
    lines[7] = lines[7] + ",1.5"
    bad.write_text("\n".join(lines) + "\n")
    return Case(folder, "raises", ["no daily file could be loaded", "line 8 has 16 fields"],
                bad.name)


def dd_inf_gpp(tmp):
    folder, bad = _dd_folder(tmp, _set("GPP_NT_VUT_REF", np.inf, [3, 4]))
    return Case(folder, "qc", [], bad.name, reason="not_finite", variable="GPP")


def dd_kelvin_ta(tmp):
    folder, bad = _dd_folder(tmp, lambda d: d.__setitem__("TA_F", d["TA_F"] + 273.15))
    return Case(folder, "problem", ["TA values look like kelvin", "XX-Bbb", "subtract 273.15"],
                bad.name)


def dd_qc_fraction_in_percent(tmp):
    """NEE_VUT_REF_QC in percent (0-100): every day passed the measured-fraction filter silently."""
    folder, bad = _dd_folder(tmp, lambda d: d.__setitem__("NEE_VUT_REF_QC", d["NEE_VUT_REF_QC"] * 100))
    return Case(folder, "problem", ["column QC_NEE_FRAC", "outside the fraction range 0-1",
                                    "a percentage? divide by 100"], bad.name)


def dd_qc_fraction_text(tmp):
    """Text in one file's column was reported under the folder's name, not the file's."""
    folder, bad = _dd_folder(tmp, lambda d: d.__setitem__("NEE_VUT_REF_QC", "x"))
    return Case(folder, "problem", ["column QC_NEE_FRAC", "non-numeric value(s)", "'x'"], bad.name)


def dd_gpp_entirely_missing(tmp):
    folder, bad = _dd_folder(tmp, _set("GPP_NT_VUT_REF", -9999.0))
    return Case(folder, "problem", ["site XX-Bbb: GPP entirely missing (200 days)"], bad.name)


def dd_sites_table_lat_999(tmp):
    folder, _ = _dd_folder(tmp)
    pd.DataFrame({"SITE_ID": ["XX-Aaa", "XX-Bbb"], "LAT": [45.0, 999.0],
                  "LON": [10.0, 11.0]}).to_csv(folder / "sites.csv", index=False)
    return Case(folder, "raises", ["column LAT", "outside -90..90", "data row 2", "XX-Bbb"],
                "sites.csv")


# ----------------------------------------------------------- prepared layout
def prepared_negative_aridity(tmp):
    folder = _prepared(tmp, sites_edit=_set("ARIDITY_INDEX", -0.4, [1]))
    return Case(folder, "raises", ["column ARIDITY_INDEX", "-0.4", "data row 2"], "sites.csv")


def prepared_infinite_aridity(tmp):
    folder = _prepared(tmp, sites_edit=_set("ARIDITY_INDEX", np.inf, [0]))
    return Case(folder, "raises", ["column ARIDITY_INDEX", "not finite", "data row 1"],
                "sites.csv")


def prepared_lon_text(tmp):
    folder = _prepared(tmp, sites_edit=_set("LON", "10 E", [0]))
    return Case(folder, "raises", ["column LON", "not numbers", "'10 E'"], "sites.csv")


def prepared_elevation_in_feet_too_high(tmp):
    folder = _prepared(tmp, sites_edit=_set("ELEV_M", 12500.0, [1]))
    return Case(folder, "raises", ["column ELEV", "-500..9000 m", "12500"], "sites.csv")


def prepared_soil_as_fractions(tmp):
    def edit(s):
        s["CLAY"], s["SAND"], s["SILT"] = [0.2, 0.3], [0.5, 0.4], [0.3, 0.3]
    folder = _prepared(tmp, sites_edit=edit)
    return Case(folder, "raises", ["CLAY + SAND + SILT", "fractions", "multiply by 100"],
                "sites.csv")


def prepared_inf_nee(tmp):
    folder = _prepared(tmp, daily_edit=_set("NEE_VUT_REF", -np.inf, [10]))
    return Case(folder, "qc", [], "daily.parquet", reason="not_finite", variable="NEE")


def prepared_monthly_cut(tmp):
    folder = _prepared(tmp)
    _cut(folder / "monthly_rs.csv", 8)
    return Case(folder, "problem", ["cut short", "not used"], "monthly_rs.csv")


def _edit_monthly(folder: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = folder / "monthly_rs.csv"
    edit(pd.read_csv(path, dtype=str)).to_csv(path, index=False)


def prepared_monthly_is_a_folder(tmp):
    """A folder named monthly_rs.csv was skipped without a word (LAI/EVI silently absent)."""
    folder = _prepared(tmp)
    (folder / "monthly_rs.csv").unlink()
    (folder / "monthly_rs.csv").mkdir()
    return Case(folder, "problem", ["is a folder, not a file", "not used"], "monthly_rs.csv")


def prepared_monthly_iso_months(tmp):
    """YYYY-MM instead of YYYYMM: every monthly row was dropped without a word."""
    folder = _prepared(tmp)
    _edit_monthly(folder, lambda m: m.assign(YEAR_MONTH=m["YEAR_MONTH"].str[:4] + "-" + m["YEAR_MONTH"].str[4:]))
    return Case(folder, "problem", ["6 YEAR_MONTH value(s)", "'2005-01'", "not used"], "monthly_rs.csv")


def prepared_monthly_duplicated_month(tmp):
    folder = _prepared(tmp)
    _edit_monthly(folder, lambda m: pd.concat([m, m.iloc[[0]].assign(LAI="9.5")]))
    return Case(folder, "problem", ["1 duplicated site-month", "XX-Aaa in 2005-01", "first row"],
                "monthly_rs.csv")


def prepared_monthly_lai_text(tmp):
    folder = _prepared(tmp)
    _edit_monthly(folder, lambda m: m.assign(LAI=["--"] + list(m["LAI"].iloc[1:])))
    return Case(folder, "problem", ["column LAI", "1 non-numeric", "'--'"], "monthly_rs.csv")


def prepared_monthly_no_site(tmp):
    folder = _prepared(tmp)
    _edit_monthly(folder, lambda m: m.assign(SITE_ID=[None] + list(m["SITE_ID"].iloc[1:])))
    return Case(folder, "problem", ["1 row(s) without a site id", "data row 1"], "monthly_rs.csv")


# ------------------------------------------------------------------ tidy CSV
def tidy_inf_gpp(tmp):
    f = _tidy(tmp, "inf.csv", edit=_set("GPP", np.inf, [5]))
    return Case(f, "qc", [], f.name, reason="not_finite", variable="GPP")


def tidy_minus_inf_ta(tmp):
    f = _tidy(tmp, "minf.csv", edit=_set("TA", -np.inf, [5, 6]))
    return Case(f, "qc", [], f.name, reason="not_finite", variable="TA")


def tidy_lat_inf(tmp):
    f = _tidy(tmp, "latinf.csv", edit=_set("LAT", np.inf, [61]))
    return Case(f, "raises", ["column LAT", "not finite", "data row 62", "XX-Bbb"], f.name)


def tidy_lat_999(tmp):
    f = _tidy(tmp, "lat999.csv", edit=_set("LAT", 999.0))
    return Case(f, "raises", ["column LAT: 120 value(s) outside -90..90", "data row 1"], f.name)


def tidy_lat_lon_swapped(tmp):
    def edit(d):
        d["LAT"], d["LON"] = 120.0, 45.0
    f = _tidy(tmp, "swapped.csv", edit=edit)
    return Case(f, "raises", ["column LAT", "swapped"], f.name)


def tidy_lon_out_of_range(tmp):
    f = _tidy(tmp, "lon.csv", edit=_set("LON", -200.0, [0]))
    return Case(f, "raises", ["column LON", "-180..360"], f.name)


def tidy_cut_last_line(tmp):
    f = _tidy(tmp, "cut.csv")
    _cut(f, 40)
    return Case(f, "problem", ["the last line (line 121) is cut short", "not used"], f.name)


def tidy_short_line_in_middle(tmp):
    f = _tidy(tmp, "short.csv")
    lines = f.read_text().splitlines()
    lines[20] = ",".join(lines[20].split(",")[:9])
    f.write_text("\n".join(lines) + "\n")
    return Case(f, "raises", ["line 21 has 9 fields", "header has 17", "damaged"], f.name)


def tidy_decimal_comma(tmp):
    f = _tidy(tmp, "comma.csv")
    lines = f.read_text().splitlines()
    parts = lines[4].split(",")
    parts[2] = "12,5"
    lines[4] = ",".join(parts)
    f.write_text("\n".join(lines) + "\n")
    return Case(f, "raises", ["line 5 has 18 fields", "separator"], f.name)


def tidy_kelvin(tmp):
    f = _tidy(tmp, "kelvin.csv", edit=lambda d: d.__setitem__("TA", d["TA"] + 273.15))
    return Case(f, "problem", ["TA values look like kelvin at 2 site(s)", "TA not used"], f.name)


def tidy_vpd_kpa(tmp):
    f = _tidy(tmp, "kpa.csv", n_days=400, edit=lambda d: d.__setitem__("VPD", d["VPD"] / 10))
    return Case(f, "problem", ["VPD values look like kPa", "multiply by 10"], f.name)


def tidy_sw_in_mj(tmp):
    f = _tidy(tmp, "mj.csv", n_days=400,
              edit=lambda d: d.__setitem__("SW_IN", d["SW_IN"] * 0.0864))
    return Case(f, "problem", ["SW_IN values look like MJ m-2 d-1", "11.574"], f.name)


def tidy_gpp_entirely_missing(tmp):
    f = _tidy(tmp, "gppmiss.csv", edit=_set("GPP", np.nan, slice(60, 120)))
    return Case(f, "problem", ["site XX-Bbb: GPP entirely missing (60 days)"], f.name)


def tidy_gpp_all_removed_by_qc(tmp):
    f = _tidy(tmp, "lowfrac.csv", edit=_set("QC_NEE_FRAC", 0.0, slice(60, 120)))
    return Case(f, "problem", ["site XX-Bbb: GPP entirely missing after quality control",
                               "low_measured_fraction 60"], f.name)


def tidy_sites_table_clay(tmp):
    f = _tidy(tmp, "nosoil.csv")
    st = tmp / "soil_sites.csv"
    pd.DataFrame({"SITE_ID": ["XX-Aaa", "XX-Bbb"], "CLAY": [20.0, 150.0]}).to_csv(st, index=False)
    return Case(f, "raises", ["column CLAY", "0..100 %", "data row 2", "XX-Bbb"], st.name,
                kwargs={"sites_table": st})


def dd_sites_table_row_without_site_id(tmp):
    """A row with LAT/LON but no SITE_ID was read as a site named 'nan'."""
    folder, _ = _dd_folder(tmp)
    st = tmp / "noid_sites.csv"
    pd.DataFrame({"SITE_ID": ["XX-Aaa", None], "LAT": [45.0, 46.0], "LON": [10.0, 11.0]}).to_csv(st, index=False)
    return Case(folder, "raises", ["1 row(s) without a site id", "'SITE_ID'", "data row 2"], st.name,
                kwargs={"sites_table": st})


def tidy_sites_table_cut(tmp):
    f = _tidy(tmp, "ok.csv")
    st = tmp / "cut_sites.csv"
    pd.DataFrame({"SITE_ID": ["XX-Aaa", "XX-Bbb"], "LAT": [45.0, 46.0],
                  "LON": [10.0, 11.0]}).to_csv(st, index=False)
    _cut(st, 8)
    return Case(f, "raises", ["cut short", "line 3"], st.name, kwargs={"sites_table": st})


# ------------------------------------------------------------------ tidy Parquet
def parquet_inf_er(tmp):
    f = _tidy(tmp, "inf.parquet", edit=_set("ER", np.inf, [2]), parquet=True)
    return Case(f, "qc", [], f.name, reason="not_finite", variable="ER")


def parquet_zero_aridity(tmp):
    def edit(d):
        d["ARIDITY_INDEX"] = 0.0
    f = _tidy(tmp, "ai.parquet", edit=edit, parquet=True)
    return Case(f, "raises", ["column ARIDITY_INDEX", "P / PET is positive"], f.name)


def parquet_fahrenheit(tmp):
    f = _tidy(tmp, "f.parquet", n_days=200, parquet=True,
              edit=lambda d: d.__setitem__("TMAX", d["TMAX"] * 1.8 + 32))
    return Case(f, "problem", ["TMAX values look like degrees Fahrenheit", "(F - 32) / 1.8"],
                f.name)


CASES = [
    dd_cut_last_line, dd_short_line_in_middle, dd_only_file_extra_fields, dd_inf_gpp,
    dd_kelvin_ta, dd_gpp_entirely_missing, dd_sites_table_lat_999, dd_qc_fraction_in_percent,
    dd_qc_fraction_text,
    prepared_negative_aridity, prepared_infinite_aridity, prepared_lon_text,
    prepared_elevation_in_feet_too_high, prepared_soil_as_fractions, prepared_inf_nee,
    prepared_monthly_cut, prepared_monthly_iso_months, prepared_monthly_duplicated_month,
    prepared_monthly_lai_text, prepared_monthly_no_site, prepared_monthly_is_a_folder,
    tidy_inf_gpp, tidy_minus_inf_ta, tidy_lat_inf, tidy_lat_999, tidy_lat_lon_swapped,
    tidy_lon_out_of_range, tidy_cut_last_line, tidy_short_line_in_middle, tidy_decimal_comma,
    tidy_kelvin, tidy_vpd_kpa, tidy_sw_in_mj, tidy_gpp_entirely_missing,
    tidy_gpp_all_removed_by_qc, tidy_sites_table_clay, tidy_sites_table_cut,
    dd_sites_table_row_without_site_id,
    parquet_inf_er, parquet_zero_aridity, parquet_fahrenheit,
]


def test_catalogue_has_enough_distinct_cases():
    assert len(CASES) >= 20
    assert len({c.__name__ for c in CASES}) == len(CASES)


@pytest.mark.parametrize("make_case", CASES, ids=[f"loader-{c.__name__}" for c in CASES])
def test_loader_bad_input(make_case, tmp_path):
    case = make_case(tmp_path)
    if case.kind == "raises":
        with pytest.raises(DataError) as exc:
            load_dataset(case.src, **case.kwargs)
        msg = str(exc.value)
        assert "\n" not in msg, msg
        assert case.file in msg, msg
        for w in case.words:
            assert w in msg, (w, msg)
        return
    ds = load_dataset(case.src, **case.kwargs)
    values = ds.daily.select_dtypes("number").to_numpy()
    assert not np.isinf(values).any(), "an infinite value got through"
    if case.kind == "problem":
        hits = [p for p in ds.problems if case.file in p and all(w in p for w in case.words)]
        assert hits, ds.problems
        assert all("\n" not in p for p in ds.problems)
    else:
        q = ds.qc[(ds.qc["reason"] == case.reason) & (ds.qc["variable"] == case.variable)]
        assert int(q["n_removed"].sum()) >= 1, ds.qc
        assert ds.summary()["qc"]["by_reason"][case.reason] == int(q["n_removed"].sum())


CLI_CASES = [dd_only_file_extra_fields, prepared_negative_aridity, tidy_lat_999,
             tidy_short_line_in_middle, tidy_kelvin, tidy_cut_last_line, tidy_inf_gpp]


@pytest.mark.parametrize("make_case", CLI_CASES, ids=[f"cli-{c.__name__}" for c in CLI_CASES])
def test_loader_bad_input_cli(make_case, tmp_path):
    case = make_case(tmp_path)
    args = [sys.executable, "-m", "fluxcore", "data", "--data", str(case.src)]
    if "sites_table" in case.kwargs:
        args += ["--sites-table", str(case.kwargs["sites_table"])]
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    if case.kind == "raises":
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.startswith("fluxcore data: error:")
        assert case.file in r.stderr and all(w in r.stderr for w in case.words), r.stderr
    elif case.kind == "problem":
        assert r.returncode == 0, r.stderr
        assert all(w in r.stdout for w in case.words), r.stdout
    else:
        assert r.returncode == 0, r.stderr
        assert f"{case.reason}: " in r.stdout, r.stdout
