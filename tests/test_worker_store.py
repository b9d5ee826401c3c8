"""Fast strategies that train in worker processes get the run store (for their models) intact."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from fluxcore.config import RunConfig
from fluxcore.loso import load_run, run_loso
from fluxcore.runstore import RunStore


def test_run_store_pickles_without_its_owner_lock(tmp_path):
    store = RunStore(tmp_path / "k")
    store.path.mkdir()
    store.initialise({"a": 1}, {"status": "running"})
    store.acquire_owner()
    try:
        copy = pickle.loads(pickle.dumps(store))
        assert copy.path == store.path and copy.owner is None and store.owner is not None
        pytest.importorskip("torch")
        copy.save_model("x", "m", {"w": [1.0, 2.0]})  # a worker's copy writes into the same run
        assert store.load_model("x", "m") == {"w": [1.0, 2.0]}
    finally:
        store.release_owner()


@pytest.mark.slow
@pytest.mark.requires_torch
def test_fast_lstm_with_two_worker_processes_stores_models_and_equals_one_process(tmp_path):
    pytest.importorskip("torch")
    from factories_loso import make_flux_dataset

    ds = make_flux_dataset(n_sites=6, seed=4)
    tiny = {"hidden_size": 4, "lookback": 5, "max_epochs": 1, "max_windows_per_epoch": 100,
            "max_val_windows": 100, "n_threads": 1}
    cfg = RunConfig(learners=["lstm"], targets=["GPP"], params={"lstm": tiny},
                    strategy_options={"lstm": {"n_groups": 2, "finetune_windows": 50}})
    two = run_loso(cfg, dataset=ds, runs_dir=tmp_path / "two", jobs=2)
    one = run_loso(cfg, dataset=ds, runs_dir=tmp_path / "one", jobs=1)
    assert len(list((two / "models" / "lstm").glob("*.pt"))) == 2
    a, b = load_run(two).predictions, load_run(one).predictions
    np.testing.assert_array_equal(a["predicted"].to_numpy(), b["predicted"].to_numpy())
