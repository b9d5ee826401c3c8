"""Typed run configuration (issue 20, item 2): every key has a type and a range, every problem
is one line naming the key path, never a traceback whatever the value (Hypothesis), and the
resolved default config (the run key) is unchanged by the typing."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxcore.config import MAX_SEED, RunConfig
from fluxcore.errors import ConfigError
from fluxcore.features import FeatureConfig
from fluxcore.qc import QCConfig
from fluxcore.schema import show
from fluxcore.sources import load_dataset

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


def _lines(exc: pytest.ExceptionInfo) -> list[str]:
    return str(exc.value).splitlines()


# ------------------------------------------------------------------ the run key
@pytest.mark.slow  # imports torch for the lstm defaults (about 6 s on a shared machine)
def test_default_resolved_config_unchanged(demo):
    """The resolved dict of the default config is hashed into the run key: it must not move."""
    want = json.loads((HERE / "data" / "resolved_default_config.json").read_text())
    got = json.loads(json.dumps(RunConfig().resolved(demo).to_dict()))
    assert got == want
    assert "sites_table" not in got  # a new key left out when unset keeps old keys valid


def test_sites_table_round_trip(tmp_path):
    cfg = RunConfig(data="dd_files", learners=["mlr"], sites_table="tables/sites.csv")
    assert cfg.to_dict()["sites_table"] == "tables/sites.csv"
    back = RunConfig.from_file(cfg.save(tmp_path / "run.yaml"))
    assert back == cfg
    assert RunConfig.from_dict({"sites_table": None}).sites_table is None
    assert RunConfig.from_dict({"data": "x", "sites_table": Path("a.csv")}).to_dict()["sites_table"] == "a.csv"
    with pytest.raises(ConfigError, match="sites_table: the demo world has its own sites"):
        RunConfig(sites_table="a.csv").check()


# ------------------------------------------------------------------ one line per problem
@pytest.mark.parametrize("d, line", [
    ({"features": {"rolling_windows": "x"}},
     "features.rolling_windows: must be a list of integers between 1 and 10000, got 'x'"),
    ({"features": {"rolling_windows": [7, 0]}}, "features.rolling_windows: must be a list of integers"),
    ({"features": {"rolling_windows": [7.5]}}, "features.rolling_windows: must be a list of integers"),
    ({"features": {"doy": "no"}}, "features.doy: must be true or false, got 'no'"),
    ({"features": {"doy": 1}}, "features.doy: must be true or false, got 1"),
    ({"features": {"bucket_capacity_mm": math.inf}}, "features.bucket_capacity_mm: must be a finite number > 0, got inf"),
    ({"features": {"variables": ["FOO"]}}, "features.variables: unknown feature variable(s) ['FOO']"),
    ({"features": {"site_means": ["TAA"]}}, "features.site_means: unknown variable(s) ['TAA']"),
    ({"features": {"bogus": 1}}, "features: unknown feature option(s) ['bogus']"),
    ({"features": "doy"}, "features: must be a mapping of feature options, got 'doy'"),
    ({"data": 42}, "data: must be 'demo' or the path of a data folder or file (text), got 42"),
    ({"data": "  "}, "data: must be 'demo' or the path"),
    ({"sites_table": 3}, "sites_table: must be the path of a site table (text) or null, got 3"),
    ({"seed": True}, "seed: must be an integer between 0 and 4294967295, got True"),
    ({"seed": 1.5}, "seed: must be an integer"),
    ({"seed": MAX_SEED + 1}, "seed: must be an integer between 0 and 4294967295"),
    ({"min_train_sites": 0}, "min_train_sites: must be an integer >= 1, got 0"),
    ({"learners": 42}, "learners: must be a list of learner names, got 42"),
    ({"learners": ["mlr", 3]}, "learners: must be a list of learner names, got ['mlr', 3]"),
    ({"learners": ["mlr", "mlr"]}, "learners: learner listed twice"),
    ({"learners": []}, "learners: no learner given"),
    ({"targets": ["LE"]}, "targets: unknown target(s) ['LE']"),
    ({"zones": ["tropical"]}, "zones: unknown aridity zone(s) ['tropical']"),
    ({"sites": {"a": 1}}, "sites: must be a list of site ids or null"),
    ({"pool": "country"}, "pool: unknown pool 'country'"),
    ({"pool": None}, "pool: must be 'all' or 'zone', got None"),
    ({"strategy": "turbo"}, "strategy: unknown strategy 'turbo'"),
    ({"params": {"mlr": 3}}, "params: must be a mapping {learner: {hyperparameter: value}}, got {'mlr': 3}"),
    ({"params": {"svm": {"C": 1}}, "learners": ["mlr"]}, "params: given for learner(s) ['svm'] that are not in learners"),
    ({"strategy_options": {"rf": {}}, "learners": ["mlr"]}, "strategy_options: given for learner(s) ['rf']"),
    ({"qc": {"min_measured_frac": 1.5}}, "qc.min_measured_frac: must be a finite number between 0 and 1, got 1.5"),
    ({"qc": {"gpp_min": math.nan}}, "qc.gpp_min: must be a finite number or null, got nan"),
    ({"qc": {"range_check": "yes"}}, "qc.range_check: must be true or false, got 'yes'"),
    ({"qc": {"ranges": {"TA": [5, 1]}}}, "qc.ranges['TA']: must be [min, max] with finite numbers min <= max"),
    ({"qc": {"ranges": {"TA": ["a", "b"]}}}, "qc.ranges['TA']: must be [min, max]"),
    ({"qc": {"ranges": {"XYZ": [0, 1]}}}, "qc.ranges: unknown variable 'XYZ'"),
    ({"qc": {"nope": 1}}, "qc: unknown qc option(s) ['nope']"),
    ({"qc": []}, "qc: must be a mapping of QC options or null, got []"),
    ({"pretrain": {"epochs": -1}}, "pretrain: epochs must be an integer >= 1, got -1"),
    ({"learner_params": {}}, "unknown config key(s) ['learner_params']"),
])
def test_each_bad_value_is_one_line_naming_the_key(d, line):
    with pytest.raises(ConfigError) as exc:
        RunConfig.from_dict(d)
    lines = _lines(exc)
    assert len(lines) == 1, lines
    assert lines[0].startswith(line), lines[0]


def test_every_problem_is_listed_with_the_source():
    d = {"data": 42, "seed": -1, "features": {"doy": "no", "rolling_windows": "x", "bogus": 0},
         "qc": {"min_measured_frac": 2}, "pool": "x", "extra": 1}
    with pytest.raises(ConfigError) as exc:
        RunConfig.from_dict(d, source="run.yaml")
    lines = _lines(exc)
    assert all(ln.startswith("run.yaml: ") for ln in lines)
    keys = [ln.removeprefix("run.yaml: ").split(":")[0] for ln in lines]
    assert keys == ["unknown config key(s) ['extra']; known", "data", "seed", "pool", "features",
                    "features.doy", "features.rolling_windows", "qc.min_measured_frac"]


def test_good_values_of_every_type_are_kept():
    cfg = RunConfig.from_dict({"learners": "mlr, rf", "targets": ("GPP",), "zones": ["arid"], "seed": MAX_SEED,
                               "features": {"rolling_windows": (3,), "doy": False, "bucket_capacity_mm": 80},
                               "qc": {"gpp_min": None, "ranges": {"TA": (-30, 40)}, "min_measured_frac": 0},
                               "params": None, "min_train_sites": 1})
    assert cfg.learners == ["mlr", "rf"] and cfg.targets == ("GPP",) and cfg.params == {}
    assert FeatureConfig.from_dict(cfg.features).rolling_windows == (3,)
    assert QCConfig.from_dict(cfg.qc).range_of("TA") == (-30.0, 40.0)


def test_numpy_scalars_count_as_the_values_they_hold():
    import numpy as np

    cfg = RunConfig(seed=np.int64(3), min_train_sites=np.int32(2), learners=["mlr"]).check()
    assert cfg.to_dict()["seed"] == 3 and type(cfg.to_dict()["seed"]) is int
    assert FeatureConfig(rolling_windows=(np.int64(7),), doy=np.bool_(False)).doy is not True
    with pytest.raises(ConfigError, match=r"seed: must be an integer .*got np.float64\(1.5\)"):
        RunConfig(seed=np.float64(1.5)).check()


def test_feature_and_qc_configs_check_their_own_options():
    with pytest.raises(ConfigError, match=r"features.doy: must be true or false, got 'no'"):
        FeatureConfig(doy="no")
    with pytest.raises(ConfigError, match="features.rolling_min_periods: must be an integer between 1 and 10000"):
        FeatureConfig(rolling_min_periods=0)
    assert FeatureConfig(rolling_windows=[7]).rolling_windows == [7]  # a list is fine too
    with pytest.raises(ConfigError, match=r"qc.min_ta_measured_frac: must be a finite number between 0 and 1"):
        QCConfig(min_ta_measured_frac=True)
    with pytest.raises(ConfigError) as exc:
        QCConfig.from_dict({"gpp_min": "low", "ranges": {"VPD": (0, math.inf)}, "zzz": 0})
    assert len(_lines(exc)) == 3


def test_validate_lists_registry_and_dataset_problems(demo):
    cfg = RunConfig(learners=["mlr", "nope"], targets=["GPP"], sites=["XX-Nope"], params={"mlr": {"bogus": 1}})
    with pytest.raises(ConfigError) as exc:
        cfg.validate(demo)
    lines = _lines(exc)
    assert lines[0].startswith("learners: unknown learner(s) ['nope']; available: ")
    assert any("bad hyperparameter for learner 'mlr'" in ln for ln in lines)
    assert any(ln.startswith("sites: unknown site id(s) ['XX-Nope']") for ln in lines)


def test_show_is_short_and_one_line():
    assert show("a\nb") == "'a\\nb'"
    assert len(show(list(range(1000)))) <= 60
    assert show(math.nan) == "nan"


# ------------------------------------------------------------------ property-based
_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
_values = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=3)
                       | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=8)
_KEYS = [f.name for f in fields(RunConfig)]
_FEATURE_KEYS = [f.name for f in fields(FeatureConfig)]
_QC_KEYS = [f.name for f in fields(QCConfig)]


def _outcome(d: dict, dataset=None) -> RunConfig | ConfigError:
    """A RunConfig or the ConfigError; anything else fails the property (and its message is one line each)."""
    try:
        cfg = RunConfig.from_dict(d)
        if dataset is not None:
            cfg.resolved(dataset)
        return cfg
    except ConfigError as exc:
        lines = str(exc).splitlines()
        assert lines and all(ln.strip() and len(ln) < 400 for ln in lines), lines
        return exc


_PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(key=st.sampled_from(_KEYS + ["bogus"]), value=_values)
def test_any_value_of_any_key_gives_a_config_or_a_config_error(key, value):
    out = _outcome({"learners": ["mlr"], key: value})
    if isinstance(out, ConfigError) and key != "bogus":
        assert key in str(out) or "learner" in str(out)


@_PROPERTY
@given(d=st.dictionaries(st.sampled_from(_KEYS), _values, max_size=4))
def test_random_configs_give_a_config_or_a_config_error(d):
    _outcome(d)


@_PROPERTY
@given(features=st.dictionaries(st.sampled_from(_FEATURE_KEYS), _values, max_size=3),
       qc=st.dictionaries(st.sampled_from(_QC_KEYS), _values, max_size=3))
def test_random_feature_and_qc_options_give_a_config_or_a_config_error(features, qc):
    out = _outcome({"learners": ["mlr"], "features": features, "qc": qc})
    if isinstance(out, ConfigError):
        assert all(ln.startswith(("features", "qc")) for ln in str(out).splitlines())


@_PROPERTY
@given(learner=st.sampled_from(["mlr", "rf", "svm"]), name=st.text(max_size=12) | st.sampled_from(
    ["n_estimators", "C", "fit_intercept", "max_depth", "gamma", "epsilon", "min_samples_leaf", "random_state"]),
    value=_values, seed=_values)
def test_random_hyperparameters_resolve_or_give_a_config_error(demo, learner, name, value, seed):
    _outcome({"learners": [learner], "targets": ["GPP"], "params": {learner: {name: value}}, "seed": seed},
             dataset=demo)
