"""fluxcore.jobs: background runs, progress, dedup, cancel, failures."""

from __future__ import annotations

import threading
import time

import pytest

from fluxcore.errors import DataError
from fluxcore.jobs import JobManager, format_seconds, run_key


class FakeRunner:
    """Counts calls; reports progress over ``n`` folds; obeys the cancel event."""

    def __init__(self, n=5, delay=0.02, fail=None):
        self.n, self.delay, self.fail = n, delay, fail
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, config, *, dataset=None, runs_dir="runs", progress=None, cancel=None):
        with self.lock:
            self.calls += 1
        for i in range(self.n):
            if cancel is not None and cancel.is_set():
                raise RuntimeError("cancelled by user")
            time.sleep(self.delay)
            if self.fail is not None and i == 2:
                raise self.fail
            progress(i + 1, self.n, (self.n - i - 1) * self.delay, f"fold {i + 1}")
        return f"{runs_dir}/{config['name']}"


def test_run_completes_with_progress(tmp_path):
    r = FakeRunner()
    jm = JobManager(tmp_path, runner=r)
    job = jm.submit({"name": "a"})
    jm.wait(job.key, 5)
    snap = job.snapshot()
    assert snap["status"] == "done" and snap["done"] == 5 and snap["total"] == 5
    assert snap["fraction"] == 1.0 and snap["run_dir"].endswith("/a")
    assert r.calls == 1


def test_same_run_twice_is_computed_once(tmp_path):
    r = FakeRunner(delay=0.05)
    jm = JobManager(tmp_path, runner=r)
    out = []
    ts = [threading.Thread(target=lambda: out.append(jm.submit({"name": "same"}))) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len({id(j) for j in out}) == 1
    jm.wait(out[0].key, 5)
    assert r.calls == 1
    # a finished run submitted again is not recomputed
    again = jm.submit({"name": "same"})
    assert again is out[0] and r.calls == 1


def test_different_runs_queue_with_one_slot(tmp_path):
    r = FakeRunner(delay=0.03)
    jm = JobManager(tmp_path, runner=r, max_running=1)
    a, b = jm.submit({"name": "a"}), jm.submit({"name": "b"})
    time.sleep(0.05)
    states = {a.status, b.status}
    assert "queued" in states or "done" in states
    jm.wait(a.key, 5)
    jm.wait(b.key, 5)
    assert a.status == b.status == "done" and r.calls == 2


def test_run_dir_hint_shown_while_running(tmp_path):
    jm = JobManager(tmp_path, runner=FakeRunner(n=50, delay=0.01))
    job = jm.submit({"name": "h"}, run_dir=tmp_path / "abc")
    assert job.run_dir == tmp_path / "abc" and job.snapshot()["run_dir"].endswith("abc")
    jm.wait(job.key, 5)
    assert job.status == "done" and str(job.run_dir).endswith("/h")  # the runner's answer wins


def test_failed_run_keeps_clear_error(tmp_path):
    jm = JobManager(tmp_path, runner=FakeRunner(fail=DataError("x.csv", "no GPP column")))
    job = jm.submit({"name": "bad"})
    jm.wait(job.key, 5)
    assert job.status == "failed"
    assert job.error == "x.csv: no GPP column"
    assert "DataError" in job.traceback
    # other errors get their type name; a failed run can be started again
    jm2 = JobManager(tmp_path, runner=FakeRunner(fail=ValueError("boom")))
    j2 = jm2.submit({"name": "bad"})
    jm2.wait(j2.key, 5)
    assert j2.error == "ValueError: boom"
    j3 = jm2.submit({"name": "bad"})
    assert j3 is not j2


def test_cancel(tmp_path):
    jm = JobManager(tmp_path, runner=FakeRunner(n=200, delay=0.01))
    job = jm.submit({"name": "long"})
    time.sleep(0.05)
    assert jm.cancel(job.key)
    jm.wait(job.key, 5)
    assert job.status == "cancelled" and job.done < 200
    assert not jm.cancel(job.key)


def test_runner_gets_only_keywords_it_accepts(tmp_path):
    seen = {}

    def runner(config, runs_dir="runs", progress=None):
        seen.update(runs_dir=runs_dir, progress=progress)
        return runs_dir

    jm = JobManager(tmp_path, runner=runner)
    job = jm.submit({"name": "k"})
    jm.wait(job.key, 5)
    assert job.status == "done" and seen["runs_dir"] == tmp_path and callable(seen["progress"])


def test_run_key_depends_on_config_and_data():
    class D:
        def __init__(self, fp):
            self.fp = fp

        def fingerprint(self):
            return self.fp

    a = run_key({"learners": ["rf"]}, D("1"))
    assert a == run_key({"learners": ["rf"]}, D("1"))
    assert a != run_key({"learners": ["mlr"]}, D("1"))
    assert a != run_key({"learners": ["rf"]}, D("2"))


@pytest.mark.parametrize("s,txt", [(None, "–"), (5.2, "5 s"), (65, "1 min 05 s"), (3725, "1 h 02 min")])
def test_format_seconds(s, txt):
    assert format_seconds(s) == txt


@pytest.mark.slow
def test_real_runner_two_sessions_same_run_computed_once(tmp_path):
    """Two sessions submit the same small LOSO run at once: one computation, one run folder;
    a third submission after the end returns the stored run."""
    from fluxcore.config import RunConfig
    from fluxcore.loso import load_run
    from fluxcore.sources import load_dataset

    ds = load_dataset("demo")
    ds = ds.subset(sites=ds.site_ids[:4])
    cfg = RunConfig(data="demo", learners=["mlr"], targets=["GPP"], seed=0)
    jm = JobManager(tmp_path / "runs")
    a, b = jm.submit(cfg, ds), jm.submit(RunConfig.from_dict(cfg.to_dict()), ds)
    assert a is b
    jm.wait(a.key, 300)
    assert a.status == "done", a.error
    folders = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(folders) == 1 and a.run_dir == folders[0]
    run = load_run(a.run_dir)
    assert set(run.metrics["SITE_ID"]) == set(ds.site_ids)
    assert a.done == a.total == 4
    # a second process-level manager (another server) finds the stored run at once
    jm2 = JobManager(tmp_path / "runs")
    c = jm2.submit(cfg, ds)
    jm2.wait(c.key, 120)
    assert c.status == "done" and c.run_dir == a.run_dir
    assert len(load_run(a.run_dir).manifest["sessions"]) == 1  # nothing recomputed
