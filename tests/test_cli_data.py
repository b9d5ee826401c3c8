"""``fluxcore data``: text and JSON summaries, options, exit codes (in-process and subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fluxcore.cli import main

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"n_sites", "n_site_days", "zones", "variables", "qc"}


def data_json(capsys, *args: str) -> dict:
    assert main(["data", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def tidy_file(tmp_path, make_daily):
    f = tmp_path / "tidy.csv"
    make_daily(n_days=90).to_csv(f, index=False)
    return f


def test_json_summary_of_tidy_file(tidy_file, capsys):
    s = data_json(capsys, "--data", str(tidy_file))
    assert KEYS <= set(s)
    assert s["n_sites"] == 3 and s["n_site_days"] == 270
    assert set(s["zones"]) >= {"arid", "semi-arid", "semi-humid", "humid"}
    assert sum(s["zones"].values()) == 3
    assert {"TA", "P", "GPP", "ER", "NEE"} <= set(s["variables"])
    assert s["qc"]["by_reason"]["low_measured_fraction"] > 0  # QC_NEE_FRAC uniform in [0, 1]


def test_qc_options(tidy_file, capsys):
    default = data_json(capsys, "--data", str(tidy_file))["qc"]["n_removed"]
    off = data_json(capsys, "--data", str(tidy_file), "--no-qc")["qc"]["n_removed"]
    strict = data_json(capsys, "--data", str(tidy_file), "--min-measured-frac", "0.5")["qc"]["n_removed"]
    assert off == 0 < default < strict


def test_text_output_and_qc_report(tidy_file, capsys):
    assert main(["data", "--data", str(tidy_file), "--qc-report"]) == 0
    out = capsys.readouterr().out
    assert "sites:      3" in out and "site-days:  270" in out
    assert "zones:      arid" in out
    assert "QC removed:" in out and "low_measured_fraction" in out
    assert "n_removed" in out  # the per-site report table


def test_columns_option_with_yaml(tmp_path, make_daily, capsys):
    d = make_daily(n_days=30, sites=("XX-Aaa",))
    f = tmp_path / "odd.csv"
    d.rename(columns={"SITE_ID": "tower", "GPP": "gpp_measured", "TA": "air_t"}).to_csv(f, index=False)
    cmap = tmp_path / "cols.yaml"
    cmap.write_text("tower: SITE_ID\ngpp_measured: GPP\nair_t: TA\n")
    s = data_json(capsys, "--data", str(f), "--columns", str(cmap))
    assert s["n_sites"] == 1 and "GPP" in s["variables"] and "TA" in s["variables"]
    s2 = data_json(capsys, "--data", str(f), "--columns", "tower=SITE_ID,gpp_measured=GPP")
    assert "GPP" in s2["variables"] and "TA" not in s2["variables"]


def test_subprocess_ok_and_missing_path():
    ok = subprocess.run([sys.executable, "-m", "fluxcore", "data", "--data", "nowhere/at/all"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 2 and "Traceback" not in ok.stderr
    assert "nowhere/at/all: does not exist" in ok.stderr


def test_demo_summary(capsys):
    pytest.importorskip("fluxcore.demo")
    s = data_json(capsys, "--data", "demo")
    assert s["zones"] == {"arid": 15, "semi-arid": 44, "semi-humid": 20, "humid": 111}
    assert s["synthetic"] is True


@pytest.mark.realdata
def test_real_prepared_folder_json(real_data):
    r = subprocess.run([sys.executable, "-m", "fluxcore", "data", "--data",
                        "../shared/data/fluxnet2015", "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["n_sites"] == 204 and s["n_site_days"] == 541305
    assert s["zones"] == {"arid": 12, "semi-arid": 38, "semi-humid": 16, "humid": 138}
    assert s["variables"] == ["TA", "TMIN", "TMAX", "VPD", "SW_IN", "LAI", "ELEV", "EVI", "P_MONTHLY",
                              "WS_MONTHLY", "GPP", "ER", "NEE"]
    assert set(s["qc"]["by_reason"]) == {"out_of_range", "gpp_below_min", "low_measured_fraction"}


@pytest.mark.realdata
def test_real_official_folder_text(real_data, capsys):
    assert main(["data", "--data", str(real_data / "official_dd")]) == 0
    out = capsys.readouterr().out
    assert "sites:      6" in out
    assert "zones:      arid 1, semi-arid 2, semi-humid 1, humid 2" in out
    assert "absent:     TMIN, TMAX, LAI" in out
