"""Leave-one-site-out runner: pools, config round trip and validation, fold mechanics,
exactness against scikit-learn LeaveOneGroupOut, fuzzy weights, determinism, cancel."""

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories_loso import (
    SpyLearner,
    make_flux_dataset,
)

from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError
from fluxcore.features import is_site_level
from fluxcore.loso import (
    RunCancelled,
    build_fold_data,
    fold_train_sites,
    load_run,
    plan_folds,
    run_loso,
)

pytestmark = pytest.mark.usefixtures("loso_test_learners")


@pytest.fixture(scope="module")
def ds():
    return make_flux_dataset(n_sites=8, seed=3)


# ------------------------------------------------------------------ training pool
def test_fold_train_sites_all_and_zone(ds):
    cfg = RunConfig(learners=["test_spy"])
    site = ds.site_ids[0]
    pool = fold_train_sites(cfg, ds, site)
    assert site not in pool and len(pool) == ds.n_sites - 1
    cfg.pool = "zone"
    zone = ds.zone_of(site)
    zpool = fold_train_sites(cfg, ds, site)
    assert site not in zpool and zpool
    assert all(ds.zone_of(s) == zone for s in zpool)
    assert len(zpool) == sum(ds.zone_of(s) == zone for s in ds.site_ids) - 1


def test_plan_skips_small_pools(ds):
    cfg = RunConfig(learners=["test_spy"], pool="zone", min_train_sites=2)
    plan = plan_folds(cfg, ds)
    folds, skipped = plan.folds, plan.skipped
    # 8 sites, 4 zones -> every zone pool has 1 site < 2
    assert folds == [] and len(skipped) == 8
    assert "min_train_sites" in skipped[0]["reason"]
    cfg.min_train_sites = 1
    plan = plan_folds(cfg, ds)
    folds, skipped = plan.folds, plan.skipped
    assert len(folds) == 8 and not skipped


def test_test_sites_by_ids_and_zones(ds):
    cfg = RunConfig(learners=["test_spy"], zones=["arid"])
    folds = plan_folds(cfg, ds).folds
    assert {s for _, s, _ in folds} == {s for s in ds.site_ids if ds.zone_of(s) == "arid"}
    cfg = RunConfig(learners=["test_spy"], sites=[ds.site_ids[1], ds.site_ids[2]], zones=["semi-arid"])
    folds = plan_folds(cfg, ds).folds
    assert [s for _, s, _ in folds] == [s for s in ds.site_ids[1:3] if ds.zone_of(s) == "semi-arid"]


# ------------------------------------------------------------------ config
def _cfg():
    return RunConfig(data="demo", learners=["mlr", "rf"], targets=["GPP", "ER"], sites=None,
                     zones=["arid", "humid"], pool="zone", features={"doy": False},
                     params={"rf": {"n_estimators": 7}}, seed=11, qc=None, min_train_sites=3)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_round_trip_yaml_json(tmp_path, suffix):
    cfg = _cfg()
    p = cfg.save(tmp_path / f"run{suffix}")
    back = RunConfig.from_file(p)
    assert back == cfg


def test_config_round_trip_toml(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('data = "demo"\nlearners = ["mlr", "rf"]\ntargets = ["GPP", "ER"]\n'
                 'zones = ["arid", "humid"]\npool = "zone"\nseed = 11\nmin_train_sites = 3\n'
                 '[features]\ndoy = false\n[params.rf]\nn_estimators = 7\n')
    assert RunConfig.from_file(p) == _cfg()
    with pytest.raises(ConfigError, match="TOML is read-only"):
        _cfg().save(tmp_path / "x.toml")


def test_resolved_fills_learner_defaults_and_seed(ds):
    rc = _cfg().resolved(ds)
    assert rc.params["rf"]["n_estimators"] == 7
    assert rc.params["rf"]["random_state"] == 11
    assert "min_samples_leaf" in rc.params["rf"]
    assert "fit_intercept" in rc.params["mlr"]
    assert rc.features.get("doy") is False and "rolling_windows" in rc.features
    assert RunConfig.from_dict(rc.to_dict()) == rc  # JSON-stable


@pytest.mark.parametrize("change, pattern", [
    ({"learners": ["nope"]}, "unknown learner.*nope.*available"),
    ({"targets": ["FOO"]}, "unknown target"),
    ({"zones": ["tropical"]}, "unknown aridity zone"),
    ({"sites": ["XX-Nope"]}, "unknown site id.*XX-Nope"),
    ({"pool": "country"}, "unknown pool"),
    ({"params": {"svm": {"C": 1}}}, "not in learners"),
    ({"params": {"mlr": {"bogus": 1}}}, "bad hyperparameter.*mlr"),
])
def test_config_errors_are_one_clear_message(ds, change, pattern):
    d = RunConfig(learners=["mlr"]).to_dict() | change
    with pytest.raises(ConfigError, match=pattern):
        RunConfig.from_dict(d).resolved(ds)


def test_config_unknown_key_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("learners: [mlr]\nlearner_params: {}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*unknown config key"):
        RunConfig.from_file(p)


# ------------------------------------------------------------------ runner
def test_run_writes_the_documented_files(ds, tmp_path):
    cfg = RunConfig(learners=["test_ols", "test_spy"], targets=["GPP", "ER"])
    run = run_loso(cfg, dataset=ds, runs_dir=tmp_path)
    for f in ("config.json", "manifest.json", "predictions.parquet", "metrics.parquet",
              "zone_summary.csv", "summary.md"):
        assert (run / f).is_file(), f
    res = load_run(run)
    assert res.complete and res.status == "done"
    assert list(res.predictions.columns) == ["SITE_ID", "DATE", "learner", "target", "observed", "predicted"]
    assert len(res.predictions) == 2 * 2 * len(ds.daily)
    assert set(res.metrics.columns) >= {"SITE_ID", "learner", "target", "zone", "R2", "r2", "RMSE", "MAE", "bias", "n"}
    assert len(res.metrics) == 2 * 2 * ds.n_sites
    m = res.manifest
    assert m["data"]["fingerprint"] == ds.fingerprint()
    assert len(m["fold_seconds"]) == 2 * ds.n_sites
    assert m["git_commit"] and m["packages"]["numpy"] == np.__version__
    assert m["created"] and m["finished"] and m["total_seconds"] > 0
    assert list(pd.read_csv(run / "zone_summary.csv").columns) == [
        "target", "zone", "learner", "rmse_mean", "rmse_var", "n_sites"]
    assert "SYNTHETIC" in (run / "summary.md").read_text()
    # observed values are the dataset's
    site = ds.site_ids[0]
    obs = res.predictions.query("SITE_ID == @site and learner == 'test_ols' and target == 'GPP'")
    expect = ds.daily.loc[ds.daily.SITE_ID == site, "GPP"].to_numpy()
    np.testing.assert_array_equal(obs["observed"].to_numpy(), expect)


def test_multi_target_one_fit_per_fold_others_one_per_target(ds, tmp_path):
    run_loso(RunConfig(learners=["test_spy"], targets=["GPP", "ER"]), dataset=ds, runs_dir=tmp_path)
    assert len(SpyLearner.FIT_LOG) == ds.n_sites  # multi_target: one fit per fold


@pytest.mark.slow
def test_mlr_equals_sklearn_leave_one_group_out(ds, tmp_path):
    """Real ``mlr`` LOSO == LeaveOneGroupOut + mean imputation + LinearRegression (1e-6)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import LeaveOneGroupOut

    # DTR = TMAX - TMIN is exactly collinear with TMIN/TMAX: leave it out so that the
    # least-squares problem is full rank and the solution unique to rounding
    cfg = RunConfig(learners=["mlr"], targets=["GPP", "ER"], features={"temperature_range": False})
    res = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path))
    rc = cfg.resolved(ds)
    tab = build_fold_data(ds, rc)
    # mlr leaves the derived site-level features out by default (site_level=False)
    use = [c for c in tab.X.columns if not is_site_level(c)]
    assert 0 < len(use) < tab.X.shape[1]
    X, y, groups = tab.X[use].to_numpy(float), tab.y, tab.sites
    for tr, te in LeaveOneGroupOut().split(X, groups=groups):
        site = groups[te][0]
        imp = SimpleImputer(strategy="mean", keep_empty_features=True).fit(X[tr])
        Xtr, Xte = imp.transform(X[tr]), imp.transform(X[te])
        for t in ("GPP", "ER"):
            ok = np.isfinite(y[t].to_numpy()[tr])
            expect = LinearRegression().fit(Xtr[ok], y[t].to_numpy()[tr][ok]).predict(Xte)
            pr = res.predictions
            got = pr.loc[(pr["SITE_ID"] == site) & (pr["target"] == t), "predicted"].to_numpy()
            np.testing.assert_allclose(got, expect, atol=1e-6, rtol=0)


def test_same_seed_same_numbers(ds, tmp_path):
    cfg = RunConfig(learners=["rf"], targets=["GPP"], params={"rf": {"n_estimators": 5}},
                    sites=ds.site_ids[:3], seed=5)
    a = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path / "a")).predictions
    b = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path / "b")).predictions
    pd.testing.assert_frame_equal(a, b)
    cfg.seed = 6
    c = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path / "c")).predictions
    assert not np.allclose(a["predicted"], c["predicted"])


def test_fuzzy_variant_weights_and_alpha_cut(ds, tmp_path, monkeypatch):
    """weight_fn -> sample_weight per training site; weight-0 sites dropped from fit."""
    import fluxcore.fuzzy as fz

    dropped = ds.site_ids[-1]

    def weight_fn(train_sites, test_site):
        return pd.Series({s: (0.0 if s == dropped else 0.5) for s in train_sites})

    def fake_make_variant(name, dataset, params, random_state=None):
        assert dataset is ds and random_state == 0
        return fz.Variant(learner=SpyLearner(), weight_fn=weight_fn, name=name)

    monkeypatch.setitem(fz.PRESETS, "spy_fuzzy", {"base": "test_spy", "mode": "sites"})
    monkeypatch.setattr(fz, "make_variant", fake_make_variant)
    cfg = RunConfig(learners=["spy_fuzzy"], targets=["GPP"], sites=ds.site_ids[:3])
    res = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path))
    assert set(res.predictions["learner"].astype(str)) == {"spy_fuzzy"}
    assert len(SpyLearner.FIT_LOG) == 3
    for sites, _, wmap in SpyLearner.FIT_LOG:
        assert dropped not in sites
        assert wmap and set(wmap.values()) == {0.5}


def test_cancel_then_resume(ds, tmp_path):
    ev = threading.Event()
    seen = []

    def progress(done, total, eta, msg):
        seen.append(done)
        if done >= 2:
            ev.set()

    cfg = RunConfig(learners=["test_spy"], targets=["GPP"])
    with pytest.raises(RunCancelled):
        run_loso(cfg, dataset=ds, runs_dir=tmp_path, progress=progress, cancel=ev)
    run = next(tmp_path.iterdir())
    res = load_run(run)
    assert res.status == "cancelled" and not res.complete
    n_first = len(SpyLearner.FIT_LOG)
    assert 2 <= n_first < ds.n_sites
    assert res.predictions["SITE_ID"].nunique() == n_first  # partial results are loadable
    run2 = run_loso(cfg, dataset=ds, runs_dir=tmp_path, cancel=lambda: False)
    assert run2 == run
    assert len(SpyLearner.FIT_LOG) == ds.n_sites  # only the missing folds were computed
    assert load_run(run).status == "done"


REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fluxnet2015"


@pytest.mark.realdata
@pytest.mark.slow
def test_real_fluxnet_subset_end_to_end(tmp_path):
    if not (REAL / "daily.parquet").is_file():
        pytest.skip("../shared/data/fluxnet2015 not available")
    from fluxcore.sources import load_dataset

    full = load_dataset(REAL)
    sites = ["US-Ha1", "DE-Tha", "US-MMS", "FR-Pue", "AU-How", "US-Var"]
    ds = full.subset(sites=sites)
    cfg = RunConfig(data=str(REAL), learners=["mlr"], targets=["GPP", "ER"])
    res = load_run(run_loso(cfg, dataset=ds, runs_dir=tmp_path))
    assert res.status == "done" and sorted(res.metrics["SITE_ID"].unique()) == sorted(sites)
    assert res.metrics["n"].min() > 300
    assert np.isfinite(res.metrics[["R2", "r2", "RMSE"]].to_numpy()).all()
    # r² is the R² of the best linear rescaling of the predictions, so R² <= r² <= 1
    assert (res.metrics["r2"] <= 1).all() and (res.metrics["R2"] <= res.metrics["r2"] + 1e-12).all()
    assert res.manifest["data"]["fingerprint"] == ds.fingerprint()
