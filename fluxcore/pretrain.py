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
(:func:`fluxcore.processmodel.run_process_model` with the per-IGBP default parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError
from .params import Boolean, Interval, Options, check_constraints

__all__ = ["PretrainConfig", "PretrainStage", "register_source", "available_sources", "source_targets"]

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


@register_source("processmodel")
def _process_model_source(dataset, targets: list[str]) -> pd.DataFrame:
    """fluxcore's process model (:mod:`fluxcore.processmodel`) on the dataset's drivers."""
    from .processmodel import run_process_model

    daily = dataset.daily
    out = run_process_model(daily, dataset.sites)
    missing = [t for t in targets if t not in out.columns]
    if missing:
        raise ConfigError(f"pretrain.source 'processmodel' gives GPP, ER, NEE; not {missing}")
    return out[list(targets)].reset_index(drop=True)


def source_targets(name: str, dataset, targets: list[str]) -> pd.DataFrame:
    """Source targets of ``dataset`` (rows aligned with ``dataset.daily``)."""
    if name not in _SOURCES:
        raise ConfigError(f"pretrain.source: unknown source {name!r}; available: {', '.join(available_sources())}")
    out = _SOURCES[name](dataset, list(targets))
    if len(out) != len(dataset.daily):
        raise ConfigError(f"pretrain.source {name!r} returned {len(out)} rows for {len(dataset.daily)} site-days")
    return out.reset_index(drop=True)


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
    """

    source: str = "processmodel"
    epochs: int = 5
    finetune_epochs: int = 5
    lr: float | None = None
    parts: str = "all"
    transductive: bool = False

    _constraints = {
        "epochs": [Interval(int, 1)],
        "finetune_epochs": [Interval(int, 0)],
        "lr": [Interval(float, 0, closed="neither"), None],
        "parts": [Options(*PARTS)],
        "transductive": [Boolean()],
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
        return cls(**dict(d))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PretrainStage:
    """The pre-training stage of one run, as the strategies and the fold runner use it.

    Attributes
    ----------
    config : PretrainConfig
    Y_source : pandas.DataFrame
        Source targets, row-aligned with the run's feature table.
    """

    config: PretrainConfig
    Y_source: pd.DataFrame

    def pretrain(self, model, X: pd.DataFrame, *, rows: np.ndarray, sites: np.ndarray, dates: np.ndarray):
        """Fit ``model`` (unfitted clone) on the source targets of ``rows`` (training sites only)."""
        rows = np.asarray(rows)
        if "max_epochs" in model.get_params():
            model.set_params(max_epochs=int(self.config.epochs))
        ys = self.Y_source.iloc[rows]
        keep = rows[ys.notna().any(axis=1).to_numpy()]
        if keep.size == 0:
            raise ConfigError("pretrain: the source gives no value on the training sites' days")
        return model.fit(X.iloc[keep], self.Y_source.iloc[keep], sites=sites[keep], dates=dates[keep])

    def finetune(self, model, X: pd.DataFrame, Y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray):
        """Fine-tune a pre-trained model on tower fluxes (the training sites' rows)."""
        if self.config.finetune_epochs <= 0:
            return model
        return model.fine_tune(X, Y, sites=sites, dates=dates, epochs=int(self.config.finetune_epochs),
                               lr=self.config.lr, parts=self.config.parts)
