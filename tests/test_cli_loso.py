"""``fluxcore loso`` / ``fluxcore runs``: last stdout line is the run folder, config files
reproduce runs exactly, errors are one line, the progress bar."""

import io
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from factories_loso import test_learners

from fluxcore.cli import main
from fluxcore.cli.loso import TextProgress
from fluxcore.config import RunConfig
from fluxcore.loso import load_run
from fluxcore.sources import load_dataset


@pytest.fixture(scope="module")
def demo_sites():
    ds = load_dataset("demo")
    by_zone = {z: [s for s in ds.site_ids if ds.zone_of(s) == z] for z in ("arid", "humid")}
    return [by_zone["arid"][0], by_zone["humid"][0]]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_loso_prints_run_dir_last_and_runs_lists_it(tmp_path, capsys, demo_sites):
    runs = tmp_path / "runs"
    with test_learners():  # a fast test-only learner (mean per target)
        code, out, err = _run(capsys, "loso", "--data", "demo", "--learners", "test_spy", "--targets",
                              "GPP,ER", "--sites", ",".join(demo_sites), "--runs-dir", str(runs))
    assert code == 0, err
    run = Path(out.strip().splitlines()[-1])
    assert run.parent == runs and (run / "predictions.parquet").is_file()
    assert "median R2" in out  # skill table before the last line
    assert "2/2 folds" in err  # plain progress lines (stderr is not a TTY here)
    res = load_run(run)
    assert sorted(res.metrics["SITE_ID"].unique()) == sorted(demo_sites)
    code, out, _ = _run(capsys, "runs", "--runs-dir", str(runs))
    assert code == 0 and run.name in out and "done" in out
    code, out, _ = _run(capsys, "runs", "--runs-dir", str(runs), "--json")
    assert json.loads(out)[0]["key"] == run.name
    code, out, _ = _run(capsys, "runs", "--runs-dir", str(runs), "--delete", run.name)
    assert code == 0 and not run.exists()


@pytest.mark.slow
@pytest.mark.requires_torch
def test_config_file_reproduces_run_exactly(tmp_path, capsys, demo_sites):
    pytest.importorskip("torch")
    argv = ["loso", "--data", "demo", "--learners", "lstm,rf", "--targets", "GPP", "--sites", demo_sites[0],
            "--seed", "3", "--param", "lstm.max_epochs=1", "--param", "lstm.hidden_size=4",
            "--param", "lstm.lookback=5", "--param", "lstm.max_windows_per_epoch=300",
            "--param", "lstm.n_threads=1", "--param", "rf.n_estimators=4", "--quiet"]
    code, out, err = _run(capsys, *argv, "--runs-dir", str(tmp_path / "a"))
    assert code == 0, err
    run_a = Path(out.strip().splitlines()[-1])
    stored = json.loads((run_a / "config.json").read_text())
    assert stored["params"]["lstm"]["max_epochs"] == 1 and stored["seed"] == 3
    assert stored["params"]["rf"]["random_state"] == 3
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(yaml.safe_dump(stored))
    code, out, err = _run(capsys, "loso", "--config", str(cfg_file), "--runs-dir", str(tmp_path / "b"), "--quiet")
    assert code == 0, err
    run_b = Path(out.strip().splitlines()[-1])
    assert run_b.name == run_a.name  # same key
    a, b = load_run(run_a), load_run(run_b)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)  # same numbers, recomputed
    assert b.manifest["sessions"][0]["folds_computed"] == 2


def test_toml_config_with_command_line_override(tmp_path, capsys, demo_sites):
    p = tmp_path / "run.toml"
    p.write_text(f'data = "demo"\nlearners = ["mlr"]\ntargets = ["GPP"]\nsites = ["{demo_sites[0]}"]\nseed = 1\n')
    code, out, err = _run(capsys, "loso", "--config", str(p), "--seed", "2", "--runs-dir", str(tmp_path), "--quiet")
    assert code == 0, err
    cfg = RunConfig.from_file(Path(out.strip().splitlines()[-1]) / "config.json")
    assert cfg.seed == 2 and cfg.learners == ["mlr"] and cfg.sites == [demo_sites[0]]


@pytest.mark.parametrize("argv, pattern", [
    (["--learners", "nope"], "unknown learner"),
    (["--zones", "tropical"], "unknown aridity zone"),
    (["--sites", "XX-Nope"], "unknown site id"),
    (["--param", "mlr_max=1"], "LEARNER.NAME=VALUE"),
    (["--config", "/nonexistent/run.yaml"], "config file not found"),
    (["--learners", "rf", "--param", "rf.n_estimators=abc"], "n_estimators must be an integer >= 1, got 'abc'"),
    (["--learners", "lstm", "--param", "lstm.max_epochs=-3"], "max_epochs must be an integer >= 1, got -3"),
    (["--learners", "mlr", "--seed", "-1"], "seed: must be an integer between 0 and 4294967295, got -1"),
    (["--learners", "mlr", "--scheduler", "foo"], "give 'local' or an address like tcp://HOST:PORT"),
    (["--learners", "mlr", "--runs-dir", "__FILE__"], "is a file, not a folder for run folders"),
])
def test_errors_are_one_line(tmp_path, capsys, argv, pattern):
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("keep me")
    argv = [str(a_file) if a == "__FILE__" else a for a in argv]
    code, out, err = _run(capsys, "loso", "--data", "demo", "--runs-dir", str(tmp_path), *argv)
    assert code == 2
    assert pattern in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert a_file.read_text() == "keep me"  # nothing lost
    assert not [p for p in tmp_path.iterdir() if p != a_file]  # no run folder was started


@pytest.mark.parametrize("jobs", ["0", "-2", "x"])
def test_jobs_must_be_a_positive_integer(tmp_path, capsys, jobs):
    with pytest.raises(SystemExit) as exc:
        main(["loso", "--data", "demo", "--learners", "mlr", "--runs-dir", str(tmp_path), "--jobs", jobs])
    assert exc.value.code == 2
    assert f"argument --jobs: must be an integer >= 1, got '{jobs}'" in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_text_progress_bar():
    s = io.StringIO()
    bar = TextProgress(s, width=10)
    bar(0, 4, None, "starting")
    bar(0, 4, None, "starting")  # unchanged count: no new line
    bar(2, 4, 65.0, "mlr XX-1")
    assert s.getvalue().splitlines() == ["0/4 folds, ETA --:--: starting", "2/4 folds, ETA 01:05: mlr XX-1"]
    t = _Tty()
    bar = TextProgress(t, width=10)
    bar(1, 2, 3725.0, "rf")
    bar(2, 2, 0.0, "done")
    text = t.getvalue()
    assert text.startswith("\r[#####.....] 1/2 ETA 1:02:05 rf")
    assert "\r[##########] 2/2" in text and text.endswith("\n")
