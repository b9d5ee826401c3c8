"""Process-model-guided transfer learning: the processmodel learner, the pre-training stage's
calibration and synthetic years, pretrain.learners, pool_fraction, the figure, and a leakage
spy over all folds of the fast path."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError, DataError
from fluxcore.folds import fold_train_sites, pool_sample
from fluxcore.loso import load_run, run_loso
from fluxcore.plots_transfer import delta_r2_by_zone, paired_delta
from fluxcore.pmlearner import ProcessModelLearner, drivers_from_features
from fluxcore.pretrain import PretrainConfig, perturb_features
from fluxcore.sources import load_dataset
from fluxcore.testing import check_learner

TINY = {"lookback": 5, "hidden_size": 8, "max_epochs": 2, "batch_size": 64, "max_windows_per_epoch": 200,
        "max_val_windows": 200, "lr": 1e-2}


@pytest.fixture(scope="module")
def small():
    ds = load_dataset("demo")
    return ds.subset(sites=ds.site_ids[:5])


def _cfg(**kw):
    base = dict(learners=["processmodel", "lstm", "pmtl"], targets=["GPP", "ER"], features={"latitude": True},
                params={"processmodel": {"calibrate": True}, "lstm": TINY, "pmtl": TINY},
                strategy_options={"lstm": {"n_groups": 2}, "pmtl": {"n_groups": 2}},
                pretrain={"epochs": 1, "finetune_epochs": 1, "calibrate": True, "synthetic": ["T+2"],
                          "learners": ["pmtl"]})
    base.update(kw)
    return RunConfig(**base)


@pytest.mark.parametrize("params", ProcessModelLearner.get_test_params())
def test_processmodel_learner_conforms(params):
    check_learner(ProcessModelLearner(**params))


def test_drivers_from_features_reads_named_columns_and_requires_sw_and_temperature():
    X = pd.DataFrame({"SW_IN": [200.0, 210.0], "TA": [10.0, 11.0], "LAT": [45.0, 45.0],
                      "IGBP_ENF": [1.0, 1.0], "IGBP_GRA": [0.0, 0.0]})
    daily, table = drivers_from_features(X, np.array(["A", "A"]), np.array(["2010-01-01", "2010-01-02"],
                                                                            dtype="datetime64[ns]"))
    assert list(table["IGBP"]) == ["ENF"] and list(table["LAT"]) == [45.0]
    assert {"SW_IN", "TA"} <= set(daily.columns)
    with pytest.raises(DataError, match="SW_IN and TA"):
        drivers_from_features(X.drop(columns="SW_IN"), np.array(["A", "A"]), np.zeros(2, "datetime64[ns]"))


def test_pretrain_options_are_checked():
    with pytest.raises(ConfigError, match="unknown scenario"):
        PretrainConfig.from_dict({"synthetic": ["T*2"]})
    with pytest.raises(ConfigError, match="list of names"):
        PretrainConfig.from_dict({"learners": "pmtl"})
    with pytest.raises(ConfigError, match="not fine-tunable"):
        _cfg(pretrain={"learners": ["processmodel"]}).resolved()
    X = pd.DataFrame({"TA": [1.0], "TA_MEAN7D": [2.0], "SITE_MEAN_TA": [3.0], "VPD": [4.0], "P_MEAN7D": [1.0]})
    out = perturb_features(X, "T-2")
    assert out.iloc[0].tolist() == [-1.0, 0.0, 1.0, 4.0, 1.0]
    assert perturb_features(X, "P*1.2")["P_MEAN7D"].iloc[0] == pytest.approx(1.2)
    with pytest.raises(ConfigError, match="water_balance"):
        perturb_features(X.assign(SWC_REL=0.5), "T+2")


def test_pool_fraction_keeps_every_test_site_and_a_fixed_sample_of_training_sites(small):
    cfg = RunConfig(pool_fraction=0.4, seed=3)
    sample = pool_sample(small.site_ids, 0.4, 3)
    assert len(sample) == 2
    for s in small.site_ids:
        assert set(fold_train_sites(cfg, small, s)) == set(sample) - {s}
    assert "pool_fraction" not in RunConfig().to_dict()  # default keeps older run keys
    with pytest.raises(ConfigError, match="pool_fraction"):
        RunConfig(pool_fraction=0.0).check()


def test_delta_figure_has_one_box_per_zone():
    m = pd.DataFrame({"SITE_ID": list("ABCAB C".replace(" ", "")), "learner": ["pmtl"] * 3 + ["lstm"] * 3,
                      "target": "GPP", "R2": [0.5, 0.6, 0.1, 0.4, 0.7, 0.2]})
    d = paired_delta(m, "pmtl", "lstm", "GPP", zones={"A": "arid", "B": "arid", "C": "humid"})
    assert d["delta"].round(6).tolist() == [0.1, -0.1, -0.1]
    fig = delta_r2_by_zone(d, metric_label="ΔR² (pmtl - lstm)")
    assert [t.x[0] for t in fig.data] == ["arid", "humid"]


@pytest.mark.slow
def test_fast_path_leakage_spy_on_all_folds(small, tmp_path):
    """No fitted parameter that predicts a site saw its fluxes: poisoning a held-out site's
    fluxes leaves its own predictions unchanged for every arm (calibrated process model,
    pre-trained + fine-tuned pmtl with calibrated source and synthetic years, lstm), while
    the same poison does change other sites' predictions."""
    cfg = _cfg()
    base_run = run_loso(cfg, dataset=small, runs_dir=tmp_path)
    base = load_run(base_run).predictions
    assert sorted((base_run / "pretrain").glob("calibration-*.json"))
    rec = json.loads(next((base_run / "pretrain").glob("calibration-*.json")).read_text())
    assert len(rec["train_sites"]) < len(small.site_ids)
    man = json.loads((base_run / "manifest.json").read_text())
    assert any("pm_params" in v for v in man["fold_info"].values())
    changed_elsewhere = False
    for site in small.site_ids:
        ds = copy.deepcopy(small)
        m = ds.daily["SITE_ID"].astype(str) == site
        for t in ("GPP", "ER", "NEE"):
            ds.daily.loc[m, t] = ds.daily.loc[m, t] * 50.0 + 7.0
        p = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path)).predictions
        mine = p["SITE_ID"] == site
        for lrn in ("processmodel", "pmtl", "lstm"):
            sel = mine & (p["learner"] == lrn)
            ref = base[(base["SITE_ID"] == site) & (base["learner"] == lrn)]
            np.testing.assert_array_equal(p.loc[sel, "predicted"].to_numpy(), ref["predicted"].to_numpy(),
                                          err_msg=f"{lrn} predictions of {site} depend on its own fluxes")
        other = (~mine) & (p["learner"] == "processmodel")
        ref_o = base[(base["SITE_ID"] != site) & (base["learner"] == "processmodel")]
        changed_elsewhere |= not np.allclose(p.loc[other, "predicted"].to_numpy(), ref_o["predicted"].to_numpy())
    assert changed_elsewhere  # the poison reaches the calibration of the other folds
