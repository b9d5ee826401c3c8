"""The runner's fast strategy: equal to per-fold where exact, recorded, resumable."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from factories_loso import make_flux_dataset

from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError
from fluxcore.loso import RunCancelled, load_run, run_loso


def _preds(run_dir) -> pd.DataFrame:
    p = load_run(run_dir).predictions
    return p.sort_values(["learner", "target", "SITE_ID", "DATE"]).reset_index(drop=True)


@pytest.mark.parametrize("learner", ["mlr", "mlr_fuzzy"])
def test_fast_mlr_equals_per_fold(tmp_path, learner):
    ds = make_flux_dataset(n_sites=8, seed=1)
    fast = _preds(run_loso(RunConfig(learners=[learner], strategy="fast"), dataset=ds,
                           runs_dir=tmp_path / "fast"))
    slow = _preds(run_loso(RunConfig(learners=[learner], strategy="per-fold"), dataset=ds,
                           runs_dir=tmp_path / "slow"))
    assert len(fast) == len(slow) > 0
    np.testing.assert_allclose(fast["predicted"], slow["predicted"], atol=1e-6, rtol=0)


def test_strategy_is_recorded_and_changes_the_run_key(tmp_path):
    ds = make_flux_dataset(n_sites=6, seed=2)
    cfg = RunConfig(learners=["rf", "mlr"], params={"rf": {"n_estimators": 10}})
    fast = run_loso(cfg, dataset=ds, runs_dir=tmp_path)
    slow = run_loso(RunConfig(**{**cfg.to_dict(), "strategy": "per-fold"}), dataset=ds,
                    runs_dir=tmp_path)
    assert fast != slow
    info = load_run(fast).manifest["fold_info"]
    assert {v["strategy"] for k, v in info.items()} == {"rf_site_oob", "mlr_exact"}
    assert load_run(fast).config.strategy_options["rf"]["n_groups"] == 10
    # rf: the fast forest is close to the per-fold forest in skill
    m_fast = load_run(fast).metrics
    m_slow = load_run(slow).metrics
    med = [m[m["learner"] == "rf"]["R2"].median() for m in (m_fast, m_slow)]
    assert med[0] > med[1] - 0.1


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="strategy"):
        RunConfig(strategy="turbo").check()


def test_strategy_options_are_checked_by_name_and_value():
    ds = make_flux_dataset(n_sites=4, seed=2)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['n_round'\].*n_rounds"):
        RunConfig(learners=["lstm"], strategy_options={"lstm": {"n_round": 2}}).resolved(ds)
    with pytest.raises(ConfigError, match="n_rounds.*integer >= 1"):
        RunConfig(learners=["lstm"], strategy_options={"lstm": {"n_rounds": 0}}).resolved(ds)
    with pytest.raises(ConfigError, match="n_groups.*integer >= 1"):
        RunConfig(learners=["rf"], strategy_options={"rf": {"n_groups": 2.5}}).resolved(ds)
    # every option is recorded in the resolved config, the default n_rounds too
    cfg = RunConfig(learners=["lstm"], strategy_options={"lstm": {"n_rounds": 2}}).resolved(ds)
    assert cfg.strategy_options["lstm"]["n_rounds"] == 2
    assert RunConfig(learners=["lstm"]).resolved(ds).strategy_options["lstm"]["n_rounds"] == 1


def test_cancel_during_a_batch_keeps_nothing_half_done_and_resumes(tmp_path):
    ds = make_flux_dataset(n_sites=8, seed=3)
    cfg = RunConfig(learners=["rf"], params={"rf": {"n_estimators": 20}})
    stop = threading.Event()
    seen = []

    def progress(done, total, eta, msg):
        seen.append(msg)
        if "rf:" in msg and "%" in msg:
            stop.set()  # cancel at the first progress report inside the batch

    with pytest.raises(RunCancelled):
        run_loso(cfg, dataset=ds, runs_dir=tmp_path, progress=progress, cancel=stop)
    run_dir = next(tmp_path.iterdir())
    assert not list((run_dir / "folds").rglob("*.parquet")) if (run_dir / "folds").exists() else True
    out = run_loso(cfg, dataset=ds, runs_dir=tmp_path)
    res = load_run(out)
    assert res.status == "done"
    assert res.predictions["SITE_ID"].nunique() == 8


@pytest.mark.requires_torch
def test_fast_lstm_starts_worker_processes_only_when_jobs_asks(tmp_path, monkeypatch):
    """Spawned workers re-import the calling script; a run with jobs=1 (the default) must not
    start any, so an unguarded script keeps working."""
    pytest.importorskip("torch")
    import concurrent.futures as cf

    def no_pool(*args, **kwargs):
        raise AssertionError("a worker process pool was started with jobs=1")

    monkeypatch.setattr(cf, "ProcessPoolExecutor", no_pool)
    ds = make_flux_dataset(n_sites=4, seed=3)
    tiny = {"lookback": 5, "hidden_size": 4, "max_epochs": 1, "max_windows_per_epoch": 200,
            "max_val_windows": 100, "batch_size": 64}
    run = run_loso(RunConfig(learners=["lstm"], params={"lstm": tiny}, targets=["GPP"]), dataset=ds,
                   runs_dir=tmp_path, jobs=1)
    assert load_run(run).metrics["SITE_ID"].nunique() == 4
