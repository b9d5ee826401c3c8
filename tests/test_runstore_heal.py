"""Self-healing run store with the real runner (issue 20 item 3).

A small slice of the demo world (6 sites, ``mlr``, ``strategy="per-fold"``) is run once
undamaged as the reference; every test damages a copy of a run and checks that the store
recomputes or rebuilds exactly what was lost and that the numbers equal the reference.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings

import pandas as pd
import pytest

from fluxcore.cli import main
from fluxcore.config import RunConfig
from fluxcore.errors import DataError
from fluxcore.loso import RunCancelled, run_loso
from fluxcore.runstore import (
    DAMAGED_MARK,
    DamagedFileWarning,
    RunStore,
    list_runs,
    load_run,
    repair_run,
)
from fluxcore.sources import load_dataset

N_SITES = 6


@pytest.fixture(scope="module")
def demo():
    ds = load_dataset("demo")
    return ds.subset(sites=ds.site_ids[:N_SITES])


@pytest.fixture(scope="module")
def cfg(demo):
    return RunConfig(data="demo", learners=["mlr"], targets=["GPP", "ER"], strategy="per-fold")


@pytest.fixture(scope="module")
def reference(demo, cfg, tmp_path_factory):
    """An undamaged finished run (never modified by the tests)."""
    return run_loso(cfg, dataset=demo, runs_dir=tmp_path_factory.mktemp("ref"))


def _copy_run(run, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    dst = runs / run.name
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("run.lock", "owners"))
    return dst


def _signatures(folder):
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes())
            for f in sorted(folder.glob("*.parquet"))}


def _assert_same_results(run, reference):
    a, b = load_run(run), load_run(reference)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.zone_summary, b.zone_summary)


@pytest.mark.parametrize("damage", ["truncated", pytest.param("another_site", marks=pytest.mark.slow)])
def test_damaged_fold_of_an_unfinished_run_is_moved_aside_and_recomputed(demo, cfg, reference, tmp_path, damage):
    runs = tmp_path / "runs"
    folds = None

    def cancel():  # stop after 4 of the 6 folds, as a kill would
        return folds is not None and len(list(folds.glob("*.parquet"))) >= 4

    folds = runs / reference.name / "folds" / "mlr"
    with pytest.raises(RunCancelled):
        run_loso(cfg, dataset=demo, runs_dir=runs, cancel=cancel)
    run = runs / reference.name
    stored = sorted(folds.glob("*.parquet"))
    assert len(stored) == 4
    victim = stored[1]
    original = victim.read_bytes()
    if damage == "truncated":
        victim.write_bytes(original[: len(original) // 2])
    else:  # a fold file of another site copied over this one
        shutil.copyfile(stored[0], victim)
    damaged_bytes = victim.read_bytes()
    others = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in stored if f != victim}

    with pytest.warns(DamagedFileWarning, match=victim.name) as rec:
        assert run_loso(cfg, dataset=demo, runs_dir=runs) == run
    msg = str(rec[0].message)
    assert ("cannot be read as parquet" in msg) if damage == "truncated" else ("holds SITE_ID" in msg)
    assert "will be recomputed" in msg
    # exactly the damaged fold and the two never computed were computed in the rerun
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "done" and m["sessions"][-1]["folds_computed"] == (N_SITES - 4) + 1
    # the other stored folds were not touched, the damaged file is kept for inspection
    for f in stored:
        if f != victim:
            assert (f.stat().st_ino, f.stat().st_mtime_ns) == others[f.name]
    (aside,) = folds.glob(f"{victim.name}{DAMAGED_MARK}*")
    assert aside.read_bytes() == damaged_bytes
    assert victim.read_bytes() != damaged_bytes
    log = [json.loads(line) for line in (run / "damage.jsonl").read_text().splitlines()]
    assert log[0]["file"] == f"folds/mlr/{victim.name}" and log[0]["moved_to"] == aside.name
    _assert_same_results(run, reference)


@pytest.mark.parametrize("damage", ["truncated", "zero_bytes", "deleted"])
def test_damaged_predictions_of_a_finished_run_are_rebuilt(cfg, demo, reference, tmp_path, damage):
    run = _copy_run(reference, tmp_path)
    pred = run / "predictions.parquet"
    folds_before = _signatures(run / "folds" / "mlr")
    if damage == "truncated":
        pred.write_bytes(pred.read_bytes()[:-100])
    elif damage == "zero_bytes":
        pred.write_bytes(b"")
    else:
        pred.unlink()
    row = list_runs(run.parent).iloc[0]
    assert row["status"] == "damaged"
    assert "predictions.parquet" in row["problem"] and f"fluxcore runs --repair {run.name}" in row["problem"]
    assert main(["runs", "--runs-dir", str(run.parent)]) == 0  # listed, not a traceback

    with pytest.warns(DamagedFileWarning, match="predictions.parquet"):
        res = load_run(run)
    assert res.extra["repaired"] == ["predictions.parquet"] and res.complete
    _assert_same_results(run, reference)
    assert _signatures(run / "folds" / "mlr") == folds_before
    assert list_runs(run.parent).iloc[0]["status"] == "done"
    assert (run / "metrics.parquet").read_bytes() == (reference / "metrics.parquet").read_bytes()
    kept = list(run.glob(f"predictions.parquet{DAMAGED_MARK}*"))
    assert len(kept) == (0 if damage == "deleted" else 1)
    assert json.loads((run / "manifest.json").read_text())["repairs"][0]["rebuilt"] == ["predictions.parquet"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repair_run(run) == []  # nothing left to repair, no warning
        assert run_loso(cfg, dataset=demo, runs_dir=run.parent) == run


def test_unrepairable_run_names_the_file_and_the_rerun_that_recomputes_it(cfg, demo, reference, tmp_path):
    run = _copy_run(reference, tmp_path)
    (run / "predictions.parquet").write_bytes(os.urandom(4000))
    folds = sorted((run / "folds" / "mlr").glob("*.parquet"))
    folds[2].unlink()
    with pytest.raises(DataError) as err, pytest.warns(DamagedFileWarning, match="cannot be rebuilt"):
        load_run(run)
    text = str(err.value)
    assert "predictions.parquet" in text and "cannot be read as parquet" in text
    assert f"mlr/{folds[2].stem}" in text and "fluxcore loso --config" in text
    row = list_runs(run.parent).iloc[0]
    assert row["status"] == "damaged" and "predictions.parquet" in row["problem"]
    with pytest.raises(DataError, match="predictions.parquet"):
        load_run(run)  # the same clear message again, not a traceback
    # the rerun the message names recomputes the missing fold only and rebuilds the results
    assert run_loso(cfg, dataset=demo, runs_dir=run.parent) == run
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "done" and m["sessions"][-1]["folds_computed"] == 1
    assert list(run.glob(f"predictions.parquet{DAMAGED_MARK}*"))
    _assert_same_results(run, reference)
    assert sorted(RunStore(run).finished_folds()) == sorted(f"mlr/{f.stem}" for f in folds)
