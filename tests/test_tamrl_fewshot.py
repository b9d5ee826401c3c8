"""TAM-RL few-shot mode (``context_months=k``): zero-shot unchanged, the first k months of a
held-out site's fluxes reach only its embedding (through ``predict(context=)``) and are not
scored, nothing else of the site's fluxes reaches the learner, bad values are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from fluxcore.config import RunConfig, check_learner_params  # noqa: E402
from fluxcore.errors import ConfigError, DataError  # noqa: E402
from fluxcore.fewshot import (  # noqa: E402
    context_frame,
    context_rows,
    first_months_mask,
    run_shot_labels,
    shot_label,
)
from fluxcore.foldrun import FoldData, FoldTask, compute_fold  # noqa: E402
from fluxcore.learners import make_learner  # noqa: E402
from fluxcore.learners.tamrl import TAMRLLearner  # noqa: E402
from fluxcore.learners.torchbase import TorchLearner  # noqa: E402
from fluxcore.metrics import site_metrics  # noqa: E402
from fluxcore.strategies.group_finetune import group_finetune  # noqa: E402
from fluxcore.testing import make_synthetic  # noqa: E402

pytestmark = pytest.mark.requires_torch

TARGETS = ["GPP", "ER", "NEE"]
K = 2                                   # months of context
TEST = "S04"                            # the held-out site
N_DAYS = 120                            # from 2010-01-01: Jan + Feb = 59 context days
N_CTX = 59


def params(k: int = K, **kw) -> dict:
    tiny = TAMRLLearner.get_test_params()[0]
    return {**tiny, "context_days": 63, "context_pool": 7, "context_months": k, **kw}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_sites=5, n_days=N_DAYS, seed=3)


def fold_data(X: pd.DataFrame, y: pd.DataFrame, s: np.ndarray, d: np.ndarray) -> FoldData:
    codes, uniq = pd.factorize(s)
    return FoldData(X=X.reset_index(drop=True), y=y.reset_index(drop=True), sites=np.asarray(s),
                    dates=np.asarray(d), feature_names=list(X.columns), site_codes=codes,
                    site_uniques=np.asarray(uniq, dtype=str))


def task(k: int = K) -> FoldTask:
    pool = [f"S{i:02d}" for i in range(5) if f"S{i:02d}" != TEST]
    return FoldTask("tamrl", make_learner("tamrl", **params(k)), TEST, pool, list(TARGETS))


def run_group_finetune(X, y, s, d, k: int = K) -> dict[str, np.ndarray]:
    pools = {site: [o for o in np.unique(s) if o != site] for site in ("S03", TEST)}
    return group_finetune(make_learner("tamrl", **params(k)), X, y, s, d, pools, n_groups=2,
                          finetune_windows=50)


def poisoned(y: pd.DataFrame, s: np.ndarray, d: np.ndarray, inside: bool) -> pd.DataFrame:
    """The test site's fluxes changed (+50, some NaN) inside or outside its first K months."""
    ctx = first_months_mask(s, d, K)
    rows = (s == TEST) & (ctx if inside else ~ctx)
    out = y.copy()
    vals = out.to_numpy(dtype=float, copy=True)
    vals[rows] += 50.0
    vals[np.flatnonzero(rows)[::7], 1] = np.nan
    return pd.DataFrame(vals, columns=y.columns, index=y.index)


# ------------------------------------------------------------------- months and labels
def test_first_months_are_calendar_months_from_each_sites_first_date():
    s = np.array(["A"] * 4 + ["B"] * 3)
    d = pd.to_datetime(["2010-01-15", "2010-02-28", "2010-03-01", "2011-01-01",
                        "2012-05-31", "2012-06-01", "2012-07-01"]).to_numpy()
    np.testing.assert_array_equal(first_months_mask(s, d, 2), [1, 1, 0, 0, 1, 1, 0])
    assert not first_months_mask(s, d, 0).any()
    assert shot_label(0) == "zero-shot" and shot_label(None) == "zero-shot" and shot_label(3) == "3-shot"
    cfg = RunConfig(learners=["tamrl", "rf"], params={"tamrl": {"context_months": 3}})
    assert run_shot_labels(cfg) == {"tamrl": "3-shot", "rf": "zero-shot"}
    # the runner asks only learners with the few_shot tag, and zero-shot ones give no rows
    assert context_rows(make_learner("rf"), s, d) is None
    assert context_rows(make_learner("tamrl"), s, d) is None
    np.testing.assert_array_equal(context_rows(make_learner("tamrl", context_months=1), s, d),
                                  [1, 0, 0, 0, 1, 0, 0])


# ------------------------------------------------------------------- (1) zero-shot unchanged
@pytest.mark.slow
def test_zero_shot_is_the_plain_path_bit_for_bit(data):
    """context_months=0 gives exactly the predictions of the path tamrl took before the
    few-shot mode (TorchLearner.fit / predict, which it did not override), per fold too."""
    X, y, s, d = data
    tr, te = s != TEST, s == TEST
    new = make_learner("tamrl", **params(0)).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    old = make_learner("tamrl", **params(0))
    TorchLearner.fit(old, X[tr], y[tr], sites=s[tr], dates=d[tr])
    p_new = new.predict(X[te], sites=s[te], dates=d[te])
    p_old = TorchLearner.predict(old, X[te], sites=s[te], dates=d[te])
    np.testing.assert_array_equal(p_new, p_old)
    out, info = compute_fold(fold_data(X, y, s, d), task(0))
    assert "context_rows" not in info and out["predicted"].notna().all()
    got = out.pivot(index="DATE", columns="target", values="predicted")[TARGETS].to_numpy()
    np.testing.assert_array_equal(got, p_old)


# ------------------------------------------------------------------- (2) scored rows
def test_scored_rows_of_the_test_site_exclude_its_first_k_months(data):
    X, y, s, d = data
    first_k = pd.Timestamp("2010-03-01")
    out, info = compute_fold(fold_data(X, y, s, d), task())
    assert info["context_rows"] == N_CTX
    ctx = out["DATE"] < first_k
    assert out.loc[ctx, "predicted"].isna().all() and out.loc[~ctx, "predicted"].notna().all()
    assert out.loc[ctx, "observed"].notna().all()  # the observations stay on record
    m = site_metrics(out)
    assert (m["n"] == N_DAYS - N_CTX).all() and np.isfinite(m["R2"]).all()
    # the fast path marks the same rows
    preds = run_group_finetune(X, y, s, d)
    te_d = d[s == TEST]
    assert np.isnan(preds[TEST][te_d < first_k]).all()
    assert np.isfinite(preds[TEST][te_d >= first_k]).all()


@pytest.mark.slow
def test_run_records_k_shot_and_scores_without_the_context_months(tmp_path):
    """run_loso on three demo sites (fast path): metrics count only the later months and
    summary.md labels the learner 1-shot."""
    from fluxcore.loso import load_run, run_loso
    from fluxcore.sources import load_dataset

    ds = load_dataset("demo")
    ds = ds.subset(sites=ds.site_ids[:3])
    cfg = RunConfig(learners=["tamrl"], targets=["GPP"], params={"tamrl": params(1)},
                    strategy_options={"tamrl": {"n_groups": 3, "finetune_windows": 50}})
    run = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path))
    assert run.config.params["tamrl"]["context_months"] == 1
    assert run_shot_labels(run.config) == {"tamrl": "1-shot"}
    assert "tamrl 1-shot" in (run.path / "summary.md").read_text()
    daily = ds.daily
    for site in ds.site_ids:
        rows = daily[daily["SITE_ID"] == site]
        later = ~first_months_mask(rows["SITE_ID"].to_numpy(), rows["DATE"].to_numpy(), 1)
        n_expected = int((later & rows["GPP"].notna().to_numpy()).sum())
        assert int(run.metrics.set_index("SITE_ID").loc[site, "n"]) == n_expected
        p = run.predictions[run.predictions["SITE_ID"] == site]
        first = p["DATE"] < p["DATE"].min() + pd.offsets.MonthBegin(1)
        assert p.loc[first, "predicted"].isna().all()


# ------------------------------------------------------------------- (3) leakage spy
def test_only_the_first_k_months_of_the_held_out_fluxes_reach_the_learner(data, monkeypatch):
    X, y, s, d = data
    seen: list[pd.DataFrame | None] = []
    orig = TAMRLLearner.predict

    def spy(self, X, *, sites, dates, context=None):
        seen.append(context)
        return orig(self, X, sites=sites, dates=dates, context=context)

    monkeypatch.setattr(TAMRLLearner, "predict", spy)
    base, _ = compute_fold(fold_data(X, y, s, d), task())
    ctx = seen[-1]
    assert set(ctx["SITE_ID"]) == {TEST} and len(ctx) == N_CTX
    assert ctx["DATE"].max() < pd.Timestamp("2010-03-01")
    # poisoning the held-out site's fluxes outside its first K months changes nothing
    out, _ = compute_fold(fold_data(X, poisoned(y, s, d, inside=False), s, d), task())
    np.testing.assert_array_equal(out["predicted"].to_numpy(), base["predicted"].to_numpy())
    # ... inside them, it changes the embedding, hence the (scored) predictions
    out_in, _ = compute_fold(fold_data(X, poisoned(y, s, d, inside=True), s, d), task())
    scored = base["predicted"].notna().to_numpy()
    assert not np.array_equal(out_in["predicted"].to_numpy()[scored], base["predicted"].to_numpy()[scored])

    # the fast path (group_finetune) likewise
    g0 = run_group_finetune(X, y, s, d)[TEST]
    g_out = run_group_finetune(X, poisoned(y, s, d, inside=False), s, d)[TEST]
    g_in = run_group_finetune(X, poisoned(y, s, d, inside=True), s, d)[TEST]
    np.testing.assert_array_equal(g_out, g0)
    ok = np.isfinite(g0)
    assert not np.array_equal(g_in[ok], g0[ok])
    assert all(c is None or set(c["SITE_ID"]) <= {"S03", TEST} for c in seen)


def test_training_context_months_carry_no_loss(data, monkeypatch):
    """In fit and fine_tune the first K months of every site get loss weight 0 (their fluxes
    enter the site's embedding); zero-shot passes the weights through unchanged."""
    X, y, s, d = data
    got = {}

    def record(kind):
        def method(self, X, y, *, sites, dates, sample_weight=None, **kw):
            got[kind] = sample_weight
            return self
        return method

    monkeypatch.setattr(TorchLearner, "fit", record("fit"))
    monkeypatch.setattr(TorchLearner, "fine_tune", record("fine_tune"))
    est = make_learner("tamrl", **params())
    est.fit(X, y, sites=s, dates=d)
    est.fine_tune(X, y, sites=s, dates=d, sample_weight=np.full(len(s), 2.0))
    ctx = first_months_mask(s, d, K)
    np.testing.assert_array_equal(got["fit"], np.where(ctx, 0.0, 1.0))
    np.testing.assert_array_equal(got["fine_tune"], np.where(ctx, 0.0, 2.0))
    make_learner("tamrl", **params(0)).fit(X, y, sites=s, dates=d)
    assert got["fit"] is None


# ------------------------------------------------------------------- (4) bad values
@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", None])
def test_bad_context_months_give_one_clear_message(bad, data):
    with pytest.raises(ConfigError, match=r"context_months.*integer >= 0"):
        check_learner_params("tamrl", {"context_months": bad})
    X, y, s, d = data
    with pytest.raises(ConfigError, match=r"context_months.*integer >= 0"):
        make_learner("tamrl", **params(bad)).fit(X, y, sites=s, dates=d)


def test_context_windows_too_short_for_k_months(data):
    X, y, s, d = data
    with pytest.raises(ConfigError, match=r"context_months=3 needs context windows of at least 93 days"):
        make_learner("tamrl", **params(3)).fit(X, y, sites=s, dates=d)


def test_predict_refuses_context_it_may_not_see(data):
    X, y, s, d = data
    tr, te = s != TEST, s == TEST
    est = make_learner("tamrl", **params(max_epochs=1)).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    all_rows = np.ones(te.sum(), dtype=bool)
    with pytest.raises(DataError, match=r"outside the first 2 month"):
        est.predict(X[te], sites=s[te], dates=d[te], context=context_frame(y[te], s[te], d[te], all_rows))
    mask = est.context_rows(s[te], d[te])
    good = context_frame(y[te], s[te], d[te], mask)
    with pytest.raises(DataError, match=r"lacks the column\(s\) NEE"):
        est.predict(X[te], sites=s[te], dates=d[te], context=good.drop(columns="NEE"))
    with pytest.raises(DataError, match="not among the predicted rows"):
        est.predict(X[tr], sites=s[tr], dates=d[tr], context=good)
    # the embedding sees the context: it differs from the embedding without fluxes
    e_ctx = est.embed(X[te], sites=s[te], dates=d[te], context=good)
    e_none = est.embed(X[te], sites=s[te], dates=d[te])
    assert not np.allclose(e_ctx.to_numpy(), e_none.to_numpy())
    zero = make_learner("tamrl", **params(0, max_epochs=1)).fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
    with pytest.raises(ConfigError, match="context_months=0"):
        zero.predict(X[te], sites=s[te], dates=d[te], context=good)
