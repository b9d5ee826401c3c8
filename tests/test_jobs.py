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


# ------------------------------------------------------------------ plain progress, honest time left
def test_plain_progress_names_the_learner_and_its_sites():
    from fluxcore.jobs import learner_progress, plain_learner_name

    assert plain_learner_name("rf") == "random forest"
    assert plain_learner_name("rf_fuzzy") == "random forest (fuzzy)"
    assert plain_learner_name("mystery") == "mystery"
    assert learner_progress(40 + 190, 4 * 190, ["mlr", "rf", "svm", "lstm"]) == ("rf", 40, 190)
    assert learner_progress(0, 30, ["mlr", "rf"]) == ("mlr", 0, 15)


def test_time_left_comes_from_the_measured_rate_and_never_sticks():
    from fluxcore.jobs import estimate_seconds_left, weighted_fraction

    # halfway after 30 s: 30 s left; later, with no progress, the estimate grows with the clock
    assert estimate_seconds_left(30, 0.5) == pytest.approx(30)
    assert estimate_seconds_left(60, 0.5) == pytest.approx(60)
    # before any progress: the expected duration counts down (never None when expected)
    assert estimate_seconds_left(0, 0.0, expected=50) == pytest.approx(50)
    assert estimate_seconds_left(20, 0.0, expected=50) == pytest.approx(30)
    assert estimate_seconds_left(80, 0.0, expected=50) > 0
    assert estimate_seconds_left(5, 0.0) is None and estimate_seconds_left(5, 1.0) == 0.0
    # mlr's 15 folds are nearly free: done 15 of 60 folds is not a quarter of the work
    costs = {"mlr": 0.1, "rf": 1.0, "svm": 1.0, "lstm": 1.0}
    f = weighted_fraction(15, 60, ["mlr", "rf", "svm", "lstm"], costs)
    assert f == pytest.approx(0.1 / 3.1)
    assert weighted_fraction(30, 60, ["mlr", "rf", "svm", "lstm"], costs) == pytest.approx(1.1 / 3.1)
    assert weighted_fraction(15, 60, ["mlr", "rf", "svm", "lstm"]) == pytest.approx(0.25)


def test_job_reports_plain_text_and_an_estimate_while_running(tmp_path):
    gate = threading.Event()

    def runner(config, *, progress=None, runs_dir=None):
        progress(0, 30, None, "starting")
        gate.wait(5)
        progress(20, 30, 0.01, "rf: 5 of 15 sites (trees grown without a group of sites)")
        gate.clear()
        gate.wait(5)
        return str(tmp_path / "run")

    jm = JobManager(tmp_path, runner=runner)
    job = jm.submit({"learners": ["mlr", "rf"]}, expected_seconds=40, learner_seconds={"mlr": 0.1, "rf": 2.0})
    t0 = time.time()
    while job.total == 0 and time.time() - t0 < 5:
        time.sleep(0.01)
    snap = job.snapshot()
    assert snap["progress_text"] == "preparing data and features"
    assert snap["eta_seconds"] is not None and 30 < snap["eta_seconds"] <= 40
    gate.set()
    while job.done < 20 and time.time() - t0 < 5:
        time.sleep(0.01)
    snap = job.snapshot()
    assert snap["progress_text"] == "random forest: 5 of 15 sites"
    assert snap["eta_seconds"] is not None and snap["eta_seconds"] > 0
    gate.set()
    jm.wait(job.key, 5)
    assert job.snapshot()["eta_seconds"] == 0.0


# ------------------------------------------------------------------ skipped folds, names
def _write_manifest(run, **m):
    import json

    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.json").write_text(json.dumps({"status": "done", **m}))
    return str(run)


def test_a_run_with_every_fold_skipped_is_a_failure_with_its_reason(tmp_path):
    skipped = [{"fold": "rf/XX-A", "reason": "1 training site(s) < min_train_sites=2 (pool=zone)"}]
    run = _write_manifest(tmp_path / "r1", n_folds=0, skipped=skipped)
    jm = JobManager(tmp_path, runner=lambda config, **kw: run)
    job = jm.submit({"learners": ["rf"]}, name="lonely arid site")
    jm.wait(job.key, 5)
    snap = job.snapshot()
    assert snap["status"] == "failed" and "Finished" not in (snap["message"] or "")
    assert "no fold could be computed" in snap["error"] and "min_train_sites=2" in snap["error"]
    assert "rf/XX-A" in snap["error"] and "all other sites" in snap["error"]


def test_some_skipped_folds_give_a_warning(tmp_path):
    from fluxcore.jobs import skipped_problem

    run = _write_manifest(tmp_path / "r2", n_folds=3, skipped=[{"fold": "rf/XX-A", "reason": "too few"}])
    jm = JobManager(tmp_path, runner=lambda config, **kw: run)
    job = jm.submit({"learners": ["rf"]})
    jm.wait(job.key, 5)
    assert job.status == "done" and "1 fold(s) were skipped (too few, e.g. rf/XX-A)" in job.warning
    assert skipped_problem({"n_folds": 4, "skipped": []}) == (None, None)


def test_run_names_are_stored_beside_the_run(tmp_path):
    from fluxcore.jobs import read_run_name, write_run_name

    run = _write_manifest(tmp_path / "r3", n_folds=1, skipped=[])
    jm = JobManager(tmp_path, runner=lambda config, **kw: run)
    job = jm.submit({"learners": ["mlr"]}, name="  Lesson 3:\n arid towers ")
    jm.wait(job.key, 5)
    assert read_run_name(run) == "Lesson 3: arid towers" == job.snapshot()["name"]
    jm.submit({"learners": ["mlr"]}, name="renamed")  # the same run, done: renamed, not recomputed
    assert read_run_name(run) == "renamed"
    write_run_name(run, "")
    assert read_run_name(run) is None
    assert read_run_name(tmp_path / "nope") is None
