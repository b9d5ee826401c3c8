"""Bad-input catalogue, run-store part (issue 20 item 7): damaged files and dangerous requests.

Every case asserts the exception type or the recovery, that the message names the file and
the problem, and that nothing already stored is lost (the other files keep their bytes).
One small finished run (6 synthetic sites, ``mlr``, per-fold) is computed once and copied
for each case.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from factories_loso import make_flux_dataset

from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError, DataError
from fluxcore.loso import run_loso
from fluxcore.runstore import (
    DAMAGED_MARK,
    DamagedFileWarning,
    RunStore,
    delete_run,
    list_runs,
    load_run,
    repair_run,
    resolve_run_dir,
)

N_SITES = 6


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    ds = make_flux_dataset(n_sites=N_SITES, seed=3)
    cfg = RunConfig(learners=["mlr"], targets=["GPP", "ER"], strategy="per-fold")
    return run_loso(cfg, dataset=ds, runs_dir=tmp_path_factory.mktemp("ref"))


@pytest.fixture
def run(finished, tmp_path):
    """A private copy of the finished run in ``tmp_path/runs``."""
    dst = tmp_path / "runs" / finished.name
    shutil.copytree(finished, dst, ignore=shutil.ignore_patterns("run.lock", "owners"))
    return dst


def _bytes(folder):
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def _folds(run):
    return sorted((run / "folds" / "mlr").glob("*.parquet"))


# --------------------------------------------------------------- fold files
def _damage_fold(kind, victim, other):
    if kind == "truncated":
        victim.write_bytes(victim.read_bytes()[:-40])
    elif kind == "random_bytes":
        victim.write_bytes(np.random.default_rng(0).bytes(3000))
    elif kind == "zero_bytes":
        victim.write_bytes(b"")
    elif kind == "wrong_schema":  # e.g. a metrics table of another run
        pd.DataFrame({"SITE_ID": ["X"], "R2": [0.5]}).to_parquet(victim)
    elif kind == "text_predictions":
        df = pd.read_parquet(victim)
        df["predicted"] = "n/a"
        df.to_parquet(victim)
    elif kind == "another_site":
        shutil.copyfile(other, victim)


FOLD_CASES = {
    "truncated": "cannot be read as parquet",
    "random_bytes": "cannot be read as parquet",
    "zero_bytes": "is empty (0 bytes)",
    "wrong_schema": "not those of a fold file",
    "text_predictions": "column 'predicted' holds",
    "another_site": "holds SITE_ID",
}


@pytest.mark.parametrize("kind", list(FOLD_CASES))
def test_damaged_fold_file_is_moved_aside_and_no_longer_finished(run, kind):
    folds = _folds(run)
    victim = folds[3]
    _damage_fold(kind, victim, folds[0])
    damaged = victim.read_bytes()
    before = {f.name: f.read_bytes() for f in folds if f != victim}
    store = RunStore(run)
    with pytest.warns(DamagedFileWarning) as rec:
        done = store.finished_folds()
    msg = str(rec[0].message)
    assert victim.name in msg and FOLD_CASES[kind] in msg and "will be recomputed" in msg
    assert done == {f"mlr/{f.stem}" for f in folds} - {f"mlr/{victim.stem}"}
    assert store.damaged and victim.name in store.damaged[0]
    (aside,) = victim.parent.glob(f"{victim.name}{DAMAGED_MARK}*")
    assert aside.read_bytes() == damaged and not victim.exists()
    assert {f.name: f.read_bytes() for f in folds if f != victim} == before
    preds = store.read_folds()  # does not raise, leaves the fold out
    assert set(preds["SITE_ID"].astype(str)) == {f.stem for f in folds} - {victim.stem}
    with pytest.raises(DataError, match=rf"folds: 1 fold file\(s\) missing or damaged \(mlr/{victim.stem}\)"):
        store.read_folds(expect=[f"mlr/{f.stem}" for f in folds])


def test_fold_damaged_after_it_was_checked_is_found_by_the_same_store(run):
    store = RunStore(run)
    folds = _folds(run)
    assert len(store.finished_folds()) == N_SITES
    folds[0].write_bytes(b"PAR1 overwritten")
    with pytest.warns(DamagedFileWarning, match=folds[0].name):
        assert f"mlr/{folds[0].stem}" not in store.finished_folds()


# ------------------------------------------------------------- result files
def _cut_csv(p):
    text = p.read_text()
    p.write_text(text[: len(text) - 7])


RESULT_CASES = {
    "predictions_truncated": ("predictions.parquet", lambda p: p.write_bytes(p.read_bytes()[:-100]),
                              "cannot be read"),
    "predictions_random_bytes": ("predictions.parquet", lambda p: p.write_bytes(os.urandom(5000)),
                                 "cannot be read"),
    "predictions_zero_bytes": ("predictions.parquet", lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "predictions_wrong_schema": ("predictions.parquet",
                                 lambda p: shutil.copyfile(p.with_name("metrics.parquet"), p),
                                 "not those of a predictions.parquet"),
    "predictions_deleted_status_done": ("predictions.parquet", lambda p: p.unlink(), "is missing"),
    "metrics_truncated": ("metrics.parquet", lambda p: p.write_bytes(p.read_bytes()[:50]), "cannot be read"),
    "zone_summary_cut": ("zone_summary.csv", _cut_csv, "file cut"),
    "zone_summary_zero_bytes": ("zone_summary.csv", lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
}


@pytest.mark.parametrize("case", list(RESULT_CASES))
def test_damaged_result_file_is_listed_then_rebuilt_from_the_folds(finished, run, case):
    name, damage, problem = RESULT_CASES[case]
    damage(run / name)
    folds_before = _bytes(run / "folds")
    row = list_runs(run.parent).iloc[0]
    assert row["status"] == "damaged"
    assert name in row["problem"] and problem in row["problem"]
    assert f"fluxcore runs --repair {run.name}" in row["problem"]

    with pytest.warns(DamagedFileWarning, match=name):
        assert repair_run(run) == [name]
    assert (run / name).read_bytes() == (finished / name).read_bytes()  # rebuilt bit for bit
    for other in {"predictions.parquet", "metrics.parquet", "zone_summary.csv", "config.json"} - {name}:
        assert (run / other).read_bytes() == (finished / other).read_bytes()
    assert _bytes(run / "folds") == folds_before
    assert len(list(run.glob(f"{name}{DAMAGED_MARK}*"))) == (0 if "deleted" in case else 1)
    res = load_run(run)
    assert res.status == "done" and res.complete
    assert list_runs(run.parent).iloc[0]["status"] == "done"


def test_load_run_repairs_by_itself(finished, run):
    (run / "metrics.parquet").write_bytes(b"")
    with pytest.warns(DamagedFileWarning) as rec:
        res = load_run(run)
    texts = [str(w.message) for w in rec]
    assert any("metrics.parquet: is empty (0 bytes)" in t and "moved aside" in t for t in texts)
    assert any("rebuilt metrics.parquet from predictions.parquet" in t for t in texts)
    assert res.extra["repaired"] == ["metrics.parquet"]
    pd.testing.assert_frame_equal(res.metrics, load_run(finished).metrics)


def test_unrepairable_result_file_is_one_data_error_and_the_run_is_marked_damaged(run):
    (run / "predictions.parquet").write_bytes(b"")
    folds = _folds(run)
    folds[1].write_bytes(b"garbage")
    kept = {f.name: f.read_bytes() for f in folds if f != folds[1]}
    with pytest.raises(DataError) as err, pytest.warns(DamagedFileWarning):
        repair_run(run)
    text = str(err.value)
    assert err.value.path.endswith("predictions.parquet") and "is empty (0 bytes)" in text
    assert f"mlr/{folds[1].stem}" in text and "fluxcore loso --config" in text
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "damaged" and "predictions.parquet" in m["error"]
    row = list_runs(run.parent).iloc[0]
    assert row["status"] == "damaged" and "predictions.parquet" in row["problem"]
    assert {f.name: f.read_bytes() for f in folds if f != folds[1]} == kept
    with pytest.raises(DataError, match="predictions.parquet"):
        load_run(run)


def test_damaged_manifest_is_one_data_error_and_nothing_is_lost(run):
    before = _bytes(run / "folds")
    (run / "manifest.json").write_text('{"status": "do')
    with pytest.raises(DataError, match=r"manifest\.json: is not valid JSON"):
        load_run(run)
    with pytest.raises(DataError, match=r"manifest\.json: is not valid JSON"):
        repair_run(run)
    row = list_runs(run.parent).iloc[0]
    assert row["status"] == "damaged" and "manifest.json" in row["problem"]
    assert _bytes(run / "folds") == before


# ------------------------------------------------------------- model store
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("damage", ["truncated", "random_bytes", "zero_bytes", "not_a_state_dict"])
def test_damaged_model_file_is_moved_aside_and_load_returns_none(run, damage):
    store = RunStore(run)
    state = {"w": torch.arange(6.0).reshape(2, 3), "epochs": 3}
    keep = store.save_model("lstm", "group-1", {"w": torch.ones(2)})
    p = store.save_model("lstm", "pretrain", state)
    assert p == run / "models" / "lstm" / "pretrain.pt"
    if damage == "truncated":
        p.write_bytes(p.read_bytes()[:-30])
    elif damage == "random_bytes":
        p.write_bytes(os.urandom(800))
    elif damage == "zero_bytes":
        p.write_bytes(b"")
    else:
        torch.save([1, 2, 3], p)
    damaged = p.read_bytes()
    with pytest.warns(DamagedFileWarning, match=r"pretrain\.pt: .*the model will be recomputed"):
        assert store.load_model("lstm", "pretrain") is None
    (aside,) = p.parent.glob(f"pretrain.pt{DAMAGED_MARK}*")
    assert aside.read_bytes() == damaged
    assert torch.equal(store.load_model("lstm", "group-1")["w"], torch.ones(2))
    assert keep.is_file() and store.list_models() == [("lstm", "group-1")]


def test_model_round_trip_and_names_stay_inside_the_run(run):
    store = RunStore(run)
    state = {"w": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), "meta": {"lr": 0.01}}
    p = store.save_model("../lstm", "../../etc/passwd", state)
    assert run / "models" in p.parents and ".." not in p.relative_to(run).parts
    back = store.load_model("../lstm", "../../etc/passwd")
    assert torch.equal(back["w"], state["w"]) and back["meta"] == {"lr": 0.01}
    assert store.list_models() == [("../lstm", "../../etc/passwd")]
    assert store.load_model("lstm", "never-saved") is None
    assert not list(p.parent.glob("*.tmp"))
    with pytest.raises(TypeError, match="state must be a dict"):
        store.save_model("lstm", "x", torch.nn.Linear(2, 2))


def test_units_round_trip_bit_for_bit_and_a_damaged_unit_is_recomputed(run):
    store = RunStore(run)
    rng = np.random.default_rng(1)
    arrays = {"pred": rng.normal(size=(50, 2)), "sites": np.array(["A", "B"]), "file": np.arange(3)}
    store.save_unit("rf", "round-1-group-2", arrays, {"sites": ["A", "B"], "seconds": 1.5})
    store.save_unit("rf", "round-1-group-3", {"pred": np.zeros(2)})
    got, meta = store.load_unit("rf", "round-1-group-2")
    assert meta == {"sites": ["A", "B"], "seconds": 1.5}
    assert set(got) == set(arrays) and all(np.array_equal(got[k], arrays[k]) for k in arrays)
    assert got["pred"].tobytes() == arrays["pred"].tobytes()
    assert store.list_units("rf") == [("rf", "round-1-group-2"), ("rf", "round-1-group-3")]
    p = store.unit_path("rf", "round-1-group-2")
    p.write_bytes(p.read_bytes()[:100])
    with pytest.warns(DamagedFileWarning, match=r"round-1-group-2\.npz: cannot be read as a unit file"):
        assert store.load_unit("rf", "round-1-group-2") is None
    assert store.load_unit("rf", "round-1-group-3")[0]["pred"].tolist() == [0.0, 0.0]
    with pytest.raises(TypeError, match="dtype object"):
        store.save_unit("rf", "bad", {"x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        store.save_unit("rf", "bad", {}, {"when": object()})
    assert store.clear_units("rf") == 1 and store.list_units() == []


# ----------------------------------------------------------------- delete
def test_delete_refuses_a_folder_outside_the_runs_folder(run, tmp_path):
    outside = tmp_path / "precious"
    shutil.copytree(run, outside)  # even a real run folder, when it is not inside runs_dir
    runs = run.parent
    for key in ("../precious", "../../etc", "/etc", "..", ".", "a/b"):
        with pytest.raises(ConfigError, match="not a path"):
            resolve_run_dir(runs, key)
    with pytest.raises(ConfigError, match="not a folder directly inside the runs folder.*nothing deleted"):
        delete_run(runs / ".." / "precious", runs_dir=runs)
    with pytest.raises(ConfigError, match="not a folder directly inside"):
        delete_run(runs, runs_dir=runs)
    (runs / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigError, match="not a folder directly inside"):
        delete_run(runs / "link", runs_dir=runs)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        delete_run(runs / "link")
    assert (outside / "manifest.json").is_file() and run.is_dir()
    assert resolve_run_dir(runs, run.name) == runs / run.name
    delete_run(resolve_run_dir(runs, run.name), runs_dir=runs)
    assert not run.exists() and outside.is_dir()


def test_delete_refuses_a_folder_that_is_not_a_run(run):
    runs = run.parent
    other = runs / "notes"
    other.mkdir()
    (other / "config.json").write_text('{"theme": "dark"}')  # a config.json, but not a run's
    with pytest.raises(ConfigError, match=r"notes: not a fluxcore run folder.*nothing deleted"):
        delete_run(other, runs_dir=runs)
    with pytest.raises(ConfigError, match="not a fluxcore run folder"):
        resolve_run_dir(runs, "notes")
    with pytest.raises(ConfigError, match="no such run folder"):
        resolve_run_dir(runs, "0123456789abcdef")
    assert (other / "config.json").is_file()
    # a run whose manifest was never written (killed at the start) can still be deleted
    (run / "manifest.json").unlink()
    delete_run(run, runs_dir=runs)
    assert not run.exists()


# ------------------------------------------------------- manifest and config values
def test_manifest_field_of_the_wrong_type_is_one_data_error(run, capsys):
    """A manifest whose 'data' is text (was AttributeError in `fluxcore runs` and `report`)."""
    from fluxcore.cli import main

    m = json.loads((run / "manifest.json").read_text())
    m["data"] = "demo"
    (run / "manifest.json").write_text(json.dumps(m))
    before = _bytes(run)
    with pytest.raises(DataError, match=r"manifest\.json: field 'data' is \"demo\", not an object"):
        load_run(run)
    row = list_runs(run.parent).iloc[0]
    assert row["status"] == "damaged" and "field 'data'" in row["problem"]
    assert main(["report", str(run), "--out", str(run.parent.parent / "rep")]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _bytes(run) == before


def test_report_of_a_run_whose_config_is_invalid_names_the_config(run):
    """A run folder whose config.json no longer validates was taken for an exported run and
    crashed with AttributeError ('dict' object has no attribute 'data')."""
    from fluxcore.report import report_inputs

    cfg = json.loads((run / "config.json").read_text())
    cfg["data"] = 5
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"config\.json: data: must be 'demo' or the path"):
        report_inputs(run)


def test_report_of_an_exported_run_loads_the_data_of_its_config(run, tmp_path):
    """config.json + metrics.parquet only: the config is a plain dict (was AttributeError)."""
    from conftest import synthetic_daily

    from fluxcore.report import report_inputs

    data = tmp_path / "daily.csv"
    synthetic_daily(sites=("XX-Aaa", "XX-Bbb"), n_days=40).to_csv(data, index=False)
    for f in run.iterdir():
        if f.name not in ("config.json", "metrics.parquet"):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "data": str(data)}))
    inputs = report_inputs(run)
    assert inputs.dataset is not None and inputs.dataset.n_sites == 2
    del cfg["data"]
    (run / "config.json").write_text(json.dumps(cfg))
    inputs = report_inputs(run)
    assert inputs.dataset is None and any("names no data" in n for n in inputs.notes)


def test_run_folder_without_its_config_is_listed_damaged_and_named(run, capsys):
    """A run folder whose config.json is gone was listed as done, with no learners."""
    from fluxcore.cli import main

    (run / "config.json").unlink()
    before = _bytes(run)
    row = list_runs(run.parent).iloc[0]
    assert row["status"] == "damaged" and "config.json" in row["problem"] and "is missing" in row["problem"]
    with pytest.raises(DataError, match=r"config\.json: is missing"):
        load_run(run)
    assert main(["report", str(run), "--out", str(run.parent.parent / "rep")]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _bytes(run) == before
