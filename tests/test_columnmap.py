"""Column suggestions for uploads and the prepared upload file (fluxcore.columnmap)."""

from __future__ import annotations

import pandas as pd
import pytest

from fluxcore.columnmap import (
    mapping_from_choices,
    plan_columns,
    prepare_upload,
    read_columns,
    suggest_column_map,
)
from fluxcore.errors import ConfigError, DataError
from fluxcore.sources import load_dataset
from tests.conftest import synthetic_daily


def test_suggestions_by_alias_synonym_and_similarity():
    cols = ["station", "day", "temp_c", "rain_mm", "gpp_gC", "Reco", "t_min", "TMAX", "latitude",
            "long", "wind", "Vapour Pressure Deficit", "shortwave", "notes", "aridityy"]
    s = suggest_column_map(cols)
    assert s == {"SITE_ID": "station", "DATE": "day", "GPP": "gpp_gC", "ER": "Reco", "TA": "temp_c",
                 "TMIN": "t_min", "TMAX": "TMAX", "P": "rain_mm", "WS": "wind",
                 "VPD": "Vapour Pressure Deficit", "SW_IN": "shortwave", "LAT": "latitude",
                 "LON": "long", "ARIDITY_INDEX": "aridityy"}
    # FLUXNET names go where the loader puts them, each column once
    s = suggest_column_map(["TIMESTAMP", "SITE", "TA_F", "GPP_NT_VUT_REF", "RECO_NT_VUT_REF", "temperature"])
    assert s["TA"] == "TA_F" and s["ER"] == "RECO_NT_VUT_REF" and s["DATE"] == "TIMESTAMP"
    assert "temperature" not in s.values()
    assert suggest_column_map(["foo", "bar"]) == {}


def test_plan_says_when_mapping_is_needed():
    assert plan_columns(["SITE_ID", "DATE", "TA", "GPP"]).automatic
    p = plan_columns(["site", "date", "ta_f", "gpp_nt_vut_ref", "comment"])
    assert p.automatic and p.unused == ["comment"]
    p = plan_columns(["tower", "day", "air_temp", "gpp"])
    assert not p.automatic and p.missing == [] and p.suggested["SITE_ID"] == "tower"
    p = plan_columns(["a", "b", "GPP"])
    assert not p.automatic and p.missing == ["SITE_ID", "DATE"] and p.problem is None
    p = plan_columns(["SITE_ID", "GPP"])  # no mapping can help
    assert not p.automatic and "the table has 2 column(s) (SITE_ID, GPP)" in p.problem


def test_mapping_from_choices_checks_in_plain_words():
    assert mapping_from_choices({"SITE_ID": "tower", "DATE": "day", "GPP": "g", "TA": None}) == \
        {"tower": "SITE_ID", "day": "DATE", "g": "GPP"}
    with pytest.raises(ConfigError, match="column 'g' is chosen for both GPP and ER"):
        mapping_from_choices({"SITE_ID": "t", "DATE": "d", "GPP": "g", "ER": "g"})
    with pytest.raises(ConfigError, match=r"choose the date column \(DATE\) and at least one target") as e:
        mapping_from_choices({"SITE_ID": "t", "TA": "x"})
    assert "--columns" not in str(e.value)
    with pytest.raises(ConfigError, match="not one of fluxcore's column names"):
        mapping_from_choices({"SITE_ID": "t", "DATE": "d", "GPP": "g", "FOO": "x"})


def _user_table(tmp_path):
    d = synthetic_daily(sites=("XX-Aaa", "XX-Bbb"), n_days=120)
    raw = pd.DataFrame({"tower": d["SITE_ID"], "day": d["DATE"].dt.strftime("%Y-%m-%d"),
                        "air_temp": d["TA"], "gpp_gC": d["GPP"], "TA": 999.0})
    path = tmp_path / "mine.csv"
    raw.to_csv(path, index=False)
    return d, path


def test_prepare_upload_applies_map_and_merges_catalogue(tmp_path):
    d, path = _user_table(tmp_path)
    cat = tmp_path / "towers.csv"
    cat.write_text("site,latitude,LON,IGBP,ARIDITY_INDEX,ELEV\nXX-Aaa,45.5,7.25,GRA,0.15,300\n"
                   "XX-Zzz,1,2,ENF,1.2,10\n")
    assert read_columns(path) == ["tower", "day", "air_temp", "gpp_gC", "TA"]
    cmap = mapping_from_choices({"SITE_ID": "tower", "DATE": "day", "TA": "air_temp", "GPP": "gpp_gC"})
    out, notes = prepare_upload(path, column_map=cmap, sites=cat, data_name="mine.csv", sites_name="towers.csv")
    assert out.parent.parent == tmp_path and out.stem == "mine"
    ds = load_dataset(out)
    assert ds.name == "mine" and set(ds.site_ids) == {"XX-Aaa", "XX-Bbb"}
    # the mapped column won over the file's own "TA" (999 everywhere)
    assert ds.daily["TA"].max() < 60
    assert ds.daily["GPP"].notna().sum() > 0
    a = ds.sites.loc["XX-Aaa"]
    assert (a["LAT"], a["LON"], a["IGBP"], a["ELEV"]) == (45.5, 7.25, "GRA", 300.0)
    assert ds.zone_of("XX-Aaa") == "arid" and pd.isna(ds.sites.loc["XX-Bbb", "LAT"])
    assert any("1 site(s) of mine.csv have no row in towers.csv (e.g. XX-Bbb)" in n for n in notes)
    assert any("XX-Zzz" in n and "ignored" in n for n in notes)
    # same result as the loader's own arguments
    ref = load_dataset(path, column_map=cmap, sites_table=cat)
    assert ref.sites.loc["XX-Aaa", "LAT"] == 45.5 and ref.n_site_days == ds.n_site_days
    # another choice, another file
    out2, _ = prepare_upload(path, column_map=cmap, data_name="mine.csv")
    assert out2 != out and pd.isna(load_dataset(out2).sites.loc["XX-Aaa", "LAT"])


def test_prepare_upload_errors_name_the_users_files(tmp_path):
    _, path = _user_table(tmp_path)
    bad_cat = tmp_path / "x1.csv"
    bad_cat.write_text("name,lat\nA,1\n")
    cmap = {"tower": "SITE_ID", "day": "DATE", "gpp_gC": "GPP"}
    with pytest.raises(DataError, match="^towers.csv: site table has no site column"):
        prepare_upload(path, column_map=cmap, sites=bad_cat, data_name="mine.csv", sites_name="towers.csv")
    with pytest.raises(DataError, match="^mine.csv: has no column 'nope'"):
        prepare_upload(path, column_map={"nope": "GPP"}, data_name="mine.csv")
    good_cat = tmp_path / "c.csv"
    good_cat.write_text("SITE_ID,LAT,LON\nXX-Aaa,1,2\n")
    with pytest.raises(DataError, match="^mine.csv: has no site column to join the site catalogue on"):
        prepare_upload(path, column_map={}, sites=good_cat, data_name="mine.csv")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="^their.parquet: cannot be read"):
        read_columns(junk, "their.parquet")


def test_column_map_file_that_is_not_text_is_a_config_error(tmp_path):
    """Undecodable bytes in a column map file were a UnicodeDecodeError traceback."""
    from fluxcore.sources import parse_column_map

    f = tmp_path / "map.yaml"
    f.write_bytes(b"\xff\xfe\x00 GPP: x")
    with pytest.raises(ConfigError, match=r"column map file .*map\.yaml cannot be parsed"):
        parse_column_map(str(f))


def test_column_map_text_mapping_one_column_twice_is_a_config_error():
    """'GPP=GPP,GPP=ER' silently kept the last entry: the file's GPP was loaded as ER."""
    from fluxcore.sources import parse_column_map

    with pytest.raises(ConfigError, match=r"column 'GPP' is mapped twice \(GPP and ER\)"):
        parse_column_map("GPP=GPP,GPP=ER")
    assert parse_column_map("a=TA, a=TA") == {"a": "TA"}  # the same entry twice is harmless
