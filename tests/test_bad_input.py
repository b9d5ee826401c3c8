"""Bad input: one clear DataError naming the file and the problem; CLI exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcore.errors import ConfigError, DataError
from fluxcore.sources import load_dataset, scale_problem

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fluxcore", "data", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------- bad files
def _good(make_daily, n_days=60, sites=("XX-Aaa", "XX-Bbb")):
    return make_daily(n_days=n_days, sites=sites)


def bad_missing_date(tmp_path, make_daily):
    f = tmp_path / "nodate.csv"
    _good(make_daily).drop(columns=["DATE"]).to_csv(f, index=False)
    return f, "date column"


def bad_missing_site(tmp_path, make_daily):
    f = tmp_path / "nosite.csv"
    _good(make_daily).drop(columns=["SITE_ID"]).to_csv(f, index=False)
    return f, "site column"


def bad_no_target(tmp_path, make_daily):
    f = tmp_path / "notarget.csv"
    _good(make_daily).drop(columns=["GPP", "ER", "NEE"]).to_csv(f, index=False)
    return f, "target"


def bad_dates(tmp_path, make_daily):
    f = tmp_path / "baddates.csv"
    d = _good(make_daily)
    d["DATE"] = d["DATE"].dt.strftime("%Y-%m-%d")
    d.loc[7, "DATE"] = "2005-13-45"
    d.to_csv(f, index=False)
    return f, "cannot be parsed"


def dup_dates(tmp_path, make_daily):
    f = tmp_path / "dup.csv"
    d = _good(make_daily)
    pd.concat([d, d.iloc[[3]]]).to_csv(f, index=False)
    return f, "duplicated"


def all_missing_targets(tmp_path, make_daily):
    f = tmp_path / "empty_targets.csv"
    d = _good(make_daily)
    d[["GPP", "ER", "NEE"]] = np.nan
    d.to_csv(f, index=False)
    return f, "missing"


def gco2_scale(tmp_path, make_daily):
    f = tmp_path / "gco2.csv"
    d = _good(make_daily, n_days=200, sites=("XX-Aaa",))
    d["GPP"] = d["GPP"] * 3.664 * 3 + 20  # clearly above any gC m-2 d-1 value
    d.to_csv(f, index=False)
    return f, "g CO2"


def kg_scale(tmp_path, make_daily):
    f = tmp_path / "kg.csv"
    d = _good(make_daily, n_days=200, sites=("XX-Aaa",))
    d[["GPP", "ER", "NEE"]] = d[["GPP", "ER", "NEE"]] / 1000.0
    d.to_csv(f, index=False)
    return f, "kg C"


def garbage_parquet(tmp_path, make_daily):
    f = tmp_path / "broken.parquet"
    f.write_bytes(b"this is not parquet at all")
    return f, "cannot be read"


def empty_csv(tmp_path, make_daily):
    f = tmp_path / "empty.csv"
    f.write_text("")
    return f, "empty"


def empty_folder(tmp_path, make_daily):
    f = tmp_path / "nothing"
    f.mkdir()
    return f, "empty"


def unknown_folder(tmp_path, make_daily):
    f = tmp_path / "misc"
    f.mkdir()
    (f / "notes.txt").write_text("x")
    return f, "no recognised data layout"


def missing_path(tmp_path, make_daily):
    return tmp_path / "does_not_exist.csv", "does not exist"


CASES = [bad_missing_date, bad_missing_site, bad_no_target, bad_dates, dup_dates,
         all_missing_targets, gco2_scale, kg_scale, garbage_parquet, empty_csv, empty_folder,
         unknown_folder, missing_path]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_api_raises_one_clear_data_error(case, tmp_path, make_daily):
    path, words = case(tmp_path, make_daily)
    with pytest.raises(DataError) as exc:
        load_dataset(path)
    msg = str(exc.value)
    assert path.name in msg, msg
    assert words in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("case", [bad_missing_date, dup_dates, gco2_scale, empty_folder, missing_path],
                         ids=lambda c: c.__name__)
def test_cli_exits_2_without_traceback(case, tmp_path, make_daily):
    path, words = case(tmp_path, make_daily)
    r = run_cli("--data", str(path))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert path.name in r.stderr and words in r.stderr
    assert r.stderr.startswith("fluxcore data: error:")


def test_cli_bad_options_exit_2(tmp_path, make_daily):
    f = tmp_path / "ok.csv"
    _good(make_daily).to_csv(f, index=False)
    r = run_cli("--data", str(f), "--columns", "nonsense")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "column map" in r.stderr
    with pytest.raises(ConfigError):
        load_dataset(f, qc={"min_measured_frac": 2.0})


def test_column_map_names_missing_column(tmp_path, make_daily):
    f = tmp_path / "ok.csv"
    _good(make_daily).to_csv(f, index=False)
    with pytest.raises(DataError, match="'nope' named in the column map"):
        load_dataset(f, column_map={"nope": "TA"})


# ------------------------------------------------- partial failures load
def test_tidy_bad_site_skipped_good_sites_load(tmp_path, make_daily):
    d = _good(make_daily, n_days=100, sites=("XX-Aaa", "XX-Bbb", "XX-Ccc"))
    d.loc[d.SITE_ID == "XX-Bbb", "GPP"] *= 40.0  # wrong unit at one site
    d.loc[d.SITE_ID == "XX-Bbb", "GPP"] += 40.0
    d.loc[d.SITE_ID == "XX-Ccc", ["GPP", "ER", "NEE"]] = np.nan  # no target at all
    f = tmp_path / "mixed.csv"
    d.to_csv(f, index=False)
    ds = load_dataset(f)
    assert ds.site_ids == ["XX-Aaa"]
    assert list(ds.sites.index) == ["XX-Aaa"]
    assert len(ds.problems) == 2
    assert any("XX-Bbb" in p and "mixed.csv" in p and "too large" in p for p in ds.problems)
    assert any("XX-Ccc" in p and "no values" in p for p in ds.problems)


def test_official_folder_good_sites_load_bad_files_listed(tmp_path, make_dd):
    folder = tmp_path / "dd"
    folder.mkdir()
    make_dd(folder, "XX-Aaa")
    bad1 = make_dd(folder, "XX-Bbb")
    df = pd.read_csv(bad1).drop(columns=["TIMESTAMP"])
    df.to_csv(bad1, index=False)
    bad2 = make_dd(folder, "XX-Ccc")
    df = pd.read_csv(bad2)
    df[["GPP_NT_VUT_REF", "RECO_NT_VUT_REF", "NEE_VUT_REF"]] = -9999
    df.to_csv(bad2, index=False)
    bad3 = make_dd(folder, "XX-Ddd")
    df = pd.read_csv(bad3)
    df.loc[10, "TIMESTAMP"] = df.loc[9, "TIMESTAMP"]
    df.to_csv(bad3, index=False)
    ds = load_dataset(folder)
    assert ds.site_ids == ["XX-Aaa"]
    assert len(ds.problems) == 3
    joined = " | ".join(ds.problems)
    assert f"{bad1.name}: missing required column TIMESTAMP" in joined
    assert f"{bad2.name}: all values of the targets" in joined
    assert f"{bad3.name}: 1 duplicated site-day" in joined
    r = run_cli("--data", str(folder))
    assert r.returncode == 0 and r.stdout.count("problem:") == 3


def test_official_folder_all_bad_raises(tmp_path, make_dd):
    folder = tmp_path / "dd"
    folder.mkdir()
    bad = make_dd(folder, "XX-Bbb")
    pd.read_csv(bad).drop(columns=["TIMESTAMP"]).to_csv(bad, index=False)
    with pytest.raises(DataError, match="no daily file could be loaded") as exc:
        load_dataset(folder)
    assert bad.name in str(exc.value) and str(folder) in str(exc.value)


def test_prepared_missing_columns(tmp_path):
    folder = tmp_path / "prep"
    folder.mkdir()
    pd.DataFrame({"SITE_ID": ["A"], "TA_F": [1.0]}).to_parquet(folder / "daily.parquet")
    pd.DataFrame({"SITE_ID": ["A"]}).to_csv(folder / "sites.csv", index=False)
    with pytest.raises(DataError, match="daily.parquet: missing required column"):
        load_dataset(folder)


# ----------------------------------------------------------- scale rule
def test_scale_problem_thresholds():
    rng = np.random.default_rng(0)
    gpp = rng.gamma(2.0, 2.5, 1000)  # plausible gC m-2 d-1
    assert scale_problem(gpp, "GPP") is None
    assert "g CO2" in scale_problem(gpp * 3.664 * 3, "GPP")
    assert "mg C" in scale_problem(gpp * 1000, "GPP")
    assert "kg C" in scale_problem(gpp / 1000, "GPP")
    assert scale_problem(gpp[:10] * 1000, "GPP") is None  # too few values to judge
    assert scale_problem(-gpp, "NEE") is None


def test_non_numeric_values_are_reported_not_silent(tmp_path, make_daily):
    d = _good(make_daily, n_days=40).astype({"TA": object})
    d.loc[3, "TA"] = "12,5"
    d.loc[4, "TA"] = "n/a"
    f = tmp_path / "text.csv"
    d.to_csv(f, index=False)
    ds = load_dataset(f)
    assert np.isnan(ds.daily.loc[3, "TA"]) and np.isnan(ds.daily.loc[4, "TA"])
    # "n/a" is a standard missing marker (read as NaN by pandas); "12,5" is reported
    assert any("text.csv: column TA: 1 non-numeric value(s)" in p and "'12,5'" in p
               for p in ds.problems)


def test_semicolon_csv_is_read(tmp_path, make_daily):
    f = tmp_path / "semi.csv"
    _good(make_daily, n_days=20).to_csv(f, index=False, sep=";")
    assert load_dataset(f).n_sites == 2


def test_two_columns_for_one_variable_are_reported_not_silent(tmp_path, make_daily):
    """A repeated header name (pandas reads the repeat as 'GPP.1') or a canonical and a FLUXNET
    name of one variable: one column was used and the other dropped without a word."""
    d = _good(make_daily, n_days=40)
    gpp = d.columns.get_loc("GPP")
    f = tmp_path / "twice.csv"
    d.insert(gpp + 1, "GPP_DUP", d["GPP"] * 2)
    d.rename(columns={"GPP_DUP": "GPP"}).to_csv(f, index=False)
    ds = load_dataset(f)
    assert any("twice.csv: column 'GPP' appears more than once" in p and "'GPP.1'" in p
               for p in ds.problems), ds.problems

    g = tmp_path / "alias.csv"
    _good(make_daily, n_days=40).assign(TA_F=lambda x: x["TA"] + 273.15).to_csv(g, index=False)
    ds = load_dataset(g)
    assert any("alias.csv: columns 'TA' and 'TA_F' both give TA; 'TA' is used" in p
               for p in ds.problems), ds.problems
