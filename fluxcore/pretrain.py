"""Pre-training as a run stage: source targets, pre-training and the fine-tuning plan.

Process-model-guided transfer learning (Guan et al. 2025) pre-trains a learner on a process
model's fluxes and fine-tunes it on tower fluxes. In fluxcore the stage is configured by
``RunConfig.pretrain`` (a :class:`PretrainConfig`) and applies to learners with the
``fine_tune`` tag. The source targets are computed once per run, row by row from each site's
own *drivers* (never from fluxes); a fold or group model is pre-trained on the source targets
of its *training* sites only (plus, in the clearly labelled ``transductive`` mode, the drivers
of the sites it predicts), then fine-tuned on the towers. Pre-trained models are stored under
``runs/<key>/models/`` and re-used when a run resumes.

Sources are registered by name (:func:`register_source`); built in: ``"processmodel"``
(:func:`fluxcore.processmodel.run_process_model` with the literature parameters of
:func:`fluxcore.pmparams.literature_params`).

Options beyond the plain stage (see :class:`PretrainConfig`):

* ``calibrate: true``: the process model's ``eps_max, r_ref, k_gpp`` are calibrated per IGBP
  class on the tower fluxes of the model's *training sites only* (the fold's pool, or the
  group model's training sites) before its source targets are computed
  (:func:`fluxcore.pmparams.calibrate`); each calibration is written to
  ``runs/<key>/pretrain/calibration-<digest of the training sites>.json``.
* ``synthetic: ["T+2", "T-2", "P*0.8", "P*1.2"]``: synthetic driver years enlarge the source
  domain. Each scenario is a perturbed copy of the pool sites' drivers (air temperature
  ``TA, TMIN, TMAX`` shifted by the given kelvin, or daily precipitation ``P`` scaled by the
  given factor; VPD, radiation and LAI unchanged): the process model is run on the perturbed
  drivers and the feature table is perturbed the same way (temperature features: ``TA, TMIN,
  TMAX``, their trailing means and site means; precipitation features: ``P``, ``P_MONTHLY``,
  their trailing and site means, ``MAP_MM`` and ``ARIDITY_INDEX``, scaled). Each copy is a
  pseudo-site ``<site>~<scenario>`` (windows never mix scenarios). Not allowed with the
  water-balance features (``PET_HG, SWC_REL, WB_MEAN30D`` are not linear in the drivers), and
  precipitation scenarios need daily ``P`` (without it the process model would not see them).
* ``learners: [pmtl]``: the learners the stage applies to (default: every fine-tunable
  learner of the run), so that a run can hold a tower-only ``lstm`` and a pre-trained ``pmtl``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import pmlearner  # (also registers the "processmodel" learner and its fast strategy)
from .errors import ConfigError
from .params import Boolean, Interval, Options, check_constraints
from .pmparams import (
    calibrate,
    fluxes_from_basis,
    literature_params,
    process_basis,
    site_statistics,
)

__all__ = ["PretrainConfig", "PretrainStage", "register_source", "available_sources", "source_targets",
           "parse_scenario", "perturb_features", "AUX"]

#: Prefix of the auxiliary columns a source may return beside the targets (basis terms,
#: drivers, site attributes of each row: never fluxes); the stage keeps them apart.
AUX = "aux:"
#: Driver columns the processmodel source passes on for synthetic driver years.
_DRIVERS = ("SW_IN", "TA", "TMIN", "TMAX", "P", "VPD", "LAI")
#: Features that are not linear in the perturbed drivers (synthetic years refuse them).
_NONLINEAR = ("PET_HG", "SWC_REL", "WB_MEAN30D")

#: name -> function(dataset, targets) -> DataFrame of source targets aligned with dataset.daily
_SOURCES: dict[str, Callable[[Any, list[str]], pd.DataFrame]] = {}

#: Learner parts that may be fine-tuned (see ``FluxLearner.fine_tune``).
PARTS = ("all", "head", "head+last")


def register_source(name: str) -> Callable:
    """Decorator registering a pre-training source ``f(dataset, targets) -> DataFrame``.

    The frame has the target columns and one row per row of ``dataset.daily`` (same order);
    each row may depend only on its own site's drivers and static attributes.
    """

    def deco(fn):
        _SOURCES[name] = fn
        return fn

    return deco


def available_sources() -> list[str]:
    """Names of the registered pre-training sources."""
    return sorted(_SOURCES)


def _site_attr(table: pd.DataFrame | None, col: str, sid: np.ndarray) -> np.ndarray:
    if table is None or col not in table:
        return np.full(len(sid), np.nan if col != "IGBP" else None, dtype=float if col != "IGBP" else object)
    ids = table["SITE_ID"].astype(str) if "SITE_ID" in table else table.index.astype(str)
    m = pd.Series(table[col].to_numpy(), index=ids.to_numpy())
    m = m[~m.index.duplicated()]
    return m.reindex(sid).to_numpy()


@register_source("processmodel")
def _process_model_source(dataset, targets: list[str]) -> pd.DataFrame:
    """fluxcore's process model (literature parameters) on the dataset's drivers.

    Besides the targets, returns auxiliary columns (:data:`AUX` prefix): the linear basis
    ``G0, E1, T1`` (:func:`fluxcore.pmparams.process_basis`), each row's ``IGBP``, ``LAT``,
    ``WHC_MM`` and drivers, so that the stage can calibrate and run synthetic years.
    """
    daily = dataset.daily
    missing = [t for t in targets if t not in ("GPP", "ER", "NEE")]
    if missing:
        raise ConfigError(f"pretrain.source 'processmodel' gives GPP, ER, NEE; not {missing}")
    basis = process_basis(daily, dataset.sites)
    sid = daily["SITE_ID"].astype(str).to_numpy()
    igbp = _site_attr(dataset.sites, "IGBP", sid)
    lit = {c: literature_params(c if isinstance(c, str) else None) for c in pd.unique(igbp)}
    eps, r, k = (np.array([getattr(lit[c], n) for c in igbp]) for n in ("eps_max", "r_ref", "k_gpp"))
    out = fluxes_from_basis(basis.to_numpy(), eps, r, k)[list(targets)].reset_index(drop=True)
    for c in basis.columns:
        out[AUX + c] = basis[c].to_numpy()
    out[AUX + "SITE_ID"] = sid
    out[AUX + "DATE"] = pd.to_datetime(daily["DATE"]).to_numpy()
    out[AUX + "IGBP"] = igbp
    for c in ("LAT", "WHC_MM"):
        out[AUX + c] = _site_attr(dataset.sites, c, sid).astype(float)
    for c in _DRIVERS:
        if c in daily:
            out[AUX + "driver:" + c] = pd.to_numeric(daily[c], errors="coerce").to_numpy(dtype=float)
    return out


def source_targets(name: str, dataset, targets: list[str]) -> pd.DataFrame:
    """Source targets of ``dataset`` (rows aligned with ``dataset.daily``)."""
    if name not in _SOURCES:
        raise ConfigError(f"pretrain.source: unknown source {name!r}; available: {', '.join(available_sources())}")
    out = _SOURCES[name](dataset, list(targets))
    if len(out) != len(dataset.daily):
        raise ConfigError(f"pretrain.source {name!r} returned {len(out)} rows for {len(dataset.daily)} site-days")
    return out.reset_index(drop=True)


def parse_scenario(name: str) -> tuple[str, float]:
    """``"T+2"`` -> ``("T", 2.0)`` (kelvin added to air temperature); ``"P*0.8"`` -> ``("P", 0.8)``."""
    m = re.fullmatch(r"T([+-]\d+(?:\.\d+)?)", str(name))
    if m:
        return "T", float(m.group(1))
    m = re.fullmatch(r"P\*(\d+(?:\.\d+)?)", str(name))
    if m and float(m.group(1)) > 0:
        return "P", float(m.group(1))
    raise ConfigError(f"pretrain.synthetic: unknown scenario {name!r}; use 'T+2', 'T-2' (kelvin added to air "
                      "temperature) or 'P*0.8', 'P*1.2' (factor on precipitation)")


_T_COLS = re.compile(r"(TA|TMIN|TMAX)(_MEAN\d+[DM])?|SITE_MEAN_(TA|TMIN|TMAX)")
_P_COLS = re.compile(r"(P|P_MONTHLY)(_MEAN\d+[DM])?|SITE_MEAN_(P|P_MONTHLY)|MAP_MM|ARIDITY_INDEX")


def perturb_features(X: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """The feature rows of a synthetic driver year (see the module docstring).

    Raises :class:`ConfigError` when ``X`` has features that are not linear in the drivers.
    """
    bad = [c for c in _NONLINEAR if c in X.columns]
    if bad:
        raise ConfigError(f"pretrain.synthetic: features {bad} cannot be perturbed; set features.water_balance "
                          "to false or drop pretrain.synthetic")
    kind, v = parse_scenario(scenario)
    out = X.copy()
    pat = _T_COLS if kind == "T" else _P_COLS
    for c in X.columns:
        if pat.fullmatch(str(c)):
            out[c] = X[c] + v if kind == "T" else X[c] * v
    return out


@dataclass
class PretrainConfig:
    """Options of the pre-training stage (``RunConfig.pretrain``).

    Parameters
    ----------
    source : str
        Registered source of pre-training targets (``"processmodel"``).
    epochs : int
        Training epochs on the source (the learner's ``max_epochs`` during pre-training,
        when it has that hyperparameter).
    finetune_epochs : int
        Epochs of fine-tuning on the tower fluxes of the training sites.
    lr : float or None
        Fine-tuning learning rate (None: the learner's default for fine-tuning).
    parts : {"all", "head", "head+last"}
        Which learner parts the fine-tuning trains.
    transductive : bool
        Also pre-train on the source targets of the sites a model predicts (their *drivers*
        only, never their fluxes). Off by default; results are labelled transductive.
    calibrate : bool
        Calibrate the process model per IGBP class on the training sites' tower fluxes
        before computing the source targets (source ``"processmodel"`` only).
    synthetic : list of str
        Synthetic driver years added to the source domain (``"T+2"``, ``"T-2"``,
        ``"P*0.8"``, ``"P*1.2"``; source ``"processmodel"`` only). Empty: none.
    learners : list of str or None
        Learners of the run the stage applies to (None: every fine-tunable learner).
    """

    source: str = "processmodel"
    epochs: int = 5
    finetune_epochs: int = 5
    lr: float | None = None
    parts: str = "all"
    transductive: bool = False
    calibrate: bool = False
    synthetic: list = field(default_factory=list)
    learners: list | None = None

    _constraints = {
        "epochs": [Interval(int, 1)],
        "finetune_epochs": [Interval(int, 0)],
        "lr": [Interval(float, 0, closed="neither"), None],
        "parts": [Options(*PARTS)],
        "transductive": [Boolean()],
        "calibrate": [Boolean()],
    }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, label: str = "pretrain") -> PretrainConfig:
        """Checked options (one :class:`ConfigError` per unknown key or bad value)."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"{label} must be a mapping of pre-training options, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{label}: unknown option(s) {unknown}; known: {sorted(known)}")
        constraints = dict(cls._constraints)
        constraints["source"] = [Options(*available_sources())]
        check_constraints(d, constraints, label)
        d = dict(d)
        for key in ("synthetic", "learners"):
            if key not in d or (key == "learners" and d[key] is None):
                continue
            v = d[key]
            if isinstance(v, str) or not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                raise ConfigError(f"{label}: {key} must be a list of names, got {v!r}")
            d[key] = list(v)
        for scen in d.get("synthetic", []):
            parse_scenario(scen)
        if (d.get("calibrate") or d.get("synthetic")) and d.get("source", "processmodel") != "processmodel":
            raise ConfigError(f"{label}: calibrate and synthetic need source 'processmodel'")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PretrainStage:
    """The pre-training stage of one run, as the strategies and the fold runner use it.

    Attributes
    ----------
    config : PretrainConfig
    Y_source : pandas.DataFrame
        Source targets, row-aligned with the run's feature table (auxiliary :data:`AUX`
        columns of the source are moved to :attr:`aux` on construction).
    aux : pandas.DataFrame or None
        The source's auxiliary columns (basis terms, drivers and site attributes per row).
    Y_obs : pandas.DataFrame or None
        Tower fluxes of the feature table's rows, bound by the runner (:meth:`bound`) for the
        calibration, which reads only the training sites' rows of it.
    record_dir : str or None
        Folder where calibrations are recorded (``<run>/pretrain``).
    """

    config: PretrainConfig
    Y_source: pd.DataFrame
    aux: pd.DataFrame | None = None
    Y_obs: pd.DataFrame | None = None
    record_dir: str | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        extra = [c for c in self.Y_source.columns if str(c).startswith(AUX)]
        if extra:
            self.aux = self.Y_source[extra].rename(columns=lambda c: str(c)[len(AUX):])
            self.Y_source = self.Y_source.drop(columns=extra)
        if (self.config.calibrate or self.config.synthetic) and self.aux is None:
            raise ConfigError(f"pretrain: source {self.config.source!r} gives no process-model basis, "
                              "so calibrate / synthetic cannot be used")

    def applies_to(self, learner: str) -> bool:
        """Whether the stage pre-trains ``learner`` (``config.learners``; None: all fine-tunable)."""
        return self.config.learners is None or learner in self.config.learners

    def bound(self, y_obs: pd.DataFrame | None, record_dir: str | Path | None = None) -> PretrainStage:
        """A copy that knows the run's tower fluxes (for calibration) and where to record it."""
        return replace(self, Y_obs=y_obs, record_dir=None if record_dir is None else str(record_dir),
                       _cache=self._cache)

    # ------------------------------------------------------------ calibration
    def calibration(self, fit_rows: np.ndarray) -> dict[str, dict]:
        """Per-class calibration on the tower fluxes of ``fit_rows`` only (recorded, cached)."""
        if self.Y_obs is None:
            raise ConfigError("pretrain.calibrate: the stage has no tower fluxes (internal: call bound())")
        fit_rows = np.asarray(fit_rows)
        sid = self.aux["SITE_ID"].to_numpy(dtype=str)[fit_rows]
        codes, uniq = pd.factorize(sid)
        key = pmlearner.pool_digest(uniq)
        if key in self._cache:
            return self._cache[key]
        basis = self.aux[["G0", "E1", "T1"]].to_numpy(dtype=float)[fit_rows]
        obs = self.Y_obs.iloc[fit_rows]
        stats = site_statistics(basis, obs, codes, len(uniq))
        cls = pd.Series(self.aux["IGBP"].to_numpy()[fit_rows]).groupby(codes).first().reindex(range(len(uniq)))
        classes = [c if isinstance(c, str) else None for c in cls]
        result = calibrate(stats, classes, np.arange(len(uniq)))
        self._cache[key] = result
        if self.record_dir is not None:
            folder = Path(self.record_dir)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"calibration-{key}.json"
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"train_sites": sorted(map(str, uniq)), "classes": result},
                                      indent=1, sort_keys=True))
            tmp.replace(path)
        return result

    def _params_of_rows(self, rows: np.ndarray, fit_rows: np.ndarray | None) -> tuple[np.ndarray, ...]:
        igbp = self.aux["IGBP"].to_numpy()[rows]
        calib = self.calibration(fit_rows) if self.config.calibrate else {}
        table = {}
        for c in pd.unique(igbp):
            key = c if isinstance(c, str) else ""
            lit = literature_params(key or None)
            p = calib.get(key, {}).get("params", {})
            table[c] = [p.get(n, getattr(lit, n)) for n in ("eps_max", "r_ref", "k_gpp")]
        m = np.array([table[c] for c in igbp], dtype=float).reshape(-1, 3)
        return m[:, 0], m[:, 1], m[:, 2]

    def _scenario_basis(self, scenario: str) -> np.ndarray:
        """Basis of the whole table under a synthetic scenario (drivers only; cached)."""
        key = "scenario:" + scenario
        if key not in self._cache:
            kind, v = parse_scenario(scenario)
            a = self.aux
            daily = pd.DataFrame({"SITE_ID": a["SITE_ID"].to_numpy(dtype=str), "DATE": a["DATE"].to_numpy()})
            for c in _DRIVERS:
                if "driver:" + c in a:
                    daily[c] = a["driver:" + c].to_numpy(dtype=float)
            if kind == "P" and ("P" not in daily or not np.isfinite(daily["P"]).any()):
                raise ConfigError(f"pretrain.synthetic {scenario!r}: the data have no daily P, so the process "
                                  "model would not see the change; use temperature scenarios only")
            for c in (("TA", "TMIN", "TMAX") if kind == "T" else ("P",)):
                if c in daily:
                    daily[c] = daily[c] + v if kind == "T" else daily[c] * v
            table = (pd.DataFrame({"SITE_ID": daily["SITE_ID"], "IGBP": a["IGBP"].to_numpy(),
                                   "LAT": a["LAT"].to_numpy(), "WHC_MM": a["WHC_MM"].to_numpy()})
                     .drop_duplicates("SITE_ID"))
            self._cache[key] = process_basis(daily, table).to_numpy(dtype=float)
        return self._cache[key]

    def source_rows(self, rows: np.ndarray, fit_rows: np.ndarray | None = None,
                    scenario: str | None = None) -> pd.DataFrame:
        """Source targets of ``rows`` (calibrated on ``fit_rows`` when the stage calibrates)."""
        rows = np.asarray(rows)
        if not self.config.calibrate and scenario is None:
            return self.Y_source.iloc[rows].reset_index(drop=True)
        basis = (self.aux[["G0", "E1", "T1"]].to_numpy(dtype=float) if scenario is None
                 else self._scenario_basis(scenario))[rows]
        eps, r, k = self._params_of_rows(rows, fit_rows)
        return fluxes_from_basis(basis, eps, r, k)[list(self.Y_source.columns)]

    # ------------------------------------------------------------ the stage
    def pretrain(self, model, X: pd.DataFrame, *, rows: np.ndarray, sites: np.ndarray, dates: np.ndarray,
                 fit_rows: np.ndarray | None = None):
        """Fit ``model`` (unfitted clone) on the source targets of ``rows`` (training sites only).

        ``fit_rows``: the rows whose tower fluxes the calibration may read (the training sites;
        default ``rows``, which must then hold no predicted site: not allowed with
        ``transductive``).
        """
        rows = np.asarray(rows)
        if self.config.calibrate and fit_rows is None:
            if self.config.transductive:
                raise ConfigError("pretrain: calibrate with transductive needs the training rows from the "
                                  "strategy (not supported by this strategy); use strategy 'per-fold'")
            fit_rows = rows
        if "max_epochs" in model.get_params():
            model.set_params(max_epochs=int(self.config.epochs))
        Xs = [X.iloc[rows]]
        Ys = [self.source_rows(rows, fit_rows)]
        Ss = [np.asarray(sites)[rows]]
        Ds = [np.asarray(dates)[rows]]
        for scen in self.config.synthetic:
            Xs.append(perturb_features(X.iloc[rows], scen))
            Ys.append(self.source_rows(rows, fit_rows, scenario=scen))
            Ss.append(np.char.add(Ss[0].astype(str), "~" + scen))
            Ds.append(Ds[0])
        Xa = pd.concat(Xs, ignore_index=True)
        Ya = pd.concat(Ys, ignore_index=True)
        keep = Ya.notna().any(axis=1).to_numpy()
        if not keep.any():
            raise ConfigError("pretrain: the source gives no value on the training sites' days")
        return model.fit(Xa[keep], Ya[keep], sites=np.concatenate(Ss)[keep], dates=np.concatenate(Ds)[keep])

    def finetune(self, model, X: pd.DataFrame, Y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray):
        """Fine-tune a pre-trained model on tower fluxes (the training sites' rows)."""
        if self.config.finetune_epochs <= 0:
            return model
        return model.fine_tune(X, Y, sites=sites, dates=dates, epochs=int(self.config.finetune_epochs),
                               lr=self.config.lr, parts=self.config.parts)
