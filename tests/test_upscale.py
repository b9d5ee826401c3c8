"""fluxcore.upscale: final models (stored safely, reloaded identical), chunked upscaling to CF
NetCDF with provenance, regional totals (hand-computed), the `fluxcore upscale` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from factories_grid import make_grid, small_run

from fluxcore import upscale
from fluxcore.cli import main
from fluxcore.errors import ConfigError, DataError
from fluxcore.grid import open_grid, read_grid


@pytest.fixture()
def grid_path(tmp_path):
    return make_grid(tmp_path / "drivers.nc", lat=np.arange(40.5, 45.0), lon=np.arange(-100.5, -96.0))


@pytest.mark.parametrize("learner,rf_params", [("mlr", {}), ("rf", {}), ("rf", {"splitter": "random", "max_features": 1.0})],
                         ids=["mlr", "rf", "rf-extratrees"])
def test_final_model_roundtrip_identical_predictions(tmp_path, grid_path, learner, rf_params):
    run_dir = small_run(tmp_path, grid_path, learners=(learner,), params={"rf": {"n_estimators": 8, **rf_params}})
    prov_path = upscale.fit_final_model(run_dir, learner)
    prov = json.loads(prov_path.read_text())
    ds = read_grid(grid_path)
    assert prov["run_key"] == run_dir.name and prov["data_fingerprint"] == ds.fingerprint()
    assert prov["n_sites"] == ds.n_sites == 24  # all cells, not only the 2 test cells
    assert prov["storage"] == "arrays" and prov["files"][0].endswith(".npz")
    # the stored file is numbers only: np.load without pickle reads it
    with np.load(run_dir / prov["files"][0], allow_pickle=False) as z:
        assert len(z.files) > 1
    model = upscale.load_final_model(run_dir, learner)
    # refit in memory the same way and compare: bit-identical predictions
    from fluxcore.features import FeatureConfig, build_features
    from fluxcore.learners import make_learner

    ft = build_features(ds, FeatureConfig.from_dict(model.features), ["GPP", "ER", "NEE"])
    ref = make_learner(learner, **prov["params"]).fit(ft.X, ft.y, sites=np.asarray(ft.sites), dates=np.asarray(ft.dates))
    np.testing.assert_array_equal(model.predict_dataset(ds), ref.predict(ft.X, sites=ft.sites, dates=ft.dates))
    if learner == "rf":  # the stored forest keeps its kind (extremely randomized or Breiman's)
        kinds = {type(f).__name__ for m in model.models for _, f in m.forests_}
        assert kinds == {"ExtraTreesRegressor" if rf_params else "RandomForestRegressor"}


def test_final_model_errors(tmp_path, grid_path):
    run_dir = small_run(tmp_path, grid_path)
    with pytest.raises(ConfigError, match="not in run"):
        upscale.fit_final_model(run_dir, "rf")
    with pytest.raises(DataError, match="has no final model of learner 'mlr'"):
        upscale.load_final_model(run_dir, "mlr")
    with pytest.raises(DataError, match="is not a run folder"):
        upscale.fit_final_model(tmp_path, "mlr")
    other = read_grid(make_grid(tmp_path / "other.nc", seed=5))
    with pytest.raises(DataError, match="fingerprint"):
        upscale.fit_final_model(run_dir, "mlr", dataset=other)


@pytest.mark.slow
def test_upscale_writes_cf_netcdf_and_chunks_do_not_change_numbers(tmp_path, grid_path):
    run_dir = small_run(tmp_path, grid_path)
    model = upscale.final_model(run_dir, "mlr")
    a = upscale.upscale(model, grid_path, tmp_path / "a.nc", chunk_cells=5)  # rounded up to whole rows
    b = upscale.upscale(model, grid_path, tmp_path / "b.nc", chunk_cells=10_000, scheduler="synchronous")
    with xr.open_dataset(a, engine="h5netcdf") as fa, xr.open_dataset(b, engine="h5netcdf") as fb:
        assert fa["GPP"].dims == ("time", "lat", "lon") and fa["GPP"].shape == (24, 5, 5)
        np.testing.assert_array_equal(fa["GPP"].values, fb["GPP"].values)
        assert np.isnan(fa["GPP"].values[:, 0, 0]).all()  # sea cell
        assert np.isfinite(fa["GPP"].values[:, 1:, 1:]).all()
        for t in ("GPP", "ER", "NEE"):
            assert fa[t].attrs["units"] == "g m-2 month-1" and fa[t].attrs["long_name"]
        assert fa["lat"].attrs["units"] == "degrees_north"
        attrs = fa.attrs
        assert attrs["Conventions"] == "CF-1.8" and attrs["fluxcore_run_key"] == run_dir.name
        assert attrs["fluxcore_data_fingerprint"] == read_grid(grid_path).fingerprint()
        assert attrs["fluxcore_code_version"] and attrs["title"].startswith("SYNTHETIC")
        # the upscaled value of a cell equals the final model's prediction of that cell
        ds = read_grid(grid_path)
        pred = model.predict_dataset(ds)
        first = ds.daily["SITE_ID"] == ds.daily["SITE_ID"].iloc[0]  # cell C0000001 = (lat 0, lon 1)
        np.testing.assert_allclose(fa["GPP"].values[:, 0, 1], pred[first.to_numpy(), 0], rtol=1e-6)


def test_upscale_missing_driver_is_named(tmp_path, grid_path):
    run_dir = small_run(tmp_path, grid_path)
    model = upscale.final_model(run_dir, "mlr")
    ds = xr.open_dataset(grid_path, engine="h5netcdf").load().drop_vars("rsds")
    ds.to_netcdf(tmp_path / "no_sw.nc", engine="h5netcdf")
    with pytest.raises(DataError, match=r"missing variable\(s\): SW_IN") as ei:
        upscale.upscale(model, tmp_path / "no_sw.nc", tmp_path / "o.nc")
    assert ei.value.path == str(tmp_path / "no_sw.nc")


def test_regional_totals_hand_computed():
    # two cells, two months (Jan 2001: 31 d; Feb 2001: 28 d; 2001: 365 d)
    t = pd.to_datetime(["2001-01-01", "2001-02-01"])
    f = xr.Dataset({"GPP": (("time", "cell"), [[100.0, 50.0], [20.0, np.nan]])}, coords={"time": t})
    area = np.array([1e12, 2e12])  # m2
    tot = upscale.regional_totals(f, area, ["humid", "arid"])
    def get(z, m):
        return tot[(tot["zone"] == z) & (tot["DATE"] == t[m])].iloc[0]
    # Jan: 100*1e12 + 50*2e12 = 2e14 g = 0.2 Pg in the month; x 365/31 per year
    assert get("all", 0)["total_PgC"] == pytest.approx(0.2)
    assert get("all", 0)["total_PgC_yr"] == pytest.approx(0.2 * 365 / 31)
    assert get("humid", 0)["total_PgC"] == pytest.approx(0.1)
    assert get("arid", 0)["total_PgC"] == pytest.approx(0.1)
    # Feb: only the humid cell has a value: 20*1e12 = 0.02 Pg
    assert get("all", 1)["total_PgC"] == pytest.approx(0.02) and get("all", 1)["n_cells"] == 1
    assert get("all", 1)["total_PgC_yr"] == pytest.approx(0.02 * 365 / 28)
    assert get("arid", 1)["total_PgC"] == 0.0 and get("all", 0)["area_km2"] == pytest.approx(3e6)


@pytest.mark.slow
def test_cli_upscale_end_to_end(tmp_path, grid_path, capsys):
    run_dir = small_run(tmp_path, grid_path)
    out = tmp_path / "fluxes.nc"
    rc = main(["upscale", run_dir.name, "--runs-dir", str(tmp_path / "runs"), "--grid", str(grid_path),
               "--out", str(out), "--totals", str(tmp_path / "tot.csv"), "--chunk-cells", "10"])
    assert rc == 0, capsys.readouterr().err
    info = json.loads(capsys.readouterr().out)
    assert info["run"] == run_dir.name and info["learner"] == "mlr" and out.is_file()
    tot = pd.read_csv(tmp_path / "tot.csv")
    assert {"DATE", "zone", "target", "total_PgC_yr"} <= set(tot.columns) and "all" in set(tot["zone"])
    rc = main(["upscale", str(run_dir), "--grid", str(grid_path), "--out", str(out), "--learner", "svm"])
    assert rc == 2 and "--learner 'svm' is not in run" in capsys.readouterr().err


def test_cli_totals_path_is_checked_before_upscaling(tmp_path, grid_path, capsys):
    """--totals naming a folder was an IsADirectoryError traceback after the whole upscaling."""
    run_dir = small_run(tmp_path, grid_path)
    out = tmp_path / "fluxes.nc"
    for totals, words in ((tmp_path, "is a folder; give a file name for --totals"),
                          (tmp_path / "nowhere" / "t.csv", "does not exist (folder of the --totals file)")):
        rc = main(["upscale", str(run_dir), "--grid", str(grid_path), "--out", str(out), "--totals", str(totals)])
        err = capsys.readouterr().err
        assert rc == 2 and words in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("option", ["--workers", "--chunk-cells"])
def test_cli_workers_and_chunk_cells_must_be_positive(tmp_path, grid_path, capsys, option):
    """--workers 0 was accepted (and fell back to a default); --chunk-cells 0 too."""
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tmp_path / "run"), "--grid", str(grid_path), "--out", str(tmp_path / "o.nc"),
              option, "0"])
    assert exc.value.code == 2
    assert f"argument {option}: must be an integer >= 1, got '0'" in capsys.readouterr().err


def test_daily_model_refused_for_monthly_grid(tmp_path, grid_path):
    model = upscale.FinalModel(models=[], learner="mlr", targets=["GPP"], features={}, feature_names=["TA"],
                               provenance={"time_step": "daily", "run_key": "k"})
    with pytest.raises(DataError, match="trained on daily data"):
        upscale.check_grid_for_model(model, grid_path)


def test_open_grid_then_predict_grid_is_lazy(tmp_path, grid_path):
    run_dir = small_run(tmp_path, grid_path)
    model = upscale.final_model(run_dir, "mlr")
    pred = upscale.predict_grid(model, open_grid(grid_path), chunk_cells=5)
    assert pred["GPP"].chunks is not None  # nothing computed yet
    assert pred["GPP"].shape == (24, 5, 5)


def test_period_holdout_never_fits_on_test_months(tmp_path, grid_path):
    ds = read_grid(grid_path)
    from factories_grid import CELL_FEATURES

    long, models = upscale.period_holdout(ds, "mlr", test_from="2011-01-01", features=CELL_FEATURES)
    assert set(long["period"]) == {"train", "held-out"}
    held = long[long["period"] == "held-out"]
    assert (pd.DatetimeIndex(held["DATE"]) >= "2011-01-01").all()
    # the model was fitted on 2010 only: refit on 2010 rows gives the same coefficients
    n_train = int(models[0].n_train_[0])
    assert n_train == int(((pd.DatetimeIndex(ds.daily["DATE"]) < "2011-01-01") & ds.daily["GPP"].notna()).sum())
