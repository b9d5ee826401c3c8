"""No information from the held-out site reaches anything fitted in its fold.

* spy learner: the sites passed to ``fit`` are exactly the fold's pool, never the test site;
* every registered learner (tiny hyperparameters) and some fuzzy variants: garbage targets
  at the test site do not change its predictions (so no target of it reached fit, scalers,
  early stopping, feature selection or fuzzy weights);
* every registered learner: garbage drivers at the test site do not change the fitted model
  (probed on another site), so no scaler / imputer / feature statistic saw its features;
* LSTM: early-stopping validation sites are training sites.
"""

import numpy as np
import pytest
from factories_loso import (
    SpyLearner,
    make_flux_dataset,
)

from fluxcore.config import RunConfig
from fluxcore.dataset import FluxDataset
from fluxcore.learners import available_learners, make_learner
from fluxcore.loso import (
    build_fold_data,
    compute_fold,
    fit_fold,
    fold_train_sites,
    load_run,
    make_task,
    predict_fold,
    resolve_learners,
    run_loso,
)

BUILTIN = [n for n in available_learners() if not n.startswith("test_") and n != "processmodel"]
FUZZY = ["mlr_fuzzy", "mlr_fuzzycut", "mlr_fuzzyzones"]


pytestmark = pytest.mark.usefixtures("loso_test_learners")


@pytest.fixture(scope="module")
def ds():
    return make_flux_dataset(n_sites=8, seed=7)


def _poison(ds: FluxDataset, site: str, columns, scale=1000.0, shift=500.0) -> FluxDataset:
    daily = ds.daily.copy()
    rows = daily["SITE_ID"] == site
    for c in columns:
        daily.loc[rows, c] = daily.loc[rows, c] * scale + shift
    return FluxDataset(sites=ds.sites, daily=daily, name=ds.name, source=ds.source, synthetic=True)


def _params(name):
    """The learner's (or a variant's base learner's) first ``get_test_params()`` set."""
    if name not in available_learners() and name not in FUZZY:
        return {}
    base = name if name in available_learners() else name.split("_")[0]
    return type(make_learner(base)).get_test_params()[0]


def _fold(ds, cfg, learner, site):
    rc = cfg.resolved(ds)
    payload = build_fold_data(ds, rc)
    learners = resolve_learners(rc, ds)
    task = make_task(rc, learners, learner, site, fold_train_sites(rc, ds, site), torch_threads=1)
    return payload, task


@pytest.mark.parametrize("pool", ["all", "zone"])
def test_spy_never_sees_the_test_site(ds, tmp_path, pool):
    cfg = RunConfig(learners=["test_spy"], targets=["GPP", "ER"], pool=pool, min_train_sites=1)
    run_loso(cfg, dataset=ds, runs_dir=tmp_path)
    assert len(SpyLearner.FIT_LOG) == ds.n_sites
    fits = [s for s, _, _ in SpyLearner.FIT_LOG]
    for site in ds.site_ids:  # folds run in site order
        fit_sites = fits[ds.site_ids.index(site)]
        assert site not in fit_sites
        assert fit_sites == set(fold_train_sites(cfg, ds, site))


@pytest.mark.parametrize("learner", BUILTIN + FUZZY)
def test_test_site_targets_never_reach_fit(ds, learner):
    if learner == "lstm":
        pytest.importorskip("torch")
    site = ds.site_ids[2]
    cfg = RunConfig(learners=[learner], targets=["GPP", "ER"], params={learner: _params(learner)})
    clean = compute_fold(*_fold(ds, cfg, learner, site))[0]
    bad = _poison(ds, site, ["GPP", "ER"])
    dirty = compute_fold(*_fold(bad, cfg, learner, site))[0]
    assert not np.allclose(clean["observed"], dirty["observed"], equal_nan=True)  # poison is real
    np.testing.assert_allclose(dirty["predicted"].to_numpy(), clean["predicted"].to_numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("learner", BUILTIN)
def test_test_site_features_never_reach_fitted_transforms(ds, learner):
    if learner == "lstm":
        pytest.importorskip("torch")
    site, probe = ds.site_ids[2], ds.site_ids[5]
    cfg = RunConfig(learners=[learner], targets=["GPP", "ER"], params={learner: _params(learner)})
    payload, task = _fold(ds, cfg, learner, site)
    models, tr = fit_fold(payload, task)
    assert site not in set(payload.sites[tr])
    bad = _poison(ds, site, [c for c in ds.drivers])
    payload_b, task_b = _fold(bad, cfg, learner, site)
    # the poison changed the test site's features only
    assert not np.allclose(payload_b.X[payload_b.sites == site].to_numpy(float),
                           payload.X[payload.sites == site].to_numpy(float), equal_nan=True)
    models_b, _ = fit_fold(payload_b, task_b)
    rows = payload.sites == probe
    args = (payload.X[rows], payload.sites[rows], payload.dates[rows], 2)
    np.testing.assert_allclose(predict_fold(models_b, *args), predict_fold(models, *args), rtol=0, atol=1e-9)


@pytest.mark.requires_torch
def test_lstm_validation_sites_are_training_sites(ds, tmp_path):
    pytest.importorskip("torch")
    if "lstm" not in BUILTIN:
        pytest.skip("lstm not registered")
    cfg = RunConfig(learners=["lstm"], targets=["GPP", "ER"], sites=ds.site_ids[:2],
                    params={"lstm": _params("lstm")})
    res = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path))
    info = res.manifest["fold_info"]
    assert len(info) == 2
    for site in ds.site_ids[:2]:
        val = set(info[f"lstm/{site}"]["val_sites"])
        assert val, "LSTM recorded no validation sites"
        assert site not in val
        assert val <= set(fold_train_sites(cfg, ds, site))
