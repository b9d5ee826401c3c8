"""Upscaling: a run's final model, predictions for every grid cell and month, regional totals.

Workflow (``docs/regional.md``)::

    path = fit_final_model(run_dir, "rf")            # once per run and learner, stored in the run
    model = load_final_model(run_dir, "rf")
    upscale(model, "drivers.nc", "fluxes.nc")         # chunked with Dask, CF NetCDF out
    regional_totals(fluxes, area, zones)              # [PgC yr-1] per month and aridity zone

**Final model.** :func:`fit_final_model` re-fits the run's learner with the run's resolved
config (hyperparameters, seed, features, targets, pre-training stage) on *all* the run's sites
(every site of the run's dataset, whatever ``sites`` / ``zones`` / ``pool`` chose as test
sites): the leave-one-site-out folds measure skill, the final model is what is mapped. Torch
learners are stored with the run store's ``save_model`` (their ``get_state()``: tensors and
plain values, read with ``weights_only=True``); other learners as plain arrays in one
``.npz`` (:mod:`fluxcore.finalmodel`; nothing is unpickled). Provenance goes to
``<run>/final/<learner>.json``: run key, data fingerprint, code version of the run and of
the fit, features, targets, sites and rows used.

**Chunks.** A cell's features depend only on that cell's own months (rolling and site means
are per cell), so the grid is cut along cells: each Dask block holds every month of
``chunk_cells`` cells, builds their features and predicts them; blocks are written to the
output file as they finish (memory is bounded by the blocks in flight). The same code runs on
the local threaded scheduler (default, one thread per core), synchronously, or on a Dask
cluster (``scheduler="local"`` or ``"tcp://host:port"``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .config import RunConfig
from .errors import ConfigError, DataError, FluxcoreError
from .features import FeatureConfig, build_features
from .finalmodel import decode_learner, encode_learner
from .foldrun import FoldTask, build_fold_data, fit_fold, resolve_learners
from .grid import cell_zones, open_grid, write_grid
from .learners import available_learners
from .pretrain import PretrainConfig, PretrainStage, source_targets
from .provenance import code_version
from .runner import load_config_dataset
from .runstore import RunStore, is_run_folder
from .storefiles import atomic_write_json, now_iso
from .timeres import cells_dataset, to_monthly, unit_of
from .variables import VARIABLES

#: Long names written to the output NetCDF.
LONG_NAMES = {"GPP": "gross primary production (carbon), monthly sum",
              "ER": "ecosystem respiration (carbon), monthly sum",
              "NEE": "net ecosystem exchange (carbon; negative = uptake), monthly sum"}
#: Grams in a petagram.
G_PER_PG = 1e15


# --------------------------------------------------------------------------- final model
@dataclass
class FinalModel:
    """A run's learner fitted on all its sites (what :func:`upscale` predicts with).

    Attributes
    ----------
    models : list
        One fitted multi-target learner, or one learner per target (in ``targets`` order).
    learner : str
        Learner name in the run.
    targets : list of str
    features : dict
        The run's resolved :class:`~fluxcore.features.FeatureConfig` options.
    feature_names : list of str
        Feature columns the models were fitted on (in order).
    provenance : dict
        ``run_key, data_fingerprint, run_code_version, fit_code_version, time_step, n_sites,
        n_rows, learner, params, synthetic, created``.
    """

    models: list
    learner: str
    targets: list[str]
    features: dict
    feature_names: list[str]
    provenance: dict = field(default_factory=dict)

    @property
    def drivers(self) -> list[str]:
        """Canonical variables the features use directly (what a grid must provide)."""
        return [f for f in self.feature_names if f in VARIABLES]

    def predict_dataset(self, dataset) -> np.ndarray:
        """Predictions ``(n_rows, n_targets)`` [gC m-2 month-1] for a (cells) dataset, rows of
        ``dataset.daily``.

        Raises
        ------
        DataError
            The dataset cannot give every feature the model was fitted on.
        """
        ft = build_features(dataset, FeatureConfig.from_dict(dict(self.features)), [])
        missing = [f for f in self.feature_names if f not in ft.X.columns]
        if missing:
            raise DataError(dataset.source or dataset.name,
                            f"cannot build feature(s) {missing} that the {self.learner} model of run "
                            f"{self.provenance.get('run_key', '?')} uses (missing driver or catalogue "
                            "values; train the run with features both data sets have, e.g. "
                            "igbp=False, site_attributes=[])")
        X = ft.X[self.feature_names]
        kw = {"sites": np.asarray(ft.sites).astype(str), "dates": np.asarray(ft.dates)}
        if len(self.models) == 1 and self.models[0].get_tag("multi_target", False):
            return np.asarray(self.models[0].predict(X, **kw), dtype=float).reshape(len(X), -1)
        return np.column_stack([np.asarray(m.predict(X, **kw), dtype=float).reshape(len(X), -1)[:, 0]
                                for m in self.models])


def _is_torch(model: Any) -> bool:
    return hasattr(model, "get_state") and hasattr(model, "set_state")


def _final_json(run_dir: Path, learner: str) -> Path:
    from .storefiles import safe_name

    return run_dir / "final" / f"{safe_name(learner, 'learner')}.json"


def run_dataset(run_dir: str | Path, dataset=None):
    """The dataset of a run, checked against the run's data fingerprint.

    ``dataset`` is used when given; else ``config.data`` is loaded: a ``.nc`` file with
    :func:`fluxcore.grid.read_grid`, ``"demogrid"`` with
    :func:`fluxcore.demogrid.demo_grid_dataset`, anything else with the run's loader (also
    tried aggregated to months by :func:`fluxcore.timeres.to_monthly`).

    Raises
    ------
    DataError
        Not a run folder, or the data no longer have the run's fingerprint.
    """
    run_dir = Path(run_dir)
    if not is_run_folder(run_dir):
        raise DataError(run_dir, "is not a run folder (no manifest.json / config.json)")
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    cfg = RunConfig.from_file(store.config_path)
    want = (manifest.get("data") or {}).get("fingerprint")
    if dataset is None:
        dataset = _load_run_data(cfg)
    if want and dataset.fingerprint() != want:
        if dataset.time_step == "daily":
            monthly = to_monthly(dataset)
            if monthly.fingerprint() == want:
                return monthly, cfg, manifest
        raise DataError(run_dir, f"the data {cfg.data!r} now have fingerprint {dataset.fingerprint()}, the run "
                                 f"was made on {want}; give the run's dataset (dataset=...) or rerun")
    return dataset, cfg, manifest


def _load_run_data(cfg: RunConfig):
    data = str(cfg.data)
    if data.lower().endswith((".nc", ".nc4", ".netcdf")):
        from .grid import read_grid

        return read_grid(data)
    if data.startswith("demogrid"):
        from .demogrid import demo_grid_dataset

        return demo_grid_dataset()
    return load_config_dataset(cfg)


def fit_final_model(run_dir: str | Path, learner: str, *, dataset=None) -> Path:
    """Fit the run's ``learner`` on all the run's sites and store it in the run folder.

    Parameters
    ----------
    run_dir : path
        A run folder (any status: only its config and data are used).
    learner : str
        A learner of the run (``mlr``, ``rf``, ``lstm``, ``mlp``... any registered name).
    dataset : FluxDataset, optional
        The run's data (needed when the run was made on an in-memory dataset); checked
        against the run's data fingerprint.

    Returns
    -------
    Path
        ``<run>/final/<learner>.json``, the provenance record (it names the model file:
        ``models/<learner>/final[-<target>].pt`` for torch learners, else
        ``units/final-<learner>/model.npz``).

    Raises
    ------
    ConfigError
        The learner is not in the run, is a fuzzy variant (its weights need a test site), or
        cannot be stored safely.
    DataError
        Not a run folder, or the data do not match the run.
    """
    run_dir = Path(run_dir)
    dataset, cfg, manifest = run_dataset(run_dir, dataset)
    if learner not in cfg.learners:
        raise ConfigError(f"learner {learner!r} is not in run {run_dir.name} (learners: {cfg.learners})")
    if learner not in available_learners():
        raise ConfigError(f"learner {learner!r} is a variant with per-test-site weights; a final model "
                          f"needs a plain learner ({', '.join(sorted(available_learners()))})")
    rc = RunConfig.from_dict(cfg.to_dict())
    rc.learners = [learner]
    templates = resolve_learners(rc, dataset)
    data = build_fold_data(dataset, rc)
    if rc.pretrain:
        pc = PretrainConfig.from_dict(rc.pretrain)
        data.pretrain = PretrainStage(pc, source_targets(pc.source, dataset, list(rc.targets)))
    sites = [str(s) for s in data.site_uniques]
    t0 = time.perf_counter()
    task = FoldTask(learner, templates[learner][0], test_site="", train_sites=sites, targets=list(rc.targets))
    models, rows = fit_fold(data, task)
    seconds = time.perf_counter() - t0
    store = RunStore(run_dir)
    prov = {
        "run_key": run_dir.name, "learner": learner, "targets": list(rc.targets),
        "data_fingerprint": dataset.fingerprint(), "data_source": str(dataset.source or cfg.data),
        "synthetic": bool(dataset.synthetic), "time_step": dataset.time_step,
        "run_code_version": manifest.get("code_version"), "fit_code_version": code_version(),
        "features": dict(rc.features), "feature_names": [str(c) for c in data.X.columns],
        "params": {k: _plain(v) for k, v in models[0].get_params().items()},
        "seed": int(rc.seed), "n_sites": len(sites), "n_rows": int(len(rows)),
        "fit_seconds": round(seconds, 3), "created": now_iso(),
        "trained_on": "all sites of the run's dataset (the LOSO folds measure skill; this model maps)",
    }
    names = ["final"] if len(models) == 1 else [f"final-{t}" for t in rc.targets]
    if _is_torch(models[0]):
        files = [str(store.save_model(learner, n, m.get_state()).relative_to(run_dir))
                 for n, m in zip(names, models, strict=True)]
        prov["storage"] = "torch"
    else:
        arrays: dict[str, np.ndarray] = {}
        metas = []
        for i, m in enumerate(models):
            a, meta = encode_learner(m)
            arrays.update({f"m{i}/{k}": v for k, v in a.items()})
            metas.append(meta)
        files = [str(store.save_unit(f"final-{learner}", "model", arrays,
                                     {"models": metas, "provenance": prov}).relative_to(run_dir))]
        prov["storage"] = "arrays"
    prov["files"] = files
    out = _final_json(run_dir, learner)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, prov)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def load_final_model(run_dir: str | Path, learner: str) -> FinalModel:
    """Read the final model stored by :func:`fit_final_model`.

    Raises
    ------
    DataError
        No final model of ``learner`` in the run (run :func:`fit_final_model` or
        ``fluxcore upscale`` first), or a damaged model file.
    """
    run_dir = Path(run_dir)
    pj = _final_json(run_dir, learner)
    if not pj.is_file():
        raise DataError(run_dir, f"has no final model of learner {learner!r} (fit one with "
                                 f"'fluxcore upscale {run_dir} --learner {learner} --fit' or fit_final_model)")
    try:
        prov = json.loads(pj.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(pj, f"cannot be read ({exc})") from None
    store = RunStore(run_dir)
    models: list = []
    if prov.get("storage") == "torch":
        from .learners import make_learner

        for f in prov.get("files", []):
            name = Path(f).stem
            state = store.load_model(learner, name)
            if state is None:
                raise DataError(run_dir / f, "is missing or damaged; refit the final model")
            models.append(make_learner(str(state.get("learner", learner))).set_state(state))
    else:
        got = store.load_unit(f"final-{learner}", "model")
        if got is None:
            raise DataError(run_dir / "units", f"final model of {learner!r} is missing or damaged; refit it")
        arrays, meta = got
        for i, m in enumerate(meta.get("models", [])):
            pre = f"m{i}/"
            models.append(decode_learner({k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)}, m,
                                         str(store.unit_path(f"final-{learner}", "model"))))
    if not models:
        raise DataError(pj, "lists no model file")
    return FinalModel(models=models, learner=learner, targets=list(prov["targets"]),
                      features=dict(prov["features"]), feature_names=list(prov["feature_names"]),
                      provenance=prov)


def final_model(run_dir: str | Path, learner: str, *, dataset=None, refit: bool = False) -> FinalModel:
    """The stored final model, fitted first when absent (or when ``refit``)."""
    if refit or not _final_json(Path(run_dir), learner).is_file():
        fit_final_model(run_dir, learner, dataset=dataset)
    return load_final_model(run_dir, learner)


# ----------------------------------------------------------------------------- predicting
def _predict_block(block: xr.Dataset, model: FinalModel, static: list[str]) -> xr.Dataset:
    """Predictions for one block of cells (all months); cells without drivers get NaN."""
    nt, nc = block.sizes["time"], block.sizes["cell"]
    k = len(model.targets)
    out = np.full((k, nt, nc), np.nan, dtype=np.float32)
    tv = [v for v in block.data_vars if "time" in block[v].dims and v not in model.targets]
    vals = {v: np.asarray(block[v].values, dtype=float) for v in tv}
    land = np.zeros(nc, dtype=bool)
    for a in vals.values():
        land |= np.isfinite(a).any(axis=0)
    if land.any():
        idx = np.flatnonzero(land)
        cid = np.char.add("C", np.char.zfill(np.asarray(block["cell"].values)[idx].astype(str), 7))
        cells = pd.DataFrame({"SITE_ID": cid, "LAT": np.asarray(block["lat"].values)[idx],
                              "LON": np.asarray(block["lon"].values)[idx]})
        for v in static:
            cells[v] = np.asarray(block[v].values, dtype=float)[idx]
        frame = {"SITE_ID": np.repeat(cid, nt), "DATE": np.tile(block["time"].values.astype("datetime64[ns]"),
                                                                  len(idx))}
        for v in tv:
            frame[v] = vals[v][:, idx].T.reshape(-1)
        ds = cells_dataset(cells, pd.DataFrame(frame), "monthly", name="grid block", source="grid block")
        pred = model.predict_dataset(ds)  # rows sorted by SITE_ID, DATE = cell-major like the frame
        order = np.argsort(cid, kind="stable")
        p = pred.reshape(len(idx), nt, k)
        res = np.empty_like(p)
        res[order] = p
        out[:, :, idx] = np.transpose(res, (2, 1, 0))
    return xr.Dataset({t: (("time", "cell"), out[j]) for j, t in enumerate(model.targets)},
                      coords={"time": block["time"], "cell": block["cell"]})


def check_grid_for_model(model: FinalModel, grid: str | Path, n_cells: int = 64) -> xr.Dataset:
    """Open ``grid`` requiring the model's drivers and predict a few cells as a check.

    Returns the opened grid; raises :class:`DataError` naming the grid file when a driver or a
    feature is missing, or when the model was trained on daily data.
    """
    if model.provenance.get("time_step", "monthly") != "monthly":
        raise DataError(grid, f"the {model.learner} model of run {model.provenance.get('run_key')} was trained "
                              f"on {model.provenance.get('time_step')} data; upscaling monthly grids needs a "
                              "run on monthly data (towers aggregated to months, or grid cells)")
    ds = open_grid(grid, require=model.drivers)
    land = None
    for v in [v for v in ds.data_vars if "time" in ds[v].dims]:
        f = np.isfinite(ds[v].isel(cell=slice(0, 20_000))).any("time").values
        land = f if land is None else land | f
    idx = np.flatnonzero(land)[:n_cells] if land is not None else np.zeros(0, int)
    if len(idx):
        static = [v for v in ds.data_vars if "time" not in ds[v].dims]
        try:
            _predict_block(ds.isel(cell=idx).compute(), model, static)
        except DataError as exc:
            raise DataError(grid, exc.problem) from None
    return ds


def predict_grid(model: FinalModel, grid: str | Path | xr.Dataset, *, chunk_cells: int = 20_000) -> xr.Dataset:
    """Lazy predictions for every cell and month of a grid (Dask-backed; nothing computed yet).

    Parameters
    ----------
    model : FinalModel
    grid : path or xarray.Dataset
        A NetCDF file (opened with :func:`fluxcore.grid.open_grid`) or an opened grid.
    chunk_cells : int
        Cells per block (all months of a cell are in one block). Rounded to whole grid rows
        for the grid layout.

    Returns
    -------
    xarray.Dataset
        ``GPP, ER, NEE`` (the model's targets) [gC m-2 month-1] on ``(time, lat, lon)`` for
        the grid layout or ``(time, cell)`` with ``lat(cell), lon(cell)`` for the cell layout;
        NaN where a cell has no driver values (sea).
    """
    ds = grid if isinstance(grid, xr.Dataset) else check_grid_for_model(model, grid)
    gridded = ds.attrs.get("fluxcore_layout") == "grid"
    n = max(1, int(chunk_cells))
    if gridded:
        nlon = len(ds.attrs["fluxcore_lon"])
        n = max(nlon, (n // nlon) * nlon)
    keep = [v for v in ds.data_vars if v != "cell_area" and v not in model.targets]
    static = [v for v in keep if "time" not in ds[v].dims]
    src = ds[keep].chunk({"cell": n, "time": -1})
    src = src.assign_coords(lat=src["lat"].chunk({"cell": n}), lon=src["lon"].chunk({"cell": n}))
    template = xr.Dataset({t: (("time", "cell"), _dask_empty(src)) for t in model.targets},
                          coords={"time": src["time"], "cell": src["cell"]})
    pred = xr.map_blocks(_predict_block, src, args=(model, static), template=template)
    pred = pred.drop_vars([c for c in ("lat", "lon") if c in pred.coords])
    if gridded:
        lat, lon = np.asarray(ds.attrs["fluxcore_lat"]), np.asarray(ds.attrs["fluxcore_lon"])
        out = xr.Dataset({t: (("time", "lat", "lon"), pred[t].data.reshape(len(ds["time"]), len(lat), len(lon)))
                          for t in model.targets},
                         coords={"time": ds["time"].values, "lat": lat, "lon": lon})
    else:
        out = pred.assign_coords(lat=("cell", np.asarray(ds["lat"].values)),
                                 lon=("cell", np.asarray(ds["lon"].values)))
    return out


def _dask_empty(src: xr.Dataset):
    import dask.array as da

    return da.empty((src.sizes["time"], src.sizes["cell"]), chunks=((src.sizes["time"],), src.chunks["cell"]),
                    dtype=np.float32)


def cf_attributes(pred: xr.Dataset, model: FinalModel, grid_path: str, *, synthetic: bool | None = None) -> xr.Dataset:
    """Add CF attributes (units, long_name, coordinates) and provenance to predicted fluxes."""
    p = model.provenance
    syn = bool(p.get("synthetic")) if synthetic is None else synthetic
    for t in model.targets:
        pred[t].attrs = {"units": "g m-2 month-1", "long_name": LONG_NAMES.get(t, t),
                         "fluxcore_units": unit_of(t, "monthly"), "cell_methods": "time: sum",
                         "comment": "grams of carbon per square metre per calendar month"}
    if "lat" in pred.coords:
        pred["lat"].attrs = {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"}
        pred["lon"].attrs = {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}
    pred["time"].attrs = {"standard_name": "time", "long_name": "month (start)"}
    title = f"fluxcore upscaled {', '.join(model.targets)} ({model.learner}, run {p.get('run_key')})"
    pred.attrs = {
        "Conventions": "CF-1.8",
        "title": ("SYNTHETIC " if syn else "") + title,
        "source": f"fluxcore {code_version()}: learner {model.learner} fitted on {p.get('n_sites')} sites",
        "history": f"{now_iso()}: fluxcore upscale {p.get('run_key')} --grid {grid_path}",
        "fluxcore_run_key": str(p.get("run_key")),
        "fluxcore_data_fingerprint": str(p.get("data_fingerprint")),
        "fluxcore_code_version": code_version(),
        "fluxcore_run_code_version": str(p.get("run_code_version")),
        "fluxcore_learner": model.learner,
        "fluxcore_grid": str(grid_path),
        "fluxcore_synthetic": int(syn),
    }
    if syn:
        pred.attrs["comment"] = "SYNTHETIC: trained on generated data; not an estimate of real fluxes"
    return pred


def _scheduler_context(scheduler: str | None, workers: int | None):
    import contextlib

    import dask

    if scheduler in (None, "threads"):
        return dask.config.set(scheduler="threads", num_workers=workers or os.cpu_count() or 1)
    if scheduler == "synchronous":
        return dask.config.set(scheduler="synchronous")
    if scheduler == "local" or str(scheduler).startswith(("tcp://", "tls://", "inproc://")):
        try:
            import distributed
        except ImportError:
            raise ConfigError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
        stack = contextlib.ExitStack()
        if scheduler == "local":
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, host="127.0.0.1",
                dashboard_address=None, processes=True))
            stack.enter_context(distributed.Client(cluster))
        else:
            stack.enter_context(distributed.Client(scheduler))
        return stack
    raise ConfigError(f"scheduler {scheduler!r}: give 'threads', 'synchronous', 'local' or tcp://HOST:PORT")


def upscale(model: FinalModel, grid: str | Path, out: str | Path, *, chunk_cells: int = 20_000,
            scheduler: str | None = None, workers: int | None = None) -> Path:
    """Predict every cell and month of a grid and write CF NetCDF.

    Parameters
    ----------
    model : FinalModel
        From :func:`load_final_model` / :func:`final_model`.
    grid : path
        Drivers in the layout of ``docs/regional.md``.
    out : path
        Output NetCDF-4 file (written to ``<out>.tmp`` then renamed).
    chunk_cells : int
        Cells per block (memory per block ~ cells x months x features x 8 bytes x a few).
    scheduler : str, optional
        ``None``/``"threads"`` (local threads), ``"synchronous"``, ``"local"`` (a local Dask
        cluster of processes) or a Dask scheduler address ``tcp://HOST:PORT``.
    workers : int, optional
        Threads or local workers (default: the CPU count).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    DataError
        Bad grid (see :mod:`fluxcore.grid`), or drivers / features the model needs missing.
    """
    out = Path(out)
    if out.exists() and out.is_dir():
        raise DataError(out, "is a folder; give a file name for the output NetCDF")
    if not out.parent.exists():
        raise DataError(out.parent, "does not exist (folder of the output file)")
    ds = check_grid_for_model(model, grid)
    pred = predict_grid(model, ds, chunk_cells=chunk_cells)
    text = f"{ds.attrs.get('title', '')} {ds.attrs.get('comment', '')}".upper()
    pred = cf_attributes(pred, model, str(grid), synthetic=bool(model.provenance.get("synthetic")) or
                         "SYNTHETIC" in text)
    with _scheduler_context(scheduler, workers):
        try:
            write_grid(pred, out)
        except FluxcoreError:
            raise
        except Exception:
            Path(str(out) + ".tmp").unlink(missing_ok=True)
            raise
    return out


# ------------------------------------------------------------------------------ totals
def regional_totals(fluxes: xr.Dataset, area_m2: np.ndarray, zones: Iterable[str] | None = None,
                    targets: Iterable[str] | None = None) -> pd.DataFrame:
    """Area-weighted regional totals [PgC yr-1] per month and aridity zone.

    Parameters
    ----------
    fluxes : xarray.Dataset
        Monthly sums [gC m-2 month-1] on ``(time, cell)`` or ``(time, lat, lon)`` (flattened
        row-major to cells).
    area_m2 : array
        Area of each cell [m2], in the same cell order.
    zones : iterable of str, optional
        Aridity zone of each cell (e.g. from :func:`fluxcore.grid.cell_zones`); default: all
        cells in one zone ``"all"``.
    targets : iterable of str, optional
        Variables to total (default: every data variable).

    Returns
    -------
    pandas.DataFrame
        ``DATE, zone, target, total_PgC_yr, total_PgC, area_km2, n_cells``: ``total_PgC`` =
        sum over cells with a value of ``flux x area`` [PgC in the month]; ``total_PgC_yr`` =
        that times ``days in the year / days in the month`` (the month's rate as a yearly
        total: the mean of the twelve monthly rates weighted by days is the annual total).
        Rows per zone plus ``zone == "all"`` (every cell).
    """
    names = list(targets) if targets is not None else [str(v) for v in fluxes.data_vars]
    t = pd.DatetimeIndex(fluxes["time"].values)
    area = np.asarray(area_m2, dtype=float).reshape(-1)
    z = np.full(area.shape, "all", dtype=object) if zones is None else np.asarray(list(zones), dtype=object)
    if len(z) != len(area):
        raise ValueError(f"{len(z)} zones for {len(area)} cells")
    ndays = t.days_in_month.to_numpy(dtype=float)
    nyear = np.where(t.is_leap_year, 366.0, 365.0)
    groups = [("all", np.ones(len(area), dtype=bool))]
    if zones is not None:
        groups += [(str(u), z == u) for u in pd.unique(z)]
    rows = []
    for name in names:
        v = np.asarray(fluxes[name].values, dtype=float).reshape(len(t), -1)
        if v.shape[1] != len(area):
            raise ValueError(f"{name}: {v.shape[1]} cells but {len(area)} areas")
        ok = np.isfinite(v) & np.isfinite(area)[None, :]
        contrib = np.where(ok, v * area[None, :], 0.0)
        for zone, m in groups:
            g = contrib[:, m].sum(axis=1) / G_PER_PG
            n = ok[:, m].sum(axis=1)
            a = np.where(ok[:, m], area[None, m], 0.0).sum(axis=1) / 1e6
            for i in range(len(t)):
                rows.append((t[i], zone, name, g[i] * nyear[i] / ndays[i], g[i], a[i], int(n[i])))
    return pd.DataFrame(rows, columns=["DATE", "zone", "target", "total_PgC_yr", "total_PgC", "area_km2",
                                       "n_cells"])


def grid_totals(fluxes_path: str | Path, drivers_path: str | Path) -> pd.DataFrame:
    """:func:`regional_totals` of an upscaled file, zones and areas from its drivers grid."""
    ds = open_grid(drivers_path)
    _, zones = cell_zones(ds)
    area = np.asarray(ds["cell_area"].values) if "cell_area" in ds else None
    if area is None:
        raise DataError(drivers_path, "no cell areas: add a 'cell_area' variable [m2] or the global attributes "
                                      "geospatial_lat_resolution / geospatial_lon_resolution [deg]")
    with xr.open_dataset(fluxes_path, engine="h5netcdf") as f:
        return regional_totals(f.load(), area, zones)


# ------------------------------------------------------------------ regional results
@dataclass
class RegionalResult:
    """Everything the Regional maps page shows for one model on one grid.

    Attributes
    ----------
    fluxes : xarray.Dataset
        Predicted monthly sums [gC m-2 month-1] on ``(time, lat, lon)``.
    reference : xarray.Dataset or None
        Gridded targets of the grid (e.g. the SYNTHETIC inversion), same layout.
    holdout : pandas.DataFrame
        ``SITE_ID, DATE, target, observed, predicted`` on held-out data (held-out period of
        the grid, or the run's held-out sites).
    holdout_label : str
    totals, reference_totals : pandas.DataFrame
        :func:`regional_totals` of ``fluxes`` / ``reference`` (per month and zone).
    netcdf : Path
        The CF NetCDF file of ``fluxes`` (for download).
    synthetic : bool
    label : str
    """

    fluxes: xr.Dataset
    reference: xr.Dataset | None
    holdout: pd.DataFrame
    holdout_label: str
    totals: pd.DataFrame
    reference_totals: pd.DataFrame | None
    netcdf: Path
    synthetic: bool
    label: str


def period_holdout(dataset, learner: str, *, test_from: str | pd.Timestamp, targets: Iterable[str] = ("GPP", "ER",
                   "NEE"), features: dict | None = None, params: dict | None = None, seed: int = 0
                   ) -> tuple[pd.DataFrame, list]:
    """Temporal hold-out on a (cells) dataset: fit on months before ``test_from``, predict all.

    Features are built once (per cell, past-only rolling means and per-cell means of the
    drivers, no targets); the learner (and its scalers) sees only the training months'
    targets. Returns the long table ``SITE_ID, DATE, target, observed, predicted, period``
    (``"train"`` / ``"held-out"``) for every row with a target, and the fitted models.
    """
    from .foldrun import predict_fold
    from .learners import make_learner

    targets = list(targets)
    ft = build_features(dataset, FeatureConfig.from_dict(dict(features or {})), targets)
    dates = pd.DatetimeIndex(np.asarray(ft.dates))
    train = np.asarray(dates < pd.Timestamp(test_from))
    if not train.any() or train.all():
        raise ConfigError(f"test_from {test_from}: no training or no test months")
    template = make_learner(learner, **{"random_state": seed, **dict(params or {})}) \
        if "random_state" in make_learner(learner).get_params() else make_learner(learner, **dict(params or {}))
    sites = np.asarray(ft.sites).astype(str)
    kw = {"sites": sites[train], "dates": np.asarray(ft.dates)[train]}
    y = ft.y[targets]
    if template.get_tag("multi_target", False):
        models = [template.clone().fit(ft.X[train], y[train], **kw)]
    else:
        models = [template.clone().fit(ft.X[train], y[train][[t]], **kw) for t in targets]
    pred = predict_fold(models, ft.X, sites, np.asarray(ft.dates), len(targets))
    k = len(targets)
    out = pd.DataFrame({"SITE_ID": np.tile(sites, k), "DATE": np.tile(dates.to_numpy(), k),
                        "target": np.repeat(targets, len(sites)),
                        "observed": y.to_numpy(dtype=float).T.ravel(), "predicted": pred.T.ravel(),
                        "period": np.tile(np.where(train, "train", "held-out"), k)})
    return out, models


def _to_grid(df: pd.DataFrame, value: str, ds: xr.Dataset, targets: list[str]) -> xr.Dataset:
    """Long ``SITE_ID, DATE, target, <value>`` rows back onto the ``(time, lat, lon)`` grid."""
    lat, lon = np.asarray(ds.attrs["fluxcore_lat"]), np.asarray(ds.attrs["fluxcore_lon"])
    times = pd.DatetimeIndex(ds["time"].values)
    cell = df["SITE_ID"].str.slice(1).astype(int).to_numpy()
    it = times.get_indexer(pd.DatetimeIndex(df["DATE"]))
    out = {}
    for t in targets:
        m = (df["target"] == t).to_numpy()
        a = np.full((len(times), len(lat) * len(lon)), np.nan, dtype=np.float32)
        a[it[m], cell[m]] = df.loc[m, value].to_numpy(dtype=float)
        out[t] = (("time", "lat", "lon"), a.reshape(len(times), len(lat), len(lon)))
    return xr.Dataset(out, coords={"time": times.to_numpy(), "lat": lat, "lon": lon})


def demo_grid_result(learner: str = "rf", *, resolution: float = 1.0, test_from: str = "2014-01-01",
                     params: dict | None = None, out_dir: str | Path | None = None, seed: int = 0) -> RegionalResult:
    """The regional workflow on the SYNTHETIC demo grid, NARCF-style.

    ``learner`` is trained on the grid's SYNTHETIC "inversion" fluxes of the months before
    ``test_from`` (every cell) and predicts every cell and month; the held-out scatter is the
    months from ``test_from`` on. Features: :func:`fluxcore.timeres.monthly_feature_config`
    without IGBP and catalogue attributes (cells have none). The predicted grid is written as
    CF NetCDF to ``out_dir`` (default: the demo cache folder).
    """
    from .demogrid import default_cache_dir, demo_grid_path
    from .grid import read_grid
    from .timeres import monthly_feature_config

    path = demo_grid_path(resolution)
    dataset = read_grid(path, name="demogrid")
    dataset.synthetic = True
    feats = monthly_feature_config(igbp=False, site_attributes=()).to_dict()
    targets = ["GPP", "ER", "NEE"]
    long, _ = period_holdout(dataset, learner, test_from=test_from, targets=targets, features=feats,
                             params=params, seed=seed)
    ds = open_grid(path)
    fluxes = _to_grid(long, "predicted", ds, targets)
    reference = _to_grid(long, "observed", ds, targets)
    _, zones = cell_zones(ds)
    area = np.asarray(ds["cell_area"].values)
    folder = Path(out_dir) if out_dir is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    nc = folder / f"demogrid_res{resolution:g}_{learner}_upscaled.nc"
    fx = fluxes.copy()
    for t in targets:
        fx[t].attrs = {"units": "g m-2 month-1", "long_name": LONG_NAMES[t], "fluxcore_units": unit_of(t, "monthly")}
    fx.attrs = {"Conventions": "CF-1.8", "title": f"SYNTHETIC fluxcore demo grid: {learner} trained on the "
                f"SYNTHETIC inversion before {test_from}", "fluxcore_code_version": code_version(),
                "fluxcore_data_fingerprint": dataset.fingerprint(), "fluxcore_run_key": "none (demo grid)",
                "fluxcore_synthetic": 1}
    write_grid(fx, nc)
    held = long[long["period"] == "held-out"].drop(columns="period")
    return RegionalResult(fluxes=fluxes, reference=reference, holdout=held,
                          holdout_label=f"held-out months from {test_from} (SYNTHETIC inversion as reference)",
                          totals=regional_totals(fluxes, area, zones),
                          reference_totals=regional_totals(reference, area, zones),
                          netcdf=nc, synthetic=True, label=f"SYNTHETIC demo grid, {learner}")


def run_result(run_dir: str | Path, learner: str, grid: str | Path, *, dataset=None,
               chunk_cells: int = 20_000) -> RegionalResult:
    """A run's final model upscaled onto ``grid`` (stored as ``<run>/upscaled/<learner>-<grid>.nc``).

    The held-out scatter is the run's leave-one-site-out predictions of ``learner`` (held-out
    sites); the reference is the grid's own targets when it has any.
    """
    from .runstore import load_run

    run_dir = Path(run_dir)
    model = final_model(run_dir, learner, dataset=dataset)
    folder = run_dir / "upscaled"
    folder.mkdir(exist_ok=True)
    nc = folder / f"{learner}-{Path(grid).stem}.nc"
    if not nc.is_file() or nc.stat().st_mtime < _final_json(run_dir, learner).stat().st_mtime:
        upscale(model, grid, nc, chunk_cells=chunk_cells)
    ds = open_grid(grid)
    with xr.open_dataset(nc, engine="h5netcdf") as f:
        fluxes = f.load()
    _, zones = cell_zones(ds)
    area = np.asarray(ds["cell_area"].values) if "cell_area" in ds else np.full(ds.sizes["cell"], np.nan)
    ref = None
    ref_tot = None
    have = [t for t in model.targets if t in ds]
    if have and ds.attrs.get("fluxcore_layout") == "grid":
        lat, lon = np.asarray(ds.attrs["fluxcore_lat"]), np.asarray(ds.attrs["fluxcore_lon"])
        ref = xr.Dataset({t: (("time", "lat", "lon"), np.asarray(ds[t].values).reshape(ds.sizes["time"], len(lat),
                                                                                          len(lon)))
                          for t in have}, coords={"time": ds["time"].values, "lat": lat, "lon": lon})
        ref_tot = regional_totals(ref, area, zones)
    run = load_run(run_dir)
    p = run.predictions
    held = p[p["learner"] == learner][["SITE_ID", "DATE", "target", "observed", "predicted"]]
    syn = bool(model.provenance.get("synthetic"))
    return RegionalResult(fluxes=fluxes, reference=ref, holdout=held,
                          holdout_label=f"run {run_dir.name}: leave-one-site-out predictions (held-out sites)",
                          totals=regional_totals(fluxes, area, zones), reference_totals=ref_tot, netcdf=nc,
                          synthetic=syn, label=f"run {run_dir.name}, {learner}")


__all__ = ["FinalModel", "RegionalResult", "demo_grid_result", "period_holdout", "run_result", "cf_attributes", "check_grid_for_model", "final_model", "fit_final_model",
           "grid_totals", "load_final_model", "predict_grid", "regional_totals", "run_dataset", "upscale"]
