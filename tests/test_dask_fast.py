"""Scale-out of the fast strategies: the run's Dask cluster gives the local predictions.

Predictions are compared with ``np.array_equal`` (bit for bit, no tolerance): every task runs
with one BLAS / torch thread both locally and on the workers, the trees and group models are
seeded from the plan, and their results are summed in task order, so nothing depends on where
a task ran.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from factories_loso import make_flux_dataset

from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError
from fluxcore.learners.lstm import LSTMLearner
from fluxcore.learners.rf import RFLearner
from fluxcore.learners.rf_fast import rf_site_oob
from fluxcore.learners.svm import SVMLearner
from fluxcore.loso import load_run, run_loso
from fluxcore.runstore import RunStore
from fluxcore.strategies.base import Checkpoint, LocalMapper, StrategyContext
from fluxcore.strategies.group_holdout import group_holdout
from tests.test_checkpoint import _world  # the same small problem as the resume tests

LEARNERS = ["mlr", "rf", "svm", "lstm"]


def _params() -> dict:
    rf = RFLearner.get_test_params()[0]
    return {"rf": {**rf, "n_estimators": 8}, "svm": {"n_components": 50},
            "lstm": LSTMLearner.get_test_params()[0]}


def _config() -> RunConfig:
    return RunConfig(learners=LEARNERS, targets=["GPP", "ER"], params=_params(),
                     strategy_options={"lstm": {"n_groups": 2}, "svm": {"n_groups": 3, "n_rounds": 1}})


def _preds(res, learner: str) -> pd.DataFrame:
    p = res.predictions[res.predictions["learner"] == learner]
    return p.sort_values(["target", "SITE_ID", "DATE"]).reset_index(drop=True)




class Stop(Exception):
    pass


def _stop_at(fraction: float):
    def progress(frac):
        if frac >= fraction:
            raise Stop
    return progress


# ------------------------------------------------------------------ local mapper (no Dask)
def _square(payload, task):
    time.sleep(0.02 * ((task * 7) % 3))  # finish out of order
    return payload * task * task


@pytest.mark.parametrize("kind, n", [("threads", 1), ("threads", 3), ("processes", 1)])
def test_local_mapper_hands_results_back_in_task_order(kind, n):
    mapper = LocalMapper(n_threads=n, n_processes=1)
    assert mapper.map(_square, range(8), payload=2, kind=kind, window=2) == [2 * i * i for i in range(8)]
    seen = []
    assert mapper.map(_square, range(5), payload=1, on_result=lambda i, r: seen.append((i, r))) is None
    assert seen == [(i, i * i) for i in range(5)]


def test_local_mapper_stops_when_the_consumer_raises():
    started = []
    lock = threading.Lock()

    def slow(payload, task):
        with lock:
            started.append(task)
        time.sleep(0.05)
        return task

    def consumer(i, r):
        if i == 1:
            raise Stop

    with pytest.raises(Stop):
        LocalMapper(n_threads=2).map(slow, range(40), on_result=consumer)
    assert len(started) < 40  # queued tasks were cancelled


def test_context_maps_locally_unless_given_a_mapper():
    ctx = StrategyContext(n_jobs=3, n_processes=2)
    m = ctx.task_mapper()
    assert isinstance(m, LocalMapper) and m.slots("threads") == 3 and m.slots("processes") == 2
    assert ctx.map(_square, [1, 2], payload=1) == [1, 4]
    other = LocalMapper(n_threads=1)
    assert StrategyContext(mapper=other).task_mapper() is other


# --------------------------------------------------------------------------- bad address
def test_bad_scheduler_address_is_a_config_error(tmp_path):
    pytest.importorskip("distributed")
    ds = make_flux_dataset(n_sites=4, seed=1)
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        run_loso(RunConfig(learners=["mlr"]), dataset=ds, runs_dir=tmp_path, scheduler="localhost:8786")


@pytest.mark.slow
@pytest.mark.requires_dask
def test_unreachable_scheduler_is_one_line_without_traceback(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    from fluxcore.cli import main

    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")
    import dask

    dask.config.refresh()
    try:
        code = main(["loso", "--data", "demo", "--learners", "mlr", "--targets", "GPP", "--zones", "arid",
                     "--runs-dir", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
    finally:
        monkeypatch.delenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT")
        dask.config.refresh()
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot reach a Dask scheduler" in err and "tcp://127.0.0.1:9" in err and "dask-scheduler" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# -------------------------------------------------------------- runs on a LocalCluster
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("distributed")
    pytest.importorskip("torch")
    ds = make_flux_dataset(n_sites=6, seed=4)
    cfg = _config()
    local = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path_factory.mktemp("local"), jobs=1))
    dask = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path_factory.mktemp("dask"), jobs=2,
                             scheduler="local"))
    return local, dask


@pytest.mark.slow
@pytest.mark.requires_dask
@pytest.mark.requires_torch
@pytest.mark.parametrize("learner", LEARNERS)
def test_local_cluster_gives_identical_predictions(runs, learner):
    local, dask = runs
    a, b = _preds(local, learner), _preds(dask, learner)
    assert len(a) == len(b) > 0 and a["SITE_ID"].nunique() == 6
    pd.testing.assert_frame_equal(a.drop(columns="predicted"), b.drop(columns="predicted"))
    assert np.array_equal(a["predicted"].to_numpy(), b["predicted"].to_numpy(), equal_nan=True)
    assert np.isfinite(a["predicted"]).mean() > 0.9


@pytest.mark.slow
@pytest.mark.requires_dask
@pytest.mark.requires_torch
def test_fast_batches_ran_on_the_one_cluster_of_the_run(runs):
    local, dask = runs
    ex = dask.manifest["sessions"][-1]["executor"]
    assert ex["kind"] == "dask" and ex["n_workers"] == 2 and ex["nthreads"] == 2
    assert ex["scheduler"].startswith("tcp://127.0.0.1:")
    info = dask.manifest["fold_info"]
    for lrn in LEARNERS:
        rows = [v for k, v in info.items() if k.startswith(lrn + "/")]
        assert rows and all(v["executor"].startswith(f"dask {ex['scheduler']} (2 workers") for v in rows)
        tasks = {v["executor_tasks"] for v in rows}
        assert tasks == ({0} if lrn == "mlr" else tasks) and (lrn == "mlr" or min(tasks) > 0)
    assert not any("executor" in v for v in local.manifest["fold_info"].values())
    assert local.path.name == dask.path.name  # the scheduler does not change the run key


# ------------------------------------------- strategies on a DaskSession, resumed units
@pytest.fixture(scope="module")
def session():
    pytest.importorskip("distributed")
    from fluxcore.parallel import DaskSession

    s = DaskSession("local", jobs=2)
    yield s
    s.close()


@pytest.mark.slow
@pytest.mark.requires_dask
def test_rf_on_dask_killed_half_way_resumes_identically(session, tmp_path):
    X, Y, sites, pools = _world()
    kw = dict(trees_per_site=6, n_groups=3, max_samples=0.5, random_state=4, n_jobs=2)
    ref = rf_site_oob(X, Y, sites, pools, **kw)
    store = RunStore(tmp_path / "run")
    with pytest.raises(Stop):
        rf_site_oob(X, Y, sites, pools, **kw, mapper=session, progress=_stop_at(0.5),
                    checkpoint=Checkpoint(store, "rf", "k"))
    cp = Checkpoint(store, "rf", "k")
    out = rf_site_oob(X, Y, sites, pools, **kw, mapper=session, checkpoint=cp)
    assert cp.n_loaded == 1 and cp.n_saved == 3
    for s in pools:
        assert np.array_equal(out[s], ref[s], equal_nan=True)


@pytest.mark.slow
@pytest.mark.requires_dask
def test_rf_lazy_trees_of_a_small_selection_on_dask_match_local(session):
    """A zone-like selection (a few test sites, every other site as pool) grows lazy trees:
    on the cluster they give the local predictions, bit for bit."""
    X, Y, sites, _ = _world(n_sites=8, seed=2)
    tests = sorted(set(sites))[:4]
    pools = {t: [s for s in sorted(set(sites)) if s != t] for t in tests}
    kw = dict(trees_per_site=5, n_groups=10, max_samples=0.5, random_state=1, n_jobs=2)
    local = rf_site_oob(X, Y, sites, pools, **kw)
    remote = rf_site_oob(X, Y, sites, pools, **kw, mapper=session)
    for s in tests:
        assert np.array_equal(remote[s], local[s], equal_nan=True)


@pytest.mark.slow
@pytest.mark.requires_dask
def test_group_holdout_on_dask_killed_half_way_resumes_identically(session, tmp_path):
    X, Y, sites, pools = _world(seed=1)
    Xd, Yd = pd.DataFrame(X, columns=list("abcd")), pd.DataFrame(Y, columns=["GPP", "ER"])
    dates = np.zeros(len(sites), dtype="datetime64[ns]")
    tpl = SVMLearner(n_components=20, max_fit_rows=200)
    kw = dict(n_groups=3, n_rounds=2, random_state=2, blas_threads=1)
    ref = group_holdout(tpl, Xd, Yd, sites, dates, pools, **kw)
    store = RunStore(tmp_path / "run")
    with pytest.raises(Stop):
        group_holdout(tpl, Xd, Yd, sites, dates, pools, **kw, mapper=session, progress=_stop_at(0.5),
                      checkpoint=Checkpoint(store, "svm", "k"))
    assert len(store.list_units("svm")) == 3
    cp = Checkpoint(store, "svm", "k")
    out = group_holdout(tpl, Xd, Yd, sites, dates, pools, **kw, mapper=session, checkpoint=cp)
    assert cp.n_loaded == 3 and cp.n_saved == 3
    for s in pools:
        assert np.array_equal(out[s], ref[s], equal_nan=True)


@pytest.mark.slow
@pytest.mark.requires_dask
def test_a_task_error_on_a_worker_reaches_the_driver(session):
    with pytest.raises(ZeroDivisionError):
        session.map(_divide, [1, 0, 2], payload=1)
    assert session.map(_divide, [1, 2, 4], payload=8, window=1) == [8, 4, 2]


def _divide(payload, task):
    return payload // task
