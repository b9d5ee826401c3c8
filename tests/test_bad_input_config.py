"""Bad-input catalogue, config and command-line part (issue 20, items 2, 6 and 7).

Each case is one bad run-config file (YAML unless said) and states what a user must get:

* from the Python API a :class:`fluxcore.errors.ConfigError` (at ``RunConfig.from_file`` for
  ``stage="file"``; at ``resolved(dataset)`` for problems that need the learner registry or
  the data, ``stage="resolve"``), one line per problem, naming the key path (and, for file
  stage problems, the file) and the problem;
* from ``fluxcore loso --config FILE`` exit status 2 and the same message on stderr, never a
  traceback (in-process for every case, ``python -m fluxcore`` in a subprocess for a few);
* nothing already stored is lost: a finished run in the runs folder keeps its bytes and no
  run folder is created.

Command-line cases follow: ``--sites-table``, a run in which every fold is skipped (exit 2,
the run folder marked failed), bad ``--pretrain``/``--seed``/``--data`` values.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from conftest import synthetic_daily, write_official_dd

from fluxcore.cli import main
from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError, DataError
from fluxcore.runner import run_loso
from fluxcore.sources import load_dataset

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """One bad config file and what it must give (see the module docstring)."""

    text: str | bytes
    key: str  # key path the message must name ("" where the problem is the whole file)
    words: list[str]  # must all appear in the message
    suffix: str = ".yaml"
    stage: str = "file"  # "file" or "resolve"
    n_lines: int = 1
    extra: dict = field(default_factory=dict)


CASES: dict[str, Case] = {
    "rolling_windows_text": Case("features: {rolling_windows: x}", "features.rolling_windows",
                                 ["must be a list of integers", "got 'x'"]),
    "data_number": Case("data: 42", "data", ["must be 'demo' or the path", "got 42"]),
    "doy_text_no": Case('features: {doy: "no"}', "features.doy", ["must be true or false", "got 'no'"]),
    "seed_boolean": Case("seed: true", "seed", ["must be an integer", "got True"]),
    "seed_too_large": Case("seed: 99999999999", "seed", ["between 0 and 4294967295"]),
    "min_train_sites_zero": Case("min_train_sites: 0", "min_train_sites", ["integer >= 1", "got 0"]),
    "learners_number": Case("learners: 42", "learners", ["must be a list of learner names", "got 42"]),
    "learner_twice": Case("learners: [mlr, mlr]", "learners", ["listed twice"]),
    "target_unknown": Case("targets: [LE]", "targets", ["unknown target", "LE"]),
    "zone_unknown": Case("zones: [tropical]", "zones", ["unknown aridity zone", "tropical"]),
    "pool_unknown": Case("pool: country", "pool", ["unknown pool", "country"]),
    "strategy_unknown": Case("strategy: turbo", "strategy", ["unknown strategy", "turbo"]),
    "qc_fraction_above_one": Case("qc: {min_measured_frac: 1.5}", "qc.min_measured_frac",
                                  ["between 0 and 1", "got 1.5"]),
    "qc_range_reversed": Case("qc: {ranges: {TA: [5, 1]}}", "qc.ranges['TA']", ["[min, max]", "min <= max"]),
    "qc_gpp_min_infinite": Case("qc: {gpp_min: .inf}", "qc.gpp_min", ["finite number", "got inf"]),
    "feature_option_unknown": Case("features: {dow: false}", "features", ["unknown feature option", "dow"]),
    "feature_variable_unknown": Case("features: {variables: [FOO]}", "features.variables",
                                     ["unknown feature variable", "FOO"]),
    "bucket_capacity_zero": Case("features: {bucket_capacity_mm: 0}", "features.bucket_capacity_mm",
                                 ["finite number > 0", "got 0"]),
    "params_for_absent_learner": Case("learners: [mlr]\nparams: {svm: {C: 1}}", "params",
                                      ["not in learners", "svm"]),
    "sites_table_number": Case("sites_table: 3", "sites_table", ["path of a site table", "got 3"]),
    "path_with_nul": Case('data: "a\\0b"', "data", ["must be 'demo' or the path"]),
    "pretrain_epochs_negative": Case("learners: [lstm]\npretrain: {epochs: -1}", "pretrain", ["epochs", "-1"]),
    "unknown_key": Case("learners: [mlr]\nlearner_params: {}", "learner_params", ["unknown config key"]),
    "not_a_mapping": Case("- mlr\n- rf\n", "", ["must be a mapping", "list"]),
    "yaml_syntax": Case("learners: [mlr\n", "", ["cannot parse config"]),
    "json_syntax": Case('{"learners": ["mlr"],}', "", ["cannot parse config"], suffix=".json"),
    "toml_seed_text": Case('seed = "x"\n', "seed", ["must be an integer", "got 'x'"], suffix=".toml"),
    "unknown_format": Case("seed = 1\n", "", ["unknown config format", ".ini"], suffix=".ini"),
    "undecodable_bytes": Case(b"\xff\xfe\x00\x81learners", "", ["cannot parse config"]),
    "several_problems": Case("seed: -1\nfeatures: {doy: maybe}\npool: x\n", "seed",
                             ["features.doy: must be true or false", "pool: unknown pool"], n_lines=3),
    # problems that need the learner registry or the data (found before any run folder is made)
    "learner_unknown": Case("learners: [nope]", "learners", ["unknown learner", "nope", "available"],
                            stage="resolve"),
    "hyperparameter_text": Case("learners: [rf]\nparams: {rf: {n_estimators: abc}}", "n_estimators",
                                ["must be an integer >= 1", "got 'abc'"], stage="resolve"),
    "hyperparameter_unknown": Case("learners: [mlr]\nparams: {mlr: {alpha: 1}}", "params.mlr.alpha",
                                   ["is not a hyperparameter of 'mlr'", "known: fit_intercept"], stage="resolve"),
    "site_unknown": Case("learners: [mlr]\nsites: [XX-Nope]", "sites", ["unknown site id", "XX-Nope"],
                         stage="resolve"),
    "strategy_option_unknown": Case("learners: [rf]\nstrategy_options: {rf: {n_group: 3}}", "strategy_options",
                                    ["unknown option", "n_group"], stage="resolve"),
}


def _write(tmp: Path, name: str, case: Case) -> Path:
    p = tmp / f"{name}{case.suffix}"
    if isinstance(case.text, bytes):
        p.write_bytes(case.text)
    else:
        p.write_text(case.text, encoding="utf-8")
    return p


def _bytes(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


@pytest.fixture(scope="module")
def stored(tmp_path_factory, demo):
    """A runs folder holding one finished run (mlr, one test site of the demo world)."""
    runs = tmp_path_factory.mktemp("runs")
    run_loso(RunConfig(learners=["mlr"], targets=["GPP"], sites=[demo.site_ids[0]], strategy="per-fold"),
             dataset=demo, runs_dir=runs)
    return runs


@pytest.fixture
def runs(stored, tmp_path):
    """A private copy of the stored runs folder, with a check that nothing in it changed."""
    dst = tmp_path / "runs"
    shutil.copytree(stored, dst)
    before = _bytes(dst)
    yield dst
    after = _bytes(dst)
    assert {k: v for k, v in after.items() if k in before} == before, "a stored file changed"
    assert [p.name for p in dst.iterdir()] == [p.name for p in stored.iterdir()], "a run folder was created"


def _check_message(msg: str, case: Case, path: Path | None) -> None:
    lines = msg.strip().splitlines()
    assert len(lines) == case.n_lines, lines
    assert "Traceback" not in msg
    if case.key:
        assert case.key in msg, msg
    for w in case.words:
        assert w in msg, (w, msg)
    if path is not None:
        assert all(str(path) in ln for ln in lines), msg


@pytest.mark.parametrize("name", list(CASES))
def test_api_raises_one_config_error_naming_key_and_problem(name, tmp_path, demo, runs):
    case = CASES[name]
    path = _write(tmp_path, name, case)
    with pytest.raises(ConfigError) as exc:
        cfg = RunConfig.from_file(path)
        assert case.stage == "resolve", "the file was accepted"
        cfg.resolved(demo)
    _check_message(str(exc.value), case, path if case.stage == "file" else None)
    with pytest.raises(ConfigError):  # the runner stops at the same point, before any run folder
        run_loso(path, dataset=demo, runs_dir=runs)


@pytest.mark.parametrize("name", list(CASES))
def test_cli_exits_2_with_the_message_and_no_traceback(name, tmp_path, capsys, runs):
    case = CASES[name]
    path = _write(tmp_path, name, case)
    code = main(["loso", "--config", str(path), "--runs-dir", str(runs), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("fluxcore loso: error: ")
    _check_message(err.removeprefix("fluxcore loso: error: "), case, path if case.stage == "file" else None)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rolling_windows_text", "data_number", "doy_text_no", "undecodable_bytes"])
def test_subprocess_exit_status_and_stderr(name, tmp_path, runs):
    case = CASES[name]
    path = _write(tmp_path, name, case)
    r = subprocess.run([sys.executable, "-m", "fluxcore", "loso", "--config", str(path), "--runs-dir", str(runs),
                        "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stdout == ""
    assert "Traceback" not in r.stderr
    _check_message(r.stderr.removeprefix("fluxcore loso: error: "), case, path)


# ------------------------------------------------------------------ command-line options
@pytest.mark.parametrize("argv, words", [
    (["--config", "__TMP__"], ["is a folder, not a config file"]),
    (["--data", "__CSV__", "--sites-table", "__TMP__/missing.csv"], ["missing.csv"]),
    (["--sites-table", "__TMP__/missing.csv"], ["sites_table: the demo world has its own sites"]),
    (["--sites-table", ""], ["sites_table: must be the path of a site table"]),
    (["--data", "__TMP__/nowhere"], ["nowhere", "does not exist"]),
    (["--pretrain", "epochs=["], ["pretrain", "epochs", "'['"]),
    (["--learners", "mlr", "--param", "mlr.fit_intercept=maybe"], ["fit_intercept", "maybe"]),
    (["--learners", "mlr", "--seed", "4294967296"], ["seed: must be an integer between 0 and 4294967295"]),
    (["--learners", "mlr", "--zones", "arid", "--sites", "XX-Nope"], ["unknown site id", "XX-Nope"]),
])
def test_cli_option_errors(argv, words, tmp_path, capsys, runs):
    synthetic_daily(n_days=60).to_csv(tmp_path / "tidy.csv", index=False)
    argv = [a.replace("__TMP__", str(tmp_path)).replace("__CSV__", str(tmp_path / "tidy.csv")) for a in argv]
    code = main(["loso", "--runs-dir", str(runs), "--quiet", *argv])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)


def test_cli_seed_that_is_not_a_number_is_a_usage_error(capsys, runs):
    with pytest.raises(SystemExit) as exc:
        main(["loso", "--runs-dir", str(runs), "--seed", "x"])
    assert exc.value.code == 2
    assert "argument --seed: invalid int value: 'x'" in capsys.readouterr().err


def test_every_fold_skipped_exits_2_and_marks_the_run_failed(tmp_path, capsys, stored, demo):
    runs = tmp_path / "runs"
    shutil.copytree(stored, runs)
    before = _bytes(runs)
    arid = [s for s in demo.site_ids if demo.zone_of(s) == "arid"][:2]
    argv = ["loso", "--learners", "mlr", "--targets", "GPP", "--sites", ",".join(arid), "--pool", "zone",
            "--runs-dir", str(runs), "--quiet"]
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("min_train_sites: 1000\n")
    code = main([*argv, "--config", str(cfg_file)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert "no fold could run: all 2 fold(s) were skipped" in err
    assert "min_train_sites=1000" in err and "lower min_train_sites (now 1000)" in err and "pool 'all'" in err
    new = [p for p in runs.iterdir() if p.name not in {q.name for q in stored.iterdir()}]
    assert len(new) == 1 and new[0].name in err  # the message names the run folder
    manifest = json.loads((new[0] / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"].startswith("no fold could run")
    assert len(manifest["skipped"]) == 2 and not (new[0] / "predictions.parquet").exists()
    assert {k: v for k, v in _bytes(runs).items() if k in before} == before  # the stored run is intact
    # the same request again: the same clear error, still no results
    assert main([*argv, "--config", str(cfg_file)]) == 2
    assert "no fold could run" in capsys.readouterr().err
    # and from the Python API: the error type
    with pytest.raises(ConfigError, match="no fold could run"):
        run_loso(RunConfig(learners=["mlr"], targets=["GPP"], sites=arid, pool="zone", min_train_sites=1000),
                 dataset=demo, runs_dir=runs)


def _official_folder_without_table(tmp: Path) -> tuple[Path, Path]:
    folder = tmp / "dd"
    folder.mkdir()
    sites = ["XX-Aaa", "XX-Bbb", "XX-Ccc"]
    for k, s in enumerate(sites):
        write_official_dd(folder, s, n_days=120, seed=k)
    table = tmp / "my_sites.csv"
    pd.DataFrame({"SITE_ID": sites, "LAT": [40.0, 45.0, 50.0], "LON": [1.0, 2.0, 3.0],
                  "ARIDITY_INDEX": [0.1, 0.3, 0.8]}).to_csv(table, index=False)
    return folder, table


def test_sites_table_gives_zones_to_official_files(tmp_path, capsys):
    folder, table = _official_folder_without_table(tmp_path)
    assert load_dataset(folder).zone_counts()["unknown"] == 3  # no table: no zones
    runs = tmp_path / "runs"
    base = ["loso", "--data", str(folder), "--learners", "mlr", "--targets", "GPP", "--strategy", "per-fold",
            "--runs-dir", str(runs), "--quiet"]
    code = main([*base, "--zones", "semi-arid"])
    err = capsys.readouterr().err
    assert code == 2 and "no test site left" in err and not runs.exists()
    code = main([*base, "--zones", "semi-arid", "--sites-table", str(table)])
    out, err = capsys.readouterr()
    assert code == 0, err
    run = Path(out.strip().splitlines()[-1])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["zones"] == {"XX-Bbb": "semi-arid"}
    stored_cfg = RunConfig.from_file(run / "config.json")
    assert stored_cfg.sites_table == str(table)
    # the config key does the same as the option
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(f"data: {folder}\nsites_table: {table}\nlearners: [mlr]\ntargets: [GPP]\n"
                        "zones: [semi-arid]\nstrategy: per-fold\n")
    code = main(["loso", "--config", str(cfg_file), "--runs-dir", str(runs), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert Path(out.strip().splitlines()[-1]) == run  # the same run, fetched


def test_sites_table_that_does_not_exist_is_a_data_error(tmp_path):
    folder, _ = _official_folder_without_table(tmp_path)
    cfg = RunConfig(data=str(folder), learners=["mlr"], sites_table=str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="nope.csv"):
        run_loso(cfg, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("target", ["outside", "../outside", "__RUNS__", "__RUNS__/.", "..", ".", "nope"])
def test_runs_delete_refuses_anything_but_a_run_folder_inside_the_runs_folder(target, tmp_path, capsys, runs):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_text("{}")  # looks like a run folder, but is not inside --runs-dir
    target = str(outside) if target == "outside" else target.replace("__RUNS__", str(runs))
    code = main(["runs", "--runs-dir", str(runs), "--delete", target])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert any(w in err for w in ("not a path", "not a folder directly inside", "no such run folder")), err
    assert target in err
    assert (outside / "manifest.json").read_text() == "{}"
