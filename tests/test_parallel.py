"""Scale-out: local worker processes and a Dask LocalCluster give the serial results."""

import os
import threading

import pandas as pd
import pytest
from factories_loso import make_flux_dataset, register_test_learners, unregister_test_learners

from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError
from fluxcore.loso import load_run, run_loso
from fluxcore.parallel import as_cancel_check, make_executor


@pytest.fixture(autouse=True, scope="module")
def _learners():
    register_test_learners()
    yield
    unregister_test_learners()


@pytest.fixture(scope="module")
def ds():
    return make_flux_dataset(n_sites=6, seed=9)


@pytest.fixture(scope="module")
def cfg():
    return RunConfig(learners=["test_ols", "rf"], targets=["GPP", "ER"], params={"rf": {"n_estimators": 5}})


@pytest.fixture(scope="module")
def serial(ds, cfg, tmp_path_factory):
    return load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path_factory.mktemp("serial")))


def test_cancel_check_forms():
    ev = threading.Event()
    chk = as_cancel_check(ev)
    assert chk() is False
    ev.set()
    assert chk() is True
    assert as_cancel_check(None)() is False
    assert as_cancel_check(lambda: 1)() is True
    with pytest.raises(ConfigError):
        as_cancel_check(42)


def test_bad_scheduler_address_is_a_config_error():
    pytest.importorskip("distributed")
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        make_executor(print, {}, scheduler="nonsense")


@pytest.mark.slow
def test_process_pool_equals_serial(ds, cfg, serial, tmp_path):
    run = run_loso(cfg, dataset=ds, runs_dir=tmp_path, jobs=2)
    res = load_run(run)
    pd.testing.assert_frame_equal(res.predictions, serial.predictions)
    pd.testing.assert_frame_equal(res.metrics, serial.metrics)
    ex = res.manifest["sessions"][-1]["executor"]
    assert ex["kind"] == "processes" and ex["jobs"] == 2
    assert run.name == serial.path.name  # jobs do not change the key


@pytest.mark.slow
@pytest.mark.requires_dask
def test_dask_local_cluster_equals_serial(ds, cfg, serial, tmp_path):
    pytest.importorskip("distributed")
    before = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    run = run_loso(cfg, dataset=ds, runs_dir=tmp_path, jobs=2, scheduler="local")
    res = load_run(run)
    pd.testing.assert_frame_equal(res.predictions, serial.predictions)
    ex = res.manifest["sessions"][-1]["executor"]
    assert ex["kind"] == "dask" and ex["n_workers"] == 2 and ex["nthreads"] == 2
    assert ex["scheduler"].startswith("tcp://127.0.0.1:")
    assert ex["malloc_trim_threshold"] == ["None"]  # unset inside the workers
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == before


@pytest.mark.slow
@pytest.mark.requires_dask
def test_dask_scheduler_address_equals_serial(ds, cfg, serial, tmp_path):
    """``scheduler="tcp://..."``: an existing cluster (here a LocalCluster started by the test)."""
    import logging

    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        res = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path, scheduler=address))
    pd.testing.assert_frame_equal(res.predictions, serial.predictions)
    ex = res.manifest["sessions"][-1]["executor"]
    assert ex["kind"] == "dask" and ex["scheduler"] == address and ex["n_workers"] == 1
