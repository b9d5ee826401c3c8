"""Run store: keying, reuse of identical requests, resume after failure or kill, concurrent
requests, listing / deleting / loading runs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories_loso import (
    SpyLearner,
    make_flux_dataset,
)

from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError
from fluxcore.loso import delete_run, list_runs, load_run, prepare_run, run_loso
from fluxcore.runstore import RunStore, atomic_write_parquet, run_key

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
N_SITES = 8
SEED = 4


pytestmark = pytest.mark.usefixtures("loso_test_learners")


@pytest.fixture(scope="module")
def ds():
    return make_flux_dataset(n_sites=N_SITES, seed=SEED)


def held_out(fit_sites, ds):
    """The site missing from a fit's training set (pool='all')."""
    (site,) = set(ds.site_ids) - set(fit_sites)
    return site


def test_run_key_depends_on_data_config_code_not_data_path():
    cfg = RunConfig(learners=["mlr"]).to_dict()
    k = run_key("abc", cfg, "0.1+x")
    assert k == run_key("abc", {**cfg, "data": "/elsewhere"}, "0.1+x")
    assert k != run_key("abd", cfg, "0.1+x")
    assert k != run_key("abc", {**cfg, "seed": 1}, "0.1+x")
    assert k != run_key("abc", cfg, "0.1+y")


def test_identical_request_returns_stored_run(ds, tmp_path):
    cfg = RunConfig(learners=["test_spy"], targets=["GPP", "ER"])
    run1 = run_loso(cfg, dataset=ds, runs_dir=tmp_path)
    n = len(SpyLearner.FIT_LOG)
    assert n == N_SITES
    mtime = (run1 / "predictions.parquet").stat().st_mtime_ns
    t0 = time.perf_counter()
    calls = []
    run2 = run_loso(RunConfig.from_dict(cfg.to_dict()), dataset=ds, runs_dir=tmp_path,
                    progress=lambda *a: calls.append(a))
    assert run2 == run1
    assert time.perf_counter() - t0 < 5
    assert len(SpyLearner.FIT_LOG) == n  # nothing recomputed
    assert (run1 / "predictions.parquet").stat().st_mtime_ns == mtime
    assert calls[-1][0] == calls[-1][1] == N_SITES
    # a different seed is a different run
    run3 = run_loso(RunConfig(learners=["test_spy"], targets=["GPP", "ER"], seed=1), dataset=ds, runs_dir=tmp_path)
    assert run3 != run1
    assert prepare_run(cfg, dataset=ds, runs_dir=tmp_path)[2] == run1


def test_resume_after_a_failing_fold(ds, tmp_path):
    flag = tmp_path / "fail.flag"
    flag.write_text("x")
    bad = ds.site_ids[4]
    cfg = RunConfig(learners=["test_fail"], targets=["GPP"],
                    params={"test_fail": {"fail_without": bad, "fail_flag": str(flag)}})
    with pytest.raises(RuntimeError, match="planned failure"):
        run_loso(cfg, dataset=ds, runs_dir=tmp_path / "runs")
    (run,) = (tmp_path / "runs").iterdir()
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "failed" and "planned failure" in m["error"]
    stored = RunStore(run).finished_folds()
    assert stored == {f"test_fail/{s}" for s in ds.site_ids[:4]}
    assert list_runs(tmp_path / "runs").iloc[0]["status"] == "failed"
    flag.unlink()
    SpyLearner.FIT_LOG.clear()
    assert run_loso(cfg, dataset=ds, runs_dir=tmp_path / "runs") == run
    recomputed = {held_out(s, ds) for s, _, _ in SpyLearner.FIT_LOG}
    assert recomputed == set(ds.site_ids[4:])  # only the missing folds
    res = load_run(run)
    assert res.status == "done" and res.manifest["error"] is None
    assert res.predictions["SITE_ID"].nunique() == N_SITES
    assert not list(run.rglob("*.tmp"))


_SCRIPT = """
import json, sys
sys.path[:0] = [{tests!r}, {root!r}]
from factories_loso import make_flux_dataset, register_test_learners
register_test_learners()
from fluxcore.config import RunConfig
from fluxcore.loso import run_loso
cfg = RunConfig.from_dict(json.loads(sys.argv[1]))
print(run_loso(cfg, dataset=make_flux_dataset(n_sites={n}, seed={seed}), runs_dir=sys.argv[2]))
"""


def _spawn(tmp_path, cfg, runs):
    script = tmp_path / "run_one.py"
    script.write_text(_SCRIPT.format(tests=str(TESTS), root=str(ROOT), n=N_SITES, seed=SEED))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), json.dumps(cfg.to_dict()), str(runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow
def test_killed_process_loses_only_folds_in_flight(ds, tmp_path):
    log = tmp_path / "fits.log"
    runs = tmp_path / "runs"
    cfg = RunConfig(learners=["test_spy"], targets=["GPP"],
                    params={"test_spy": {"sleep": 0.5, "log_path": str(log)}})
    proc = _spawn(tmp_path, cfg, runs)
    deadline = time.time() + 60
    while len(_lines(log)) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run,) = runs.iterdir()
    stored = RunStore(run).finished_folds()
    assert 2 <= len(stored) < N_SITES
    assert list_runs(runs).iloc[0]["status"] == "interrupted"
    assert run_loso(cfg, dataset=ds, runs_dir=runs) == run
    recomputed = {f"test_spy/{held_out(s, ds)}" for s, _, _ in SpyLearner.FIT_LOG}
    assert recomputed == {f"test_spy/{s}" for s in ds.site_ids} - stored
    assert load_run(run).predictions["SITE_ID"].nunique() == N_SITES


@pytest.mark.slow
def test_two_processes_share_one_run_and_compute_each_fold_once(tmp_path):
    log = tmp_path / "fits.log"
    runs = tmp_path / "runs"
    cfg = RunConfig(learners=["test_spy"], targets=["GPP"],
                    params={"test_spy": {"sleep": 0.4, "log_path": str(log)}})
    procs = [_spawn(tmp_path, cfg, runs) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    dirs = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(dirs) == 1
    lines = _lines(log)
    assert len(lines) == N_SITES  # every fold computed exactly once in total
    ds = make_flux_dataset(n_sites=N_SITES, seed=SEED)
    held = {held_out(line.split()[1].split(","), ds) for line in lines}
    assert held == set(ds.site_ids)
    run = Path(dirs.pop())
    res = load_run(run)
    assert res.status == "done" and len(res.metrics) == N_SITES
    assert len(res.manifest["sessions"]) == 2


def test_list_delete_and_refusals(ds, tmp_path):
    run = run_loso(RunConfig(learners=["test_spy"], targets=["GPP"]), dataset=ds, runs_dir=tmp_path)
    df = list_runs(tmp_path)
    assert list(df.columns[:8]) == ["key", "created", "status", "data", "learners", "targets", "n_sites", "path"]
    row = df.iloc[0]
    assert row["key"] == run.name and row["status"] == "done" and row["n_sites"] == N_SITES
    assert row["learners"] == "test_spy"
    with pytest.raises(ConfigError, match="not a fluxcore run"):
        delete_run(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="not a fluxcore run"):
        load_run(tmp_path)
    delete_run(run)
    assert not run.exists() and list_runs(tmp_path).empty


def test_a_damaged_run_folder_is_listed_and_named_not_a_traceback(ds, tmp_path):
    from fluxcore.cli import main
    from fluxcore.errors import DataError

    good = run_loso(RunConfig(learners=["test_spy"], targets=["GPP"]), dataset=ds, runs_dir=tmp_path)
    cfg = RunConfig(learners=["test_spy"], targets=["ER"])
    bad = run_loso(cfg, dataset=ds, runs_dir=tmp_path)
    (bad / "manifest.json").write_text("{half a manif")  # e.g. edited by hand
    df = list_runs(tmp_path).set_index("key")
    assert df.loc[good.name, "status"] == "done"  # the other run is still listed
    assert df.loc[bad.name, "status"] == "damaged" and "manifest.json" in df.loc[bad.name, "data"]
    with pytest.raises(DataError, match=r"manifest\.json: is not valid JSON"):
        run_loso(cfg, dataset=ds, runs_dir=tmp_path)
    with pytest.raises(DataError, match=r"manifest\.json: is not valid JSON"):
        load_run(bad)
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    delete_run(bad)  # a damaged run can still be deleted
    assert list(list_runs(tmp_path)["key"]) == [good.name]


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "x.parquet"
    atomic_write_parquet(p, pd.DataFrame({"a": [1, 2]}))

    class Bad(pd.DataFrame):
        def to_parquet(self, *a, **k):
            raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write_parquet(p, Bad({"a": [3]}))
    assert pd.read_parquet(p)["a"].tolist() == [1, 2]
    assert [f.name for f in tmp_path.iterdir()] == ["x.parquet"]


@pytest.mark.slow
def test_loading_a_large_finished_run_is_fast(tmp_path, ds):
    """204 sites x 4 learners x 2 targets x ~2650 days (4.3 M rows) load in < 2 s."""
    run = run_loso(RunConfig(learners=["test_spy"], targets=["GPP"], sites=ds.site_ids[:1]),
                   dataset=ds, runs_dir=tmp_path)
    n_days, sites = 2650, [f"XX-{i:03d}" for i in range(204)]
    rng = np.random.default_rng(0)
    n = n_days * len(sites) * 8
    preds = pd.DataFrame({
        "SITE_ID": pd.Categorical(np.repeat(sites, n_days * 8)),
        "DATE": np.tile(pd.date_range("2000-01-01", periods=n_days).to_numpy(), len(sites) * 8),
        "learner": pd.Categorical(np.tile(np.repeat(["lstm", "rf", "svm", "mlr"], n_days * 2), len(sites))),
        "target": pd.Categorical(np.tile(np.repeat(["GPP", "ER"], n_days), len(sites) * 4)),
        "observed": rng.normal(size=n), "predicted": rng.normal(size=n),
    })
    atomic_write_parquet(run / "predictions.parquet", preds)
    t0 = time.perf_counter()
    res = load_run(run)
    dt = time.perf_counter() - t0
    assert len(res.predictions) == n
    assert dt < 2.0, f"load_run took {dt:.2f} s"
