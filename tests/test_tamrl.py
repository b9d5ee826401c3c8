"""TAM-RL learner: balance loss acts, site embeddings, leakage, saving, embedding figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from factories_learners import make_synthetic  # noqa: E402

from fluxcore.errors import ConfigError  # noqa: E402
from fluxcore.learners import make_learner  # noqa: E402
from fluxcore.learners.tamrl import TAMRLLearner, static_feature_names  # noqa: E402

pytestmark = pytest.mark.requires_torch

SMALL = {"lookback": 7, "hidden_size": 16, "embedding_size": 4, "encoder_size": 8,
         "context_windows": 3, "context_days": 56, "context_pool": 7, "max_epochs": 4,
         "batch_size": 64, "max_windows_per_epoch": 600, "lr": 1e-2}


def tamrl(**kw) -> TAMRLLearner:
    return make_learner("tamrl", **{**SMALL, **kw})


@pytest.fixture(scope="module")
def data():
    X, y, s, d = make_synthetic(n_sites=6, n_days=150, seed=3)
    # NEE measured independently of the partitioned GPP/ER: closure no longer exact in the data
    rng = np.random.default_rng(0)
    y = y.copy()
    y["NEE"] = y["NEE"] + rng.normal(0.0, 1.0, len(y)) + 0.5
    return X, y, s, d


@pytest.fixture(scope="module")
def fitted(data):
    X, y, s, d = data
    tr = s != "S05"
    return tamrl(loss="mse+balance").fit(X[tr], y[tr], sites=s[tr], dates=d[tr])


def _closure(p: np.ndarray) -> float:
    return float(np.median(np.abs(p[:, 2] - (p[:, 1] - p[:, 0]))))


def test_registered_with_tags_and_zero_shot_label():
    est = make_learner("tamrl")
    assert isinstance(est, TAMRLLearner)
    assert est.get_tag("fast_strategy") == "group_finetune"
    assert est.get_tag("multi_target") and est.get_tag("sequence") and est.get_tag("fine_tune")
    assert est.get_params()["context_months"] == 0  # recorded in the run config: zero-shot
    assert est.get_tag("few_shot")
    with pytest.raises(ConfigError, match=r"context_months.*integer >= 0"):
        X, y, s, d = make_synthetic(n_sites=3, n_days=40, seed=1)
        make_learner("tamrl", context_months=-1, **TAMRLLearner.get_test_params()[0]).fit(
            X, y, sites=s, dates=d)


def test_static_attributes_found_by_name():
    names = ["TA", "ELEV", "IGBP_ENF", "ARIDITY_INDEX", "SITE_MEAN_TA", "TA_MEAN7D", "CLAY"]
    assert static_feature_names(names) == ["ELEV", "IGBP_ENF", "ARIDITY_INDEX", "SITE_MEAN_TA", "CLAY"]


def test_balance_term_changes_the_gradients(fitted, data):
    """The registry's balance term reaches the gradients of every part of the network
    (a learner that silently skipped it, as the original code does, fails here)."""
    X, y, s, d = data
    net = fitted.model_
    Xa = X.to_numpy(float)
    call = fitted._call_data(Xa, s, d.astype("datetime64[ns]"), torch.device("cpu"))
    rows = torch.arange(0, 256)
    Y = torch.as_tensor(((y.to_numpy() - fitted.y_mean_) / fitted.y_scale_)[:256], dtype=torch.float32)
    M, w = torch.ones_like(Y), torch.ones(256)
    grads = {}
    for loss, bw in (("mse", 0.0), ("mse+balance", 0.0), ("mse+balance", 5.0)):
        est = tamrl(loss=loss, balance_weight=bw)
        for k in ("y_mean_", "y_scale_", "target_names_"):
            setattr(est, k, getattr(fitted, k))
        net.zero_grad()
        est._build_loss()(fitted._forward(net, fitted._batch(call, rows)), Y, M, w).backward()
        grads[(loss, bw)] = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    for part in ("head.3.weight", "lstm.weight_hh_l0", "to_z.weight", "encoder.0.weight"):
        base = grads[("mse", 0.0)][part]
        assert torch.allclose(grads[("mse+balance", 0.0)][part], base)  # weight 0 = plain MSE
        assert (grads[("mse+balance", 5.0)][part] - base).abs().max() > 1e-4 * base.abs().max()


def test_closure_residual_falls_as_balance_weight_grows(data):
    X, y, s, d = data
    tr = s != "S05"
    res = []
    for bw in (0.0, 1.0, 20.0):
        est = tamrl(loss="mse+balance", balance_weight=bw, max_epochs=6, patience=0)
        est.fit(X[tr], y[tr], sites=s[tr], dates=d[tr])
        res.append(_closure(est.predict(X[~tr], sites=s[~tr], dates=d[~tr])))
    assert res[2] < res[1] < res[0]
    assert res[2] < 0.5 * res[0]


def test_embeddings_differ_between_sites_and_are_stable(fitted, data):
    X, y, s, d = data
    emb = fitted.embed(X, sites=s, dates=d)
    assert list(emb.index) == [f"S{i:02d}" for i in range(6)]
    assert emb.shape[1] == SMALL["embedding_size"]
    assert np.isfinite(emb.to_numpy()).all()
    # deterministic: same rows, same embedding (also when the rows come shuffled)
    perm = np.random.default_rng(1).permutation(len(X))
    emb2 = fitted.embed(X.iloc[perm], sites=s[perm], dates=d[perm])
    np.testing.assert_allclose(emb2.to_numpy(), emb.to_numpy(), rtol=0, atol=1e-6)
    # other windows of the same site (first vs second year of its record, each window a
    # year): close to each other, farther from every other site
    X2, y2, s2, d2 = make_synthetic(n_sites=6, n_days=730, seed=5)
    est = tamrl(context_days=364, context_pool=28, max_epochs=2).fit(X2, y2, sites=s2, dates=d2)
    first = d2 < d2.min() + np.timedelta64(365, "D")
    e1 = est.embed(X2[first], sites=s2[first], dates=d2[first]).to_numpy()
    e2 = est.embed(X2[~first], sites=s2[~first], dates=d2[~first]).to_numpy()
    within = np.linalg.norm(e1 - e2, axis=1)
    between = np.linalg.norm(e1[:, None, :] - e2[None, :, :], axis=2)
    np.fill_diagonal(between, np.inf)
    assert np.all(within < between.min(axis=1))
    assert np.median(np.linalg.norm(emb.to_numpy()[:, None] - emb.to_numpy()[None], axis=2)) > 1e-3


def test_prediction_ignores_the_site_fluxes_and_other_sites(fitted, data):
    """predict takes drivers only; a site's predictions depend on its own rows only."""
    X, y, s, d = data
    te = s == "S05"
    alone = fitted.predict(X[te], sites=s[te], dates=d[te])
    together = fitted.predict(X, sites=s, dates=d)[te]
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)
    assert np.isfinite(alone).all() and alone.shape == (te.sum(), 3)


def test_save_load_round_trip(fitted, data, tmp_path):
    X, y, s, d = data
    path = fitted.save(tmp_path / "tamrl.pt")
    back = TAMRLLearner.load(path)
    assert isinstance(back, TAMRLLearner)
    assert back.static_features_ == fitted.static_features_
    np.testing.assert_array_equal(back.predict(X, sites=s, dates=d), fitted.predict(X, sites=s, dates=d))
    pd.testing.assert_frame_equal(back.embed(X, sites=s, dates=d), fitted.embed(X, sites=s, dates=d))


def test_same_seed_same_numbers(data):
    X, y, s, d = data
    tr = s != "S05"
    a = tamrl(max_epochs=1).fit(X[tr], y[tr], sites=s[tr], dates=d[tr]).predict(X[~tr], sites=s[~tr], dates=d[~tr])
    b = tamrl(max_epochs=1).fit(X[tr], y[tr], sites=s[tr], dates=d[tr]).predict(X[~tr], sites=s[~tr], dates=d[~tr])
    np.testing.assert_array_equal(a, b)


def test_fine_tune_parts(fitted, data):
    import copy

    X, y, s, d = data
    est = copy.deepcopy(fitted)
    before = {n: p.detach().clone() for n, p in est.model_.named_parameters()}
    est.fine_tune(X, y, sites=s, dates=d, epochs=1, max_windows=128, parts="encoder")
    after = dict(est.model_.named_parameters())
    assert not torch.equal(after["to_z.weight"], before["to_z.weight"])
    assert torch.equal(after["head.3.weight"], before["head.3.weight"])
    with pytest.raises(ConfigError, match="parts"):
        est.fine_tune(X, y, sites=s, dates=d, parts="decoder")


# ------------------------------------------------------------------- leakage (runner)
@pytest.mark.slow
def test_loso_group_finetune_never_fits_on_the_predicted_site(monkeypatch, tmp_path):
    """run_loso (fast path group_finetune) with a spy: every call that trains sees only pool
    sites (drivers and fluxes); the predicting call sees the test site's drivers only."""
    from fluxcore.config import RunConfig
    from fluxcore.loso import load_run, run_loso
    from fluxcore.sources import load_dataset

    ds = load_dataset("demo")
    ds = ds.subset(sites=ds.site_ids[:6])
    log: list[tuple[str, int, frozenset]] = []
    orig = {k: getattr(TAMRLLearner, k) for k in ("fit", "fine_tune", "predict")}

    def spy(kind):
        def method(self, X, *args, sites, dates, **kw):
            if kind == "predict":
                log.append((kind, id(self), frozenset(np.unique(sites).tolist())))
                assert not set(np.unique(sites)) & self._seen_sites
            else:
                self._seen_sites = getattr(self, "_seen_sites", set()) | set(np.unique(sites).tolist())
                log.append((kind, id(self), frozenset(self._seen_sites)))
            return orig[kind](self, X, *args, sites=sites, dates=dates, **kw)
        return method

    for k in orig:
        monkeypatch.setattr(TAMRLLearner, k, spy(k))
    tiny = TAMRLLearner.get_test_params()[0]
    cfg = RunConfig(learners=["tamrl"], targets=["GPP", "ER", "NEE"],
                    params={"tamrl": {**tiny, "loss": "mse+balance"}},
                    strategy_options={"tamrl": {"n_groups": 2, "finetune_windows": 100}})
    run = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path))
    preds = [sites for kind, _, sites in log if kind == "predict"]
    assert sorted(next(iter(p)) for p in preds) == sorted(ds.site_ids)
    assert all(len(p) == 1 for p in preds)  # one site's drivers per predicting call
    assert run.config.params["tamrl"]["context_months"] == 0
    assert set(run.metrics["target"]) == {"GPP", "ER", "NEE"}
    # the held-out site's fluxes never matter
    ds2 = ds.subset(sites=ds.site_ids)
    victim = ds.site_ids[0]
    daily = ds2.daily.copy()
    daily.loc[daily["SITE_ID"] == victim, ["GPP", "ER", "NEE"]] += 50.0
    ds2.daily = daily
    run2 = load_run(run_loso(cfg, dataset=ds2, runs_dir=tmp_path / "b"))
    p1 = run.predictions[run.predictions["SITE_ID"] == victim].sort_values(["target", "DATE"])
    p2 = run2.predictions[run2.predictions["SITE_ID"] == victim].sort_values(["target", "DATE"])
    np.testing.assert_allclose(p2["observed"].to_numpy(), p1["observed"].to_numpy() + 50.0)
    np.testing.assert_array_equal(p1["predicted"].to_numpy(), p2["predicted"].to_numpy())


# ------------------------------------------------------------------- embeddings module
def test_site_embeddings_and_figure(fitted, data):
    from fluxcore.embeddings import embedding_figure, project_embeddings, site_embeddings

    X, y, s, d = data
    emb = site_embeddings(fitted, X, s, d)
    assert list(emb.index) == sorted(set(s)) and emb.shape[1] == SMALL["embedding_size"]
    pc = project_embeddings(emb)
    assert list(pc.columns[:2]) == ["PC1", "PC2"] and len(pc) == 6
    assert np.all(np.diff(pc.attrs["explained_variance_ratio"]) <= 1e-12)
    zones = pd.Series(["arid", "humid", "humid", "semi-arid", "humid", "arid"], index=emb.index)
    igbp = pd.Series(["GRA", "ENF", "ENF", "SAV", "DBF", "GRA"], index=emb.index)
    fig = embedding_figure(emb, zones, igbp)
    names = {t.name for t in fig.data}
    assert {"arid", "humid", "semi-arid"} <= {n.split(",")[0].strip() for n in names}
    assert sum(len(t.x) for t in fig.data) == 6
    with pytest.raises(ConfigError, match="zones"):
        embedding_figure(emb, zones.iloc[:3], igbp)


@pytest.mark.slow
def test_run_embeddings_from_a_stored_group_model_and_results_page(tmp_path, monkeypatch):
    """A fast tamrl run keeps its group models; the Results page's embedding figure uses one."""
    from fluxcore.config import RunConfig
    from fluxcore.embeddings import embedding_figure, run_embeddings
    from fluxcore.loso import load_run, run_loso
    from fluxcore.sources import load_dataset

    ds = load_dataset("demo")
    ds = ds.subset(sites=ds.site_ids[:5])
    tiny = TAMRLLearner.get_test_params()[0]
    cfg = RunConfig(data="demo", learners=["tamrl"], targets=["GPP"], params={"tamrl": tiny},
                    strategy_options={"tamrl": {"n_groups": 2, "finetune_windows": 50}})
    run = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path))
    e = run_embeddings(run, ds, "tamrl")
    assert sorted(e.index) == sorted(ds.site_ids) and e.shape[1] == tiny["embedding_size"]
    assert np.isfinite(e.to_numpy()).all()
    fig = embedding_figure(e, ds.sites["ARIDITY_ZONE"], ds.sites["IGBP"])
    assert sum(len(t.x) for t in fig.data) == 5

    # the Results page shows the figure for this run (its runs folder, the demo world)
    pytest.importorskip("streamlit")
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FLUXCORE_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("FLUXCORE_DATA", raising=False)
    app = str(Path(__file__).resolve().parents[1] / "app.py")
    at = AppTest.from_file(app, default_timeout=180)
    at.run()
    at.session_state["run_path"] = str(run.path)
    at.switch_page("pages/results.py").run()
    assert not at.exception, [x.value for x in at.exception]
    assert any("TAM-RL: site embeddings" in x.label for x in at.expander)
    assert any(getattr(c, "key", None) == "res_tamrl_emb" or "res_tamrl_emb" in str(getattr(c, "id", ""))
               for c in at.get("plotly_chart")) or len(at.get("plotly_chart")) >= 3
