"""fluxcore.presets: the quick preset and the expected duration of a run."""

from __future__ import annotations

import json

import pytest

from fluxcore.config import RunConfig
from fluxcore.presets import (
    DEFAULT_FOLD_SECONDS,
    PRESETS,
    QUICK,
    QUICK_POOL_SAMPLE,
    QUICK_ZONE,
    apply_preset,
    expected_duration,
    fold_seconds_history,
    preset_of,
)


def test_quick_preset_changes_the_config_and_is_recognised():
    cfg = RunConfig(data="demo", learners=["mlr", "rf", "lstm"], targets=["GPP"], params={"rf": {"max_depth": 4}})
    q = apply_preset(cfg, "quick")
    assert q.pool == "all" and q.pool_sample == QUICK_POOL_SAMPLE == 40
    assert q.params["rf"] == {"max_depth": 4, "n_estimators": 30}
    assert q.params["lstm"]["max_epochs"] == 3 and "svm" not in q.params
    assert q.strategy_options["rf"] == {"n_groups": 5}
    assert cfg.pool_sample is None and cfg.params == {"rf": {"max_depth": 4}}  # the input is unchanged
    assert preset_of(q) is QUICK and preset_of(cfg) is None
    assert preset_of(q.to_dict()) is QUICK
    # a resolved configuration (every default filled in) is still recognised
    assert preset_of(q.resolved()) is QUICK
    # mlr alone has nothing the preset changes: standard settings
    assert preset_of(apply_preset(RunConfig(learners=["mlr"]), QUICK)) is None
    assert "QUICK" in QUICK.description and "not the paper's setting" in QUICK.description
    assert "sample of 40 training towers drawn from every aridity zone" in QUICK.description
    # the sample is part of the run's settings, hence of its key; a pool_fraction given before goes
    assert q.to_dict()["pool_sample"] == 40 and "pool_sample" not in cfg.to_dict()
    assert apply_preset(RunConfig(learners=["rf"], pool_fraction=0.5), QUICK).check().pool_fraction == 1.0
    # the same learners and hyperparameters without the sample are not the quick preset
    assert preset_of({**q.to_dict(), "pool_sample": 20}) is None


def test_runs_of_the_earlier_zone_pool_quick_preset_are_recognised_as_that_version(tmp_path):
    old = apply_preset(RunConfig(data="demo", learners=["rf"], targets=["GPP"]), QUICK).to_dict()
    old["pool"] = "zone"
    del old["pool_sample"]
    assert preset_of(old) is QUICK_ZONE and QUICK_ZONE.name not in PRESETS
    assert "earlier version" in QUICK_ZONE.description and "zone" in QUICK_ZONE.description
    # their fold times (fewer training towers) do not stand for the current preset's
    for key, pool, sample, sec in (("old", "zone", None, 1.0), ("new", "all", 40, 3.0)):
        run = tmp_path / key
        run.mkdir()
        cfg = {**old, "pool": pool, **({"pool_sample": sample} if sample else {})}
        (run / "config.json").write_text(json.dumps(cfg))
        (run / "manifest.json").write_text(json.dumps({"status": "done", "data": {"name": "demo"},
                                                       "fold_seconds": {"rf/A": sec}}))
    h = fold_seconds_history(tmp_path)
    assert h["fold"][("demo", "quick", "rf")] == 3.0 and h["fold"][("demo", "quick-zone", "rf")] == 1.0
    assert expected_duration(["rf"], 10, preset="quick", data_name="demo", history=h).per_fold["rf"] == 3.0


def _fake_run(root, key, learners, fold_seconds, total, compute, pool="all", params=None, name="demo",
              pool_sample=None):
    run = root / key
    run.mkdir(parents=True)
    cfg = RunConfig(data="demo", learners=learners, targets=["GPP"], pool=pool, params=params or {},
                    pool_sample=pool_sample)
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    (run / "manifest.json").write_text(json.dumps({
        "status": "done", "data": {"name": name}, "fold_seconds": fold_seconds,
        "total_seconds": total, "compute_seconds": compute}))


def test_expected_duration_from_measured_fold_times_with_documented_fallback(tmp_path):
    quick = {"rf": {"n_estimators": 30}}
    _fake_run(tmp_path, "a", ["mlr", "rf"], {"mlr/A": 0.1, "mlr/B": 0.1, "rf/A": 2.0, "rf/B": 4.0}, 20, 6.2,
              pool_sample=QUICK_POOL_SAMPLE, params=quick)
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
