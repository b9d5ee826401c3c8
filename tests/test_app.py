"""The Streamlit pages under ``streamlit.testing.v1.AppTest`` on the demo world.

streamlit-folium components return nothing under AppTest: the map-selection logic is tested
in tests/test_maps.py; here the pages must render, react to their widgets and run a small
leave-one-site-out job end to end (slow).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


@pytest.fixture()
def runs_dir(tmp_path, monkeypatch):
    d = tmp_path / "runs"
    d.mkdir()
    monkeypatch.setenv("FLUXCORE_RUNS_DIR", str(d))
    monkeypatch.delenv("FLUXCORE_DATA", raising=False)
    return d


@pytest.fixture(scope="module")
def demo():
    from fluxcore.sources import load_dataset

    return load_dataset("demo")


def _app(page: str | None = None, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
    parts += [i.value for i in at.info] + [e.value for e in at.error] + [s.value for s in at.success]
    parts += [t.value for t in at.title] + [h.value for h in at.subheader]
    return "\n".join(str(p) for p in parts)


def _until(at, cond, timeout=60.0, step=0.5):
    t0 = time.time()
    while not cond(at):
        if time.time() - t0 > timeout:
            raise AssertionError("condition not met in time:\n" + _texts(at))
        time.sleep(step)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def test_overview_shows_demo_counts_and_synthetic_label(runs_dir, demo):
    at = _app()
    _until(at, lambda a: len(a.metric) >= 4)
    values = {m.label: m.value for m in at.metric}
    assert values["Sites"] == str(demo.n_sites)
    assert values["Site-days"] == f"{demo.n_site_days:,}"
    assert "SYNTHETIC" in _texts(at)


def test_sites_page_filters_and_selection(runs_dir, demo):
    at = _app("pages/sites.py")
    n_all = demo.n_sites
    assert at.button(key="sel_shown").label == f"Select shown ({n_all})"
    at.multiselect(key="f_zones").set_value(["arid"]).run()
    n_arid = demo.zone_counts()["arid"]
    assert at.button(key="sel_shown").label == f"Select shown ({n_arid})"
    at.button(key="sel_shown").click().run()
    assert not at.exception
    ms = at.multiselect(key="site_ms")
    assert len(ms.value) == n_arid
    assert set(ms.value) == {s for s in demo.site_ids if demo.zone_of(s) == "arid"}
    assert len(at.session_state["selected_sites"]) == n_arid
    # the multiselect edits the shared selection; the selection persists on other pages
    ms.set_value(ms.value[:2]).run()
    assert at.session_state["selected_sites"] == sorted(ms.value[:2])
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.radio(key="scope").value == "selected"
    assert "2 test site(s)" in _texts(at)
    at.switch_page("pages/sites.py").run()
    at.button(key="sel_clear").click().run()
    assert at.session_state["selected_sites"] == []


def test_train_page_validates_choices(runs_dir, demo):
    at = _app("pages/train.py")
    opts = {o.split(":")[0].split(" ")[0] for o in at.pills(key="learners").options}
    assert {"mlr", "rf", "svm", "lstm"} <= opts
    at.radio(key="scope").set_value("zones").run()
    at.multiselect(key="train_zones").set_value(["arid"]).run()
    n_arid = demo.zone_counts()["arid"]
    assert f"{n_arid} test site(s) × 2 learner(s) = **{2 * n_arid} folds**" in _texts(at)
    at.number_input(key="hp_rf_n_estimators").set_value(0).run()  # the widget allows 0, the forest not
    assert any("n_estimators must be an integer >= 1, got 0" in w.value for w in at.warning)
    assert at.button(key="start").disabled
    at.number_input(key="hp_rf_n_estimators").set_value(20).run()
    assert not any("n_estimators" in w.value for w in at.warning)
    at.pills(key="learners").set_value([]).run()
    assert "Choose at least one learner." in _texts(at)
    assert at.button(key="start").disabled


def test_train_page_shows_every_chosen_learner(runs_dir, demo):
    """Four or more learners stay visible as chosen (a multiselect hid them behind "+N")."""
    at = _app("pages/train.py")
    box = at.pills(key="learners")
    assert box.value == ["mlr", "rf"]
    for name in ("svm", "lstm"):  # one click each, as a user would
        at.pills(key="learners").select(name).run()
    assert not at.exception, [e.value for e in at.exception]
    box = at.pills(key="learners")
    four = ["mlr", "rf", "svm", "lstm"]
    assert box.value == four and at.session_state["learners"] == four
    # every option is shown, the four shown as chosen, and named in words below the pills
    assert all(any(o.startswith(f"{n}:") for o in box.options) for n in four + ["tamrl", "mlp"])
    assert [box.options[i].split(":")[0] for i in box.indices] == four
    # the fuzzy variants have a box of their own and join the chosen learners
    assert all("(variant)" not in o for o in box.options)
    at.multiselect(key="learner_variants").set_value(["rf_fuzzy"]).run()
    assert "5 learner(s)" in _texts(at)
    at.multiselect(key="learner_variants").set_value([]).run()
    chosen = next(c.value for c in at.caption if c.value.startswith("Chosen ("))
    assert chosen.startswith("Chosen (4):") and all(f"**{n}**" in chosen for n in four)
    assert "4 learner(s)" in _texts(at)
    at.pills(key="learners").unselect("rf").run()
    assert at.pills(key="learners").value == ["mlr", "svm", "lstm"]
    assert "3 learner(s)" in _texts(at)


def test_results_page_labels_a_few_shot_learner(runs_dir, demo):
    from tests.factories_dashboard import write_fake_run

    sites = [s for s in demo.site_ids if demo.zone_of(s) == "humid"][:3]
    write_fake_run(runs_dir, demo, sites, learners=("mlr", "tamrl"), params={"tamrl": {"context_months": 2}})
    at = _app("pages/results.py")
    assert not at.exception, [e.value for e in at.exception]
    info = [i.value for i in at.info if "Few-shot evaluation" in i.value]
    assert info and "**tamrl** 2-shot" in info[0] and "mlr" not in info[0]


def test_results_and_heterogeneity_pages_on_a_stored_run(runs_dir, demo):
    from tests.factories_dashboard import write_fake_run

    arid = [s for s in demo.site_ids if demo.zone_of(s) == "arid"][:3]
    humid = [s for s in demo.site_ids if demo.zone_of(s) == "humid"][:3]
    write_fake_run(runs_dir, demo, arid + humid)
    at = _app("pages/results.py")
    assert not any("Few-shot evaluation" in i.value for i in at.info)  # every learner zero-shot
    assert len(at.get("plotly_chart")) >= 2  # one scatter per learner (mlr, rf)
    assert at.selectbox(key="res_target").value == "GPP"
    assert {"R2", "r2", "RMSE", "n"} <= set(at.dataframe[0].value.columns)  # per-site scores
    at.button_group(key="res_view").set_value("Table 3 (RMSE by zone)").run()
    t3 = [d for d in at.dataframe if "zone" in str(d.value.index.name)]
    assert t3 and {"arid", "humid", "all"} <= set(t3[0].value.index)
    n_charts = len(at.get("plotly_chart"))
    at.radio(key="res_color").set_value("learner").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == n_charts - 1  # one combined scatter instead of two
    at.multiselect(key="res_learners").set_value([]).run()
    assert "Choose at least one learner." in _texts(at)

    at.switch_page("pages/heterogeneity.py").run()
    assert not at.exception, [e.value for e in at.exception]
    tables = [d.value for d in at.dataframe if "Spearman" in d.value.columns]
    assert tables and set(tables[0]["learner"]) == {"mlr", "rf"}
    assert not tables[0].isna().any().any() and "None" not in tables[0].to_string()  # words, no NaN
    assert any("paper" in i.value for i in at.info)  # the relation compared with the paper's
    skill_maps = [c for c in at.get("plotly_chart") if "predicted R" in c.proto.spec]
    assert skill_maps  # the fixed-scale plotly skill map
    def fig_title(a):
        import json

        spec = json.loads(a.get("plotly_chart")[0].proto.spec)
        return spec["layout"]["title"]["text"]

    assert "D_mean" in fig_title(at)
    at.selectbox(key="het_distance").set_value("D_centroid").run()
    assert not at.exception
    assert "D_centroid" in fig_title(at)


def test_pages_without_runs_explain_what_to_do(runs_dir):
    at = _app("pages/results.py")
    assert "No finished run" in _texts(at)
    at.switch_page("pages/heterogeneity.py").run()
    assert "No finished run" in _texts(at)


@pytest.fixture()
def data_root(tmp_path, monkeypatch):
    """A data root of the test's own (FLUXCORE_DATA_ROOTS) and an upload folder."""
    root = tmp_path / "lesson_data"
    root.mkdir()
    monkeypatch.setenv("FLUXCORE_DATA_ROOTS", str(root))
    monkeypatch.setenv("FLUXCORE_UPLOADS_DIR", str(tmp_path / "uploads"))
    return root


def _folder_mode(at):
    at.radio(key="data_kind").set_value("folder").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_data_page_shows_clear_error_for_bad_input(runs_dir, data_root):
    at = _folder_mode(_app("pages/data.py"))
    assert "Quality-control report" in "\n".join(e.label for e in at.expander)
    at.text_input(key="folder").set_value("lesson_data/nope").run()
    at.button(key="load_folder").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == ["This data cannot be used. lesson_data/nope: does not exist"]
    (data_root / "bad.csv").write_text("foo,bar\n1,2\n")
    at.text_input(key="folder").set_value("bad.csv").run()
    at.button(key="load_folder").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("This data cannot be used. lesson_data/bad.csv: ")
    assert "Traceback" not in errors[0] and str(data_root) not in errors[0] and "--columns" not in errors[0]
    # the demo world is still in use
    assert at.session_state["data_src"] == "demo"


def test_data_page_refuses_paths_outside_the_data_roots(runs_dir, data_root, tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "grades.csv").write_text("SITE_ID,DATE,GPP\nA,2020-01-01,1\n")
    (data_root / "escape").symlink_to(outside)
    (data_root / "ok.csv").write_text("SITE_ID,DATE,GPP\nA,2020-01-01,1\n")
    at = _folder_mode(_app("pages/data.py"))
    for text in (str(outside), "/etc", "../private", "escape/grades.csv"):
        at.text_input(key="folder").set_value(text).run()
        at.button(key="load_folder").click().run()
        assert not at.exception
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "is not below a data folder of this server" in errors[0], errors
        assert str(tmp_path) not in errors[0] and "/etc" not in errors[0]
        assert at.session_state["data_src"] == "demo"
    # only what lies below the roots is offered (the link out of the root is not followed)
    offered = at.selectbox(key="folder_pick").options
    assert offered and all(o.startswith(("lesson_data/", "shared/data", "data/")) for o in offered)
    assert not [o for o in offered if "grades" in o or "escape" in o]


def test_data_page_loads_a_folder_under_a_root(runs_dir, data_root):
    from tests.conftest import write_official_dd

    towers = data_root / "towers"
    towers.mkdir()
    for k, site in enumerate(("XX-Aaa", "XX-Bbb")):
        write_official_dd(towers, site, seed=k)
    (towers / "sites.csv").write_text("SITE_ID,LAT,LON,ARIDITY_INDEX\nXX-Aaa,40,5,0.1\nXX-Bbb,50,8,1.2\n")
    at = _folder_mode(_app("pages/data.py"))
    pick = at.selectbox(key="folder_pick")
    assert "lesson_data/towers" in pick.options  # offered by its place below the root
    assert not [o for o in pick.options if o.startswith("/")]
    pick.set_value(str(towers.resolve())).run()
    at.button(key="load_pick").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["data_src"] == str(towers.resolve())
    assert {m.label: m.value for m in at.metric}["Sites"] == "2"
    assert at.radio(key="data_kind").value == "folder"
    # the same folder typed relative to its root
    at.text_input(key="folder").set_value("lesson_data/towers").run()
    at.button(key="load_folder").click().run()
    assert not at.exception and not at.error


def test_data_page_upload_with_column_mapping_and_site_catalogue(runs_dir, data_root, tmp_path):
    from tests.conftest import synthetic_daily

    d = synthetic_daily(sites=("XX-Aaa", "XX-Bbb"), n_days=120)
    import pandas as pd

    raw = pd.DataFrame(
        {"tower": d["SITE_ID"], "day": d["DATE"].dt.strftime("%Y-%m-%d"), "air_temp": d["TA"],
         "gross_primary_production": d["GPP"]})
    csv = raw.to_csv(index=False).encode()
    cat = b"SITE_ID,LAT,LON,IGBP,ARIDITY_INDEX\nXX-Aaa,40,5,GRA,0.1\nXX-Bbb,50,8,ENF,1.2\n"
    at = _app("pages/data.py")
    at.radio(key="data_kind").set_value("upload").run()
    at.file_uploader(key="upload").set_value(("my towers.csv", csv, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    # not loaded yet: the page asks to check the matched columns
    assert at.session_state["data_src"] == "demo"
    assert "check them" in _texts(at)
    tag = "map_" + next(b.key for b in at.selectbox if b.key and b.key.startswith("map_")).split("_")[1] + "_"
    chosen = {b.key[len(tag):]: b.value for b in at.selectbox if b.key and b.key.startswith(tag)}
    assert chosen["SITE_ID"] == "tower" and chosen["DATE"] == "day" and chosen["TA"] == "air_temp"
    assert chosen["GPP"] == "gross_primary_production" and chosen["ER"] == "(not in the file)"
    at.file_uploader(key="upload_sites").set_value(("catalogue.csv", cat, "text/csv")).run()
    at.button(key="apply_map").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    src = at.session_state["data_src"]
    assert src.endswith("my_towers.parquet") and str(tmp_path / "uploads") in src
    assert at.radio(key="data_kind").value == "upload"
    assert {m.label: m.value for m in at.metric}["Sites"] == "2"
    assert "No position" not in _texts(at)  # the catalogue gave positions
    at.file_uploader(key="upload_sites").set_value(
        ("catalogue.csv", cat.replace(b"XX-Bbb,50,8,ENF,1.2\n", b""), "text/csv")).run()
    at.button(key="apply_map").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "1 site(s) of my towers.csv have no row in catalogue.csv (e.g. XX-Bbb)" in _texts(at)
    assert "XX-Bbb" in _texts(at)  # listed under "No position"
    at.file_uploader(key="upload_sites").set_value(("catalogue.csv", cat, "text/csv")).run()
    at.button(key="apply_map").click().run()
    assert "have no row in" not in _texts(at)
    from pages import _common as common

    ds = common.dataset(at.session_state["data_src"])
    assert ds.zone_of("XX-Aaa") == "arid" and ds.zone_of("XX-Bbb") == "humid"
    assert ds.sites.loc["XX-Bbb", "LAT"] == 50


def test_data_page_rejected_upload_is_removed_and_named_as_given(runs_dir, data_root, tmp_path):
    import os

    old = tmp_path / "uploads" / "OldSession1234" / "abc" / "x.csv"  # a session of two days ago
    old.parent.mkdir(parents=True)
    old.write_text("x")
    for p in (old, old.parent, old.parent.parent):
        os.utime(p, (time.time() - 48 * 3600,) * 2)
    at = _app("pages/data.py")
    assert not old.parent.parent.exists()  # cleaned up when the page was opened
    at.radio(key="data_kind").set_value("upload").run()
    bad = b"SITE_ID,DATE,GPP\nA,2020-01-01,1\nA,2020-01-01,2\n"  # a duplicated day
    at.file_uploader(key="upload").set_value(("Klasse 7b.csv", bad, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("This data cannot be used. Klasse 7b.csv: "), errors
    assert "duplicated" in errors[0] and str(tmp_path) not in errors[0]
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
    assert at.session_state["data_src"] == "demo"
    at.run()  # the same file again: the same message, still nothing kept
    assert [e.value for e in at.error] == errors
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
    # a table no column choice can rescue, and a file over the size limit
    at.file_uploader(key="upload").set_value(("two.csv", b"foo,bar\n1,2\n", "text/csv")).run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("This data cannot be used. two.csv: the table has 2 column(s)")
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]


def test_data_page_upload_size_limit(runs_dir, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUXCORE_UPLOAD_MAX_MB", "0.0001")  # ~105 bytes
    at = _app("pages/data.py")
    at.radio(key="data_kind").set_value("upload").run()
    at.file_uploader(key="upload").set_value(("big.csv", b"SITE_ID,DATE,GPP\n" + b"A,2020-01-01,1\n" * 20,
                                              "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert errors == ["This data cannot be used. big.csv: the file is 317 bytes, more than the upload limit of "
                      "0.0001 MB"]
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]


def test_results_page_sets_skill_beside_published_results(runs_dir, demo, tmp_path, monkeypatch):
    import json

    import pandas as pd

    from tests.factories_dashboard import write_fake_run

    sites = [s for s in demo.site_ids if demo.zone_of(s) == "humid"][:4]
    run = write_fake_run(runs_dir, demo, sites)
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    pd.DataFrame({"site": sites[:2], "R2": [0.4, 0.6], "RMSE": 1.0, "target": "GPP_NT_VUT_USTAR50",
                  "model": "LightGBM"}).to_csv(anchors / "lgbm_Koppen_minimal.csv", index=False)
    monkeypatch.setenv("FLUXCORE_ANCHORS", str(anchors))

    at = _app("pages/results.py")
    at.button_group(key="res_view").set_value("Beside published results").run()
    assert not at.exception, [e.value for e in at.exception]
    # beside synthetic results the published figures are hidden, then shown marked not comparable
    assert not [d for d in at.dataframe if "tamrl_R2_median" in d.value.columns]
    assert "not comparable" in _texts(at)
    at.checkbox(key="res_published").check().run()
    assert "NOT COMPARABLE" in _texts(at)
    pub = [d.value for d in at.dataframe if "tamrl_R2_median" in d.value.columns]
    assert pub and set(pub[0]["learner"]) == {"mlr", "rf"}
    met = pd.read_parquet(run / "metrics.parquet")
    rf = met[(met["learner"] == "rf") & (met["target"] == "GPP")]
    assert pub[0].set_index("learner").loc["rf", "R2_median"] == pytest.approx(rf["R2"].median())
    # the demo world is synthetic: no comparison with real towers' scores
    assert "Synthetic sites: no CarbonFluxBench comparison" in _texts(at)
    assert not [d for d in at.dataframe if "source" in d.value.columns]

    # the same run marked as real data: CarbonFluxBench on the two common sites
    man = json.loads((run / "manifest.json").read_text())
    man["data"]["synthetic"] = False
    (run / "manifest.json").write_text(json.dumps(man))
    at = _app("pages/results.py")
    at.button_group(key="res_view").set_value("Beside published results").run()
    assert not at.exception, [e.value for e in at.exception]
    cfb = [d.value for d in at.dataframe if "source" in d.value.columns]
    assert cfb, _texts(at)
    lgbm = cfb[0][cfb[0]["model"] == "LightGBM"]
    assert lgbm["n_sites"].item() == 2 and lgbm["median_R2"].item() == pytest.approx(0.5)
    assert "On the 2 test site(s) both have" in _texts(at)


@pytest.mark.slow
def test_train_run_ends_with_results(runs_dir, demo):
    at = _app("pages/train.py", timeout=120)
    sites = [s for s in demo.site_ids if demo.zone_of(s) == "arid"][:3]
    at.session_state["selected_sites"] = sites
    at.run()
    at.pills(key="learners").set_value(["mlr", "rf"]).run()
    at.multiselect(key="targets").set_value(["GPP"]).run()
    at.number_input(key="hp_rf_n_estimators").set_value(20).run()
    at.radio(key="scope").set_value("selected").run()
    assert f"{len(sites)} test site(s) × 2 learner(s)" in _texts(at)
    at.button(key="start").click().run()
    assert not at.exception
    _until(at, lambda a: any("Finished" in s.value for s in a.success) or any("failed" in e.value for e in a.error),
           timeout=600, step=2.0)
    assert not any("failed" in e.value for e in at.error), [e.value for e in at.error]
    # the same settings are now recognised as stored
    at.run()
    assert any("already in the store" in s.value for s in at.success)
    at.switch_page("pages/results.py").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 2
    metrics = [d.value for d in at.dataframe if "R2" in d.value.columns]
    assert metrics and set(metrics[0]["SITE_ID"]) == set(sites)


@pytest.mark.realdata
@pytest.mark.slow
def test_pages_on_real_fluxnet_data(runs_dir, monkeypatch, real_data):
    from fluxcore.sources import load_dataset
    from tests.factories_dashboard import write_fake_run

    monkeypatch.setenv("FLUXCORE_DATA", str(real_data))
    ds = load_dataset(str(real_data))
    at = _app(timeout=120)
    _until(at, lambda a: len(a.metric) >= 4, timeout=120)
    assert {m.label: m.value for m in at.metric}["Sites"] == str(ds.n_sites)
    assert "SYNTHETIC" not in "\n".join(w.value for w in at.warning)
    at.switch_page("pages/sites.py").run()
    assert not at.exception
    assert at.button(key="sel_shown").label == f"Select shown ({ds.n_sites})"
    at.switch_page("pages/train.py").run()
    assert not at.exception and not at.button(key="start").disabled
    at.switch_page("pages/data.py").run()
    assert not at.exception and at.radio(key="data_kind").value == "real"
    sites = [s for s in ds.site_ids if ds.zone_of(s) == "arid"][:3] + [s for s in ds.site_ids if ds.zone_of(s) == "humid"][:3]
    write_fake_run(runs_dir, ds, sites, data=str(real_data))
    at.switch_page("pages/results.py").run()
    assert not at.exception and len(at.get("plotly_chart")) >= 2
    at.switch_page("pages/heterogeneity.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [d for d in at.dataframe if "Spearman" in d.value.columns]


def test_failed_run_shows_its_error_and_app_stays_usable(runs_dir, demo):
    from fluxcore.config import RunConfig
    from pages import _common as common

    at = _app("pages/train.py")
    jm = common.job_manager(str(runs_dir))
    # a configuration the runner rejects (its data source does not exist)
    bad = RunConfig(data=str(runs_dir / "missing.csv"), learners=["mlr"], targets=["GPP"])
    job = jm.submit(bad)
    jm.wait(job.key, 60)
    assert job.status == "failed"
    at.session_state["job_keys"] = [job.key]
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and errors[0].startswith("The run failed:") and "missing.csv" in errors[0]
    assert "does not exist" in errors[0]
    at.switch_page("pages/overview.py").run()
    assert not at.exception


# ------------------------------------------------------------------ issue 22: state bugs
def _three_finished_jobs(runs_dir, demo):
    """Three finished jobs (oldest first) whose runs are stored fake runs."""
    from fluxcore.config import RunConfig
    from pages import _common as common
    from tests.factories_dashboard import write_fake_run

    sites = [s for s in demo.site_ids if demo.zone_of(s) == "arid"][:3]
    jm = common.job_manager(str(runs_dir))
    runs = [write_fake_run(runs_dir, demo, sites, key=f"fakerun00000000{i}") for i in range(3)]
    jm.runner = lambda config, **kw: runs[config.seed]
    jobs = []
    for i in range(3):
        job = jm.submit(RunConfig(data="demo", learners=["mlr", "rf"], targets=["GPP", "ER"], seed=i),
                        name=f"lesson run {i}")
        jm.wait(job.key, 10)
        assert job.status == "done", job.error
        jobs.append(job)
    return jobs, runs


def test_show_results_opens_the_run_of_its_own_panel(runs_dir, demo):
    at = _app("pages/train.py")
    jobs, runs = _three_finished_jobs(runs_dir, demo)
    at.session_state["job_keys"] = [j.key for j in jobs]
    at.session_state["run_path"] = str(runs[1])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # rendering the panels does not choose a run
    assert at.session_state["run_path"] == str(runs[1])
    assert "lesson run 2" in _texts(at)  # panels show the run's name
    at.button(key=f"show_{jobs[2].key}").click().run()  # the newest
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["run_path"] == str(runs[2])
    assert at.selectbox(key="run_pick").value == str(runs[2])
    assert "lesson run 2" in _texts(at)  # Results names the run
    assert "lesson run 2" in at.selectbox(key="run_pick").format_func(at.selectbox(key="run_pick").value)


def test_results_filters_do_not_carry_over_between_runs(runs_dir, demo):
    from tests.factories_dashboard import write_fake_run

    arid = [s for s in demo.site_ids if demo.zone_of(s) == "arid"][:3]
    a = write_fake_run(runs_dir, demo, arid, key="fakerunaaaaaaaaa")
    b = write_fake_run(runs_dir, demo, arid, learners=("mlr", "rf", "svm", "lstm"), targets=("ER",),
                       key="fakerunbbbbbbbbb")
    at = _app()
    at.session_state["run_path"] = str(a)
    at.switch_page("pages/results.py").run()
    assert at.selectbox(key="run_pick").value == str(a)
    at.multiselect(key="res_learners").set_value(["mlr"]).run()
    at.selectbox(key="res_target").set_value("GPP").run()
    at.selectbox(key="run_pick").set_value(str(b)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="res_learners").value == ["mlr", "rf", "svm", "lstm"]
    assert at.selectbox(key="res_target").value == "ER"
    assert "Choose at least one learner" not in _texts(at)


def test_data_source_selection_and_run_survive_a_reload(runs_dir, data_root, demo):
    from tests.conftest import write_official_dd
    from tests.factories_dashboard import write_fake_run

    towers = data_root / "towers"
    towers.mkdir()
    for k, site in enumerate(("XX-Aaa", "XX-Bbb")):
        write_official_dd(towers, site, seed=k)
    (towers / "sites.csv").write_text("SITE_ID,LAT,LON,ARIDITY_INDEX\nXX-Aaa,40,5,0.1\nXX-Bbb,50,8,1.2\n")
    run = write_fake_run(runs_dir, demo, [s for s in demo.site_ids if demo.zone_of(s) == "humid"][:3])
    at = _folder_mode(_app("pages/data.py"))
    at.selectbox(key="folder_pick").set_value(str(towers.resolve())).run()
    at.button(key="load_pick").click().run()
    assert at.session_state["data_src"] == str(towers.resolve())
    at.session_state["selected_sites"] = ["XX-Bbb"]
    at.session_state["run_path"] = str(run)
    at.switch_page("pages/sites.py").run()
    assert not at.exception, [e.value for e in at.exception]
    qp = dict(at.query_params)
    flat = {k: (v[0] if isinstance(v, list) else v) for k, v in qp.items()}
    assert flat["data"] == "lesson_data/towers"  # relative to its data root: no server path in the URL
    assert flat["sites"] == "XX-Bbb" and flat["run"] == run.name

    # a reload: a new session with the same address
    again = AppTest.from_file(APP, default_timeout=60)
    for k, v in flat.items():
        again.query_params[k] = v
    again.run()
    assert not again.exception, [e.value for e in again.exception]
    assert again.session_state["data_src"] == str(towers.resolve())
    assert again.session_state["selected_sites"] == ["XX-Bbb"]
    assert "Data: `towers`" in "\n".join(c.value for c in again.sidebar.caption)
    again.switch_page("pages/results.py").run()
    assert again.selectbox(key="run_pick").value == str(run)

    # an address naming a folder outside the data roots is refused, the default data shown
    evil = AppTest.from_file(APP, default_timeout=60)
    evil.query_params["data"] = "/etc"
    evil.run()
    assert evil.session_state["data_src"] == "demo"
    assert "not offered by this server" in "\n".join(c.value for c in evil.sidebar.caption)


def test_a_run_with_every_fold_skipped_shows_its_reason(runs_dir, demo):
    from fluxcore.config import RunConfig
    from pages import _common as common

    at = _app("pages/train.py")
    jm = common.job_manager(str(runs_dir))
    jm.runner = None  # the real runner
    cfg = RunConfig(data="demo", learners=["mlr"], targets=["GPP"], sites=demo.site_ids[:2], pool="zone",
                    min_train_sites=1000)
    job = jm.submit(cfg, demo)
    jm.wait(job.key, 120)
    at.session_state["job_keys"] = [job.key]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.success or not any("Finished" in s.value for s in at.success)
    errors = [e.value for e in at.error]
    assert errors and "no fold could run" in errors[0] and "min_train_sites=1000" in errors[0]
    # Results says so clearly instead of an empty page
    at.session_state["run_path"] = str(job.run_dir)
    at.switch_page("pages/results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("This run has no results: no fold could be computed" in e.value for e in at.error), _texts(at)


def test_quick_preset_shows_expected_duration_and_labels_the_run(runs_dir, demo):
    at = _app("pages/train.py")
    at.radio(key="preset").set_value("quick").run()
    at.radio(key="scope").set_value("zones").run()
    at.multiselect(key="train_zones").set_value(["arid"]).run()
    at.pills(key="learners").set_value(["mlr", "rf", "svm", "lstm"]).run()
    assert not at.exception, [e.value for e in at.exception]
    text = _texts(at)
    assert "Expected duration: about" in text and "rough guide" in text
    assert "QUICK preset" in text
    assert "other sites of the same zone" in text and "other towers of its aridity zone" in text
    assert at.text_input(key="run_name").placeholder.startswith("QUICK · mlr, rf, svm, lstm")
    assert not at.button(key="start").disabled
