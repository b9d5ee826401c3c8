"""fluxcore.presets: the quick preset and the expected duration of a run."""

from __future__ import annotations

import json

import pytest

from fluxcore.config import RunConfig
from fluxcore.presets import (
    DEFAULT_FOLD_SECONDS,
    QUICK,
    apply_preset,
    expected_duration,
    fold_seconds_history,
    preset_of,
)


def test_quick_preset_changes_the_config_and_is_recognised():
    cfg = RunConfig(data="demo", learners=["mlr", "rf", "lstm"], targets=["GPP"], params={"rf": {"max_depth": 4}})
    q = apply_preset(cfg, "quick")
    assert q.pool == "zone" and q.params["rf"] == {"max_depth": 4, "n_estimators": 30}
    assert q.params["lstm"]["max_epochs"] == 3 and "svm" not in q.params
    assert q.strategy_options["rf"] == {"n_groups": 5}
    assert cfg.pool == "all" and cfg.params == {"rf": {"max_depth": 4}}  # the input is unchanged
    assert preset_of(q) is QUICK and preset_of(cfg) is None
    assert preset_of(q.to_dict()) is QUICK
    # a resolved configuration (every default filled in) is still recognised
    assert preset_of(q.resolved()) is QUICK
    # mlr alone has nothing the preset changes: standard settings
    assert preset_of(apply_preset(RunConfig(learners=["mlr"]), QUICK)) is None
    assert "QUICK" in QUICK.description and "not the paper's setting" in QUICK.description


def _fake_run(root, key, learners, fold_seconds, total, compute, pool="all", params=None, name="demo"):
    run = root / key
    run.mkdir(parents=True)
    cfg = RunConfig(data="demo", learners=learners, targets=["GPP"], pool=pool, params=params or {})
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    (run / "manifest.json").write_text(json.dumps({
        "status": "done", "data": {"name": name}, "fold_seconds": fold_seconds,
        "total_seconds": total, "compute_seconds": compute}))


def test_expected_duration_from_measured_fold_times_with_documented_fallback(tmp_path):
    quick = {"rf": {"n_estimators": 30}}
    _fake_run(tmp_path, "a", ["mlr", "rf"], {"mlr/A": 0.1, "mlr/B": 0.1, "rf/A": 2.0, "rf/B": 4.0}, 20, 6.2,
              pool="zone", params=quick)
    _fake_run(tmp_path, "b", ["rf"], {"rf/A": 30.0}, 40, 30)  # standard settings: not mixed in
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{")
    h = fold_seconds_history(tmp_path)
    assert h["n_runs"] == 2
    assert h["fold"][("demo", "quick", "rf")] == pytest.approx(3.0)
    assert h["fold"][("demo", "standard", "rf")] == pytest.approx(30.0)
    assert h["prepare"][("demo", "quick")] == pytest.approx(13.8)
    e = expected_duration(["mlr", "rf"], 10, preset="quick", data_name="demo", history=h)
    assert e.measured and e.seconds == pytest.approx(13.8 + 10 * (0.1 + 3.0))
    # svm never measured here: the documented default, and the estimate says it is a rough guide
    e2 = expected_duration(["rf", "svm"], 10, preset="quick", data_name="demo", history=h)
    assert not e2.measured and e2.per_fold["svm"] == DEFAULT_FOLD_SECONDS[("quick", "svm")]
    assert "rough guide" in e2.source
    # other data: nothing measured
    assert not expected_duration(["rf"], 3, preset="quick", data_name="fluxnet2015", history=h).measured
