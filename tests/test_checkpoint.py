"""Checkpointed fast strategies: a killed batch resumes from its stored units, identically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories_loso import make_flux_dataset

from fluxcore.config import RunConfig
from fluxcore.learners.rf_fast import (
    groups_per_round,
    merged_target_groups,
    rf_site_oob,
    uses_spread_groups,
)
from fluxcore.learners.svm import SVMLearner
from fluxcore.loso import RunCancelled, load_run, run_loso
from fluxcore.runstore import RunStore
from fluxcore.strategies.base import Checkpoint, digest
from fluxcore.strategies.group_holdout import group_holdout


class Stop(Exception):
    pass


def _world(n_sites=6, n=60, seed=0):
    rng = np.random.default_rng(seed)
    sites = np.repeat([f"S{i}" for i in range(n_sites)], n)
    X = rng.normal(size=(len(sites), 4))
    X[rng.random(X.shape) < 0.05] = np.nan
    Y = np.column_stack([np.nan_to_num(X[:, 0]) + rng.normal(size=len(sites)) * 0.1,
                         np.nan_to_num(X[:, 1]) - np.nan_to_num(X[:, 2])])
    Y[rng.random(Y.shape) < 0.03] = np.nan
    pools = {s: [o for o in sorted(set(sites)) if o != s] for s in sorted(set(sites))}
    return X, Y, sites, pools


def _stopper(after: float, calls: list):
    def progress(frac):
        calls.append(frac)
        if frac >= after:
            raise Stop
    return progress


def test_rf_killed_half_way_resumes_with_identical_predictions(tmp_path):
    X, Y, sites, pools = _world()
    kw = dict(trees_per_site=8, n_groups=3, max_samples=0.5, random_state=4, n_jobs=2)
    ref = rf_site_oob(X, Y, sites, pools, **kw)
    store = RunStore(tmp_path / "run")
    with pytest.raises(Stop):
        rf_site_oob(X, Y, sites, pools, **kw, progress=_stopper(0.5, []),
                    checkpoint=Checkpoint(store, "rf", "k1"))
    assert len(store.list_units("rf")) == 1  # one running sum, older rounds discarded
    calls: list = []
    cp = Checkpoint(store, "rf", "k1")
    out = rf_site_oob(X, Y, sites, pools, **kw, progress=calls.append, checkpoint=cp)
    assert cp.n_loaded == 1
    assert calls[0] == pytest.approx(0.5)  # resumed at the stored half
    assert len(calls) == 1 + 4  # four rounds computed instead of eight
    for s in pools:
        np.testing.assert_array_equal(out[s], ref[s])
    # another batch (other key) never reads these units
    other = Checkpoint(store, "rf", "k2")
    rf_site_oob(X, Y, sites, pools, **kw, checkpoint=other)
    assert other.n_loaded == 0


def test_group_holdout_killed_half_way_resumes_identically(tmp_path):
    X, Y, sites, pools = _world(seed=1)
    Xd, Yd = pd.DataFrame(X, columns=list("abcd")), pd.DataFrame(Y, columns=["GPP", "ER"])
    dates = np.zeros(len(sites), dtype="datetime64[ns]")
    tpl = SVMLearner(n_components=20, max_fit_rows=200)
    kw = dict(n_groups=3, n_rounds=2, random_state=2)
    ref = group_holdout(tpl, Xd, Yd, sites, dates, pools, **kw)
    store = RunStore(tmp_path / "run")
    with pytest.raises(Stop):
        group_holdout(tpl, Xd, Yd, sites, dates, pools, **kw, progress=_stopper(0.5, []),
                      checkpoint=Checkpoint(store, "svm", "k"))
    assert len(store.list_units("svm")) == 3  # three of six group models stored
    cp = Checkpoint(store, "svm", "k")
    out = group_holdout(tpl, Xd, Yd, sites, dates, pools, **kw, checkpoint=cp)
    assert cp.n_loaded == 3 and cp.n_saved == 3
    for s in pools:
        np.testing.assert_array_equal(out[s], ref[s])


@pytest.mark.slow
def test_group_holdout_in_processes_equals_threads():
    X, Y, sites, pools = _world(seed=5)
    Xd, Yd = pd.DataFrame(X, columns=list("abcd")), pd.DataFrame(Y, columns=["GPP", "ER"])
    dates = np.zeros(len(sites), dtype="datetime64[ns]")
    tpl = SVMLearner(n_components=20, max_fit_rows=200)
    a = group_holdout(tpl, Xd, Yd, sites, dates, pools, n_groups=3, n_rounds=2, n_jobs=2, blas_threads=1)
    b = group_holdout(tpl, Xd, Yd, sites, dates, pools, n_groups=3, n_rounds=2, n_processes=2, blas_threads=1)
    for s in pools:
        np.testing.assert_array_equal(a[s], b[s])


def test_digest_follows_data_and_settings():
    a = np.arange(6.0).reshape(3, 2)
    assert digest(a, {"x": 1}) == digest(a.copy(), {"x": 1})
    assert digest(a, {"x": 1}) != digest(a, {"x": 2})
    b = a.copy()
    b[0, 0] = 9
    assert digest(a) != digest(b)
    assert not Checkpoint(None, "rf", "k").active
    assert Checkpoint(None, "rf", "k").load("u") is None


def test_groups_follow_the_number_of_test_sites():
    assert groups_per_round(204, 10) == 10  # W keeps its groups
    assert groups_per_round(12, 10) == 4  # one zone: at most three test sites per group
    assert groups_per_round(13, 10) == 5
    assert groups_per_round(12, 10, tests_per_group=2) == 6
    assert groups_per_round(50, 10) == 10
    assert groups_per_round(12, 10, scaled=False) == 10
    assert groups_per_round(3, 10, scaled=False) == 3
    assert groups_per_round(1, 10) == 1
    assert groups_per_round(29, 10, tests_per_group=3) == 10
    assert groups_per_round(25, 10) == 9
    # grouping="auto": spread groups exactly where the tests_per_group rule sets the groups
    assert uses_spread_groups(12, 10) and uses_spread_groups(25, 10)
    assert not uses_spread_groups(30, 10) and not uses_spread_groups(204, 10)
    assert not uses_spread_groups(12, 10, scaled=False)
    assert not uses_spread_groups(12, 10, tests_per_group=1)  # 10 groups: the W rule
    assert groups_per_round(12, 10, tests_per_group=1) == 10  # never more than n_groups


def test_targets_share_trees_only_when_their_rows_nearly_coincide():
    f = np.ones((1000, 2), dtype=bool)
    f[:5, 1] = False
    assert merged_target_groups(f, 0.01) == [[0, 1]]
    assert merged_target_groups(f, 0.0) == [[0], [1]]
    f[:100, 1] = False
    assert merged_target_groups(f, 0.01) == [[0], [1]]


def test_run_killed_in_the_rf_batch_resumes_from_units(tmp_path):
    ds = make_flux_dataset(n_sites=8, seed=3)
    cfg = RunConfig(learners=["rf"], params={"rf": {"n_estimators": 12}})
    ref = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path / "ref")).predictions
    state = {"n": 0}

    def progress(done, total, eta, msg):
        if "rf:" in msg and "%" in msg:
            state["n"] += 1
            if state["n"] == 6:
                raise Stop  # half of the 12 rounds
    with pytest.raises((Stop, RunCancelled)):
        run_loso(cfg, dataset=ds, runs_dir=tmp_path / "run", progress=progress)
    run_dir = next((tmp_path / "run").iterdir())
    assert len(RunStore(run_dir).list_units("rf")) == 1
    msgs: list = []
    out = run_loso(cfg, dataset=ds, runs_dir=tmp_path / "run",
                   progress=lambda d, t, e, m: msgs.append(m))
    first = next(m for m in msgs if "rf:" in m and "%" in m)
    assert "(50%" in first or "(58%" in first  # resumed after the stored rounds
    assert RunStore(out).list_units("rf") == []  # spent units removed
    got = load_run(out).predictions
    key = ["learner", "target", "SITE_ID", "DATE"]
    a = ref.sort_values(key).reset_index(drop=True)
    b = got.sort_values(key).reset_index(drop=True)
    np.testing.assert_array_equal(a["predicted"].to_numpy(), b["predicted"].to_numpy())


def test_tree_rows_floor_keeps_small_pools_useful():
    from fluxcore.learners.rf import tree_rows

    assert tree_rows(366_000, 0.05, 5000) == 18_300  # W: the fraction decides
    assert tree_rows(10_000, 0.05, 5000) == 5000  # a few towers: the floor decides
    assert tree_rows(3000, 0.05, 5000) == 3000  # never more rows than there are
    assert tree_rows(10_000, 0.05, 1) == 500
    assert tree_rows(366_000, 0.05, 5000, 20_000) == 18_300  # the cap does not bind on FLUXNET2015
    assert tree_rows(2_600_000, 0.05, 5000, 20_000) == 20_000  # a 1,000-tower pool: capped
    assert tree_rows(2_600_000, 0.05, 5000, None) == 130_000
    assert tree_rows(10_000, 0.05, 5000, 1000) == 5000  # the floor wins over a smaller cap
