"""Base class of the PyTorch learners: everything but the network.

:class:`TorchLearner` holds the machinery every neural learner needs; a subclass provides the
network (:meth:`TorchLearner._build_network`), optionally how a batch is fed to it
(:meth:`TorchLearner._forward`) and which parameter groups can be fine-tuned alone
(:meth:`TorchLearner._parts`). :class:`fluxcore.learners.lstm.LSTMLearner` is such a subclass.

Inputs and windows
------------------
Features are standardised with the mean and standard deviation of the rows passed to ``fit``
(NaN ignored, then NaN -> 0 = the training mean). Each row becomes one input vector: the
standardised features, one 0/1 "was missing" channel per feature that had NaN in training
(``missing_mask=True``) and one "no data" channel (0 for a real row, 1 for padding).

Sequence learners (tag ``sequence``) see the window of the ``lookback`` time steps ending on
each row: rows are placed on a per-site calendar (one slot per time step from the site's first
to last date, see :func:`layout`), a window is the index range ``pos - lookback + 1 .. pos``
and positions before the site's first slot point to a padding row (features 0, indicators 1).
Windows never cross sites. The time step is taken from the data in ``fit`` (``time_step_``:
``"D"`` for daily dates, ``"M"`` when every date is the first of a month). Non-sequence learners
get windows of length 1 (one row each), without a calendar.

Training
--------
Targets are standardised per target (fitted in ``fit``); the loss comes from the registry in
:mod:`fluxcore.learners.losses` (``loss="mse"``, ``"mse+balance"``, ...) and masks NaN targets
(a row counts for the targets it has) and rows of ``sample_weight`` 0. Adam, gradient-norm
clipping at 1, at most ``max_windows_per_epoch`` windows sampled without replacement per
epoch. Early stopping with ``patience`` on validation *sites* drawn (seeded) from the sites
passed to ``fit`` (``val_fraction`` of them, recorded in ``val_sites_``); with fewer than
``site_val_min_sites`` sites, the last ``val_fraction`` of each site's dates is used instead.
The weights of the best validation epoch are kept.

Determinism and device
----------------------
Training runs inside :func:`torch.random.fork_rng` seeded by ``random_state`` (the global RNG is
restored afterwards), window sampling uses a local numpy Generator,
``torch.use_deterministic_algorithms`` is on while fitting and ``torch.set_num_threads`` is set
to ``n_threads`` and restored. On CPU the same ``random_state`` and ``n_threads`` give bitwise
identical predictions. ``device="auto"`` uses CUDA when ``torch.cuda.is_available()``, else
the CPU; ``"cpu"`` / ``"cuda"`` / ``"cuda:N"`` are explicit. The fitted network is kept on CPU
between calls (fitted learners pickle to CPU-only workers).

Saving
------
:meth:`TorchLearner.save` writes ``torch.save`` of :meth:`TorchLearner.get_state`, a dict of
tensors and plain Python values only (registry name, hyperparameters, fitted attributes, the
network's ``state_dict``); :meth:`TorchLearner.load` reads it back with
``torch.load(..., weights_only=True)`` and rebuilds the right subclass through
:func:`fluxcore.learners.make_learner`.
"""

from __future__ import annotations

import copy
import inspect
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ._util import check_columns, check_inputs, seed_from, target_row_masks, target_stats
from .base import Boolean, FluxLearner, Interval, Pattern, Seed, check_params, make_learner
from .losses import LossFn, available_losses, get_loss

#: ``format`` entry of a saved state
STATE_FORMAT = "fluxcore.torch_learner"
STATE_VERSION = 1

#: calendar steps: name -> numpy datetime unit
TIME_STEPS = {"D": "datetime64[D]", "M": "datetime64[M]"}
_STEP_WORDS = {"D": "daily", "M": "monthly"}


# ------------------------------------------------------------------------- calendar
def infer_time_step(dates: np.ndarray) -> str:
    """Time step of a dataset from its dates: ``"M"`` when every date is the first day of a
    month at midnight (monthly data), else ``"D"`` (daily)."""
    d = np.asarray(dates).astype("datetime64[ns]")
    if len(d) and not np.isnat(d).any() and np.array_equal(d.astype("datetime64[M]").astype(d.dtype), d):
        return "M"
    return "D"


def layout(sites: np.ndarray, dates: np.ndarray, step: str = "D", what: str = "lstm"
           ) -> tuple[np.ndarray, np.ndarray, int]:
    """Calendar position of each row in a concatenation of per-site calendars.

    Parameters
    ----------
    sites : ndarray of str, shape (n,)
    dates : ndarray of datetime64, shape (n,)
    step : {"D", "M"}
        Calendar step: one slot per day or per month.
    what : str
        Start of error messages (the learner's name).

    Returns
    -------
    pos : ndarray of int64, shape (n,)
        Slot of each row.
    start : ndarray of int64, shape (n,)
        First slot of the row's site.
    total : int
        Number of slots (the padding slot is ``total``).

    Raises
    ------
    fluxcore.errors.DataError
        NaT dates, a site with the same date (step) twice, or dates spanning far more slots
        than there are rows.
    """
    n = len(sites)
    if np.isnat(dates).any():
        raise DataError(None, f"{what}: dates contain NaT")
    codes, _ = pd.factorize(sites, sort=True)
    day = dates.astype(TIME_STEPS[step]).astype(np.int64)
    order = np.lexsort((day, codes))
    c_s, d_s = codes[order], day[order]
    first = np.flatnonzero(np.r_[True, c_s[1:] != c_s[:-1]])
    counts = np.diff(np.r_[first, n])
    sid = np.repeat(np.arange(len(first)), counts)
    if np.any((np.diff(d_s) == 0) & (np.diff(sid) == 0)):
        unit = "date" if step == "D" else "month"
        raise DataError(None, f"{what}: a site has the same {unit} twice")
    dmin = d_s[first]
    span = d_s[first + counts - 1] - dmin + 1
    offset = np.r_[0, np.cumsum(span)[:-1]]
    if span.sum() > max(20 * n, 2_000_000):
        words = "site-days" if step == "D" else "site-months"
        raise DataError(None, f"{what}: dates span {int(span.sum())} {words} for {n} rows; check "
                              f"for wrong dates (windows need a {_STEP_WORDS[step]} calendar per site)")
    pos = np.empty(n, dtype=np.int64)
    start = np.empty(n, dtype=np.int64)
    pos[order] = offset[sid] + (d_s - dmin[sid])
    start[order] = offset[sid]
    return pos, start, int(span.sum())


# -------------------------------------------------------------------- determinism
@contextmanager
def torch_env(n_threads: int | None, seed: int, device: torch.device) -> Iterator[None]:
    """Seeded, deterministic torch settings for one fit; global state restored afterwards."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        if n_threads:
            torch.set_num_threads(int(n_threads))
        torch.use_deterministic_algorithms(True, warn_only=True)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)


# --------------------------------------------------------------------------- batches
@dataclass
class Batch:
    """What :meth:`TorchLearner._forward` receives for one batch.

    Attributes
    ----------
    x : torch.Tensor, shape (batch, lookback, n_inputs)
        Input windows (``lookback`` is 1 for non-sequence learners).
    rows : torch.Tensor of int64, shape (batch,)
        Row of each window in the ``X`` of the current ``fit`` / ``fine_tune`` / ``predict``
        call.
    site : torch.Tensor of int64, shape (batch,)
        Index of each row's site in ``site_ids``.
    site_ids : numpy.ndarray of str
        Sorted unique site ids of the current call (e.g. to look up per-site inputs).
    """

    x: torch.Tensor
    rows: torch.Tensor
    site: torch.Tensor
    site_ids: np.ndarray


@dataclass
class _CallData:
    """Inputs of one call on the device: calendar array, row positions, site codes."""

    full: torch.Tensor
    pos: torch.Tensor
    start: torch.Tensor
    site: torch.Tensor
    site_ids: np.ndarray


@dataclass
class FineTuneData:
    """Rows prepared once for many fine-tunes on subsets of their sites.

    Made by :meth:`TorchLearner.fine_tune_data`, used by :meth:`TorchLearner.fine_tune_on`.

    Attributes
    ----------
    call : _CallData
        Inputs of all the rows on the device (the preparing learner's scalers).
    targets : tuple of torch.Tensor
        Standardised targets (NaN -> 0), usable-target mask and row weights, on the device.
    rows : numpy.ndarray of int
        Rows with at least one usable target (as :meth:`TorchLearner._prepare_targets` gives).
    site_code : numpy.ndarray of int, shape (n,)
        Index of each row's site in ``site_ids``.
    site_ids : numpy.ndarray of str
        Sorted unique site ids of the rows.
    scalers : tuple of numpy.ndarray
        ``x_mean_, x_scale_, mask_cols_, y_mean_, y_scale_`` of the preparing learner.
    device : str
        Device of the tensors.
    """

    call: _CallData
    targets: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    rows: np.ndarray
    site_code: np.ndarray
    site_ids: np.ndarray
    scalers: tuple[np.ndarray, ...]
    device: str


class RegisteredLoss:
    """Constraint: the name of a loss in :mod:`fluxcore.learners.losses`."""

    def ok(self, v: Any) -> bool:
        return isinstance(v, str) and v in available_losses()

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(x) for x in available_losses())


# ------------------------------------------------------------------------ the base
class TorchLearner(FluxLearner):
    """Base of the PyTorch learners (see the module docstring).

    Subclasses implement :meth:`_build_network`, and may override :meth:`_forward` (how a
    batch is fed to the network), :meth:`_parts` (parameter groups for ``fine_tune(parts=)``)
    and :meth:`get_test_params`. A subclass ``__init__`` may take its own hyperparameters plus
    ``**kwargs`` passed on to this ``__init__``: the parameters of both are its parameters.
    Sequence learners set the tag ``sequence`` and a ``lookback`` hyperparameter.

    Parameters
    ----------
    max_epochs : int, default 20
        Epoch cap.
    patience : int, default 3
        Epochs without validation improvement before stopping.
    batch_size : int, default 256
        Windows per optimiser step.
    max_windows_per_epoch : int, default 30000
        Training windows (rows) sampled without replacement per epoch.
    max_val_windows : int, default 20000
        Validation windows (a fixed seeded sample) evaluated per epoch.
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 0.0
        Adam weight decay.
    val_fraction : float, default 0.2
        Fraction of the fit sites (or of each site's last dates) used for early stopping;
        0 disables early stopping (all ``max_epochs`` are run).
    site_val_min_sites : int, default 3
        With fewer fit sites, validation uses the last dates of each site instead.
    missing_mask : bool, default True
        Add a 0/1 channel per feature that had NaN in training.
    loss : str, default "mse"
        Name of a registered loss (:mod:`fluxcore.learners.losses`).
    balance_weight : float, default 0.1
        Weight of the carbon-balance term of ``loss="mse+balance"``.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default "cpu"
        ``"auto"``: CUDA when available, else CPU.
    n_threads : int or None, default 1
        ``torch.set_num_threads`` while fitting / predicting (restored afterwards).
    random_state : int or None, default 0
        Seed of weight initialisation, dropout, window sampling and validation sites.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained network (on CPU between calls).
    x_mean_, x_scale_ : numpy.ndarray, shape (n_features,)
        Feature scaling fitted on the ``fit`` rows.
    y_mean_, y_scale_ : numpy.ndarray, shape (n_targets,)
        Target scaling fitted on the ``fit`` rows [target units].
    mask_cols_ : numpy.ndarray of int
        Features with a missing-value channel.
    time_step_ : str
        Calendar step found in the ``fit`` dates (``"D"`` or ``"M"``).
    val_sites_ : numpy.ndarray of str
        Fit sites used for early stopping (empty for time-based or no validation).
    val_mode_ : str
        ``"sites"``, ``"time"`` or ``"none"``.
    history_ : list of dict
        Per epoch: ``phase, epoch, train_loss, val_loss``.
    best_epoch_, n_epochs_, n_steps_, n_fine_tune_epochs_ : int
    steps_per_second_, fit_seconds_ : float
    device_ : str
    feature_names_in_, target_names_ : list of str
    """

    name: ClassVar[str] = "torch"
    _tags: ClassVar[dict[str, Any]] = {"fine_tune": True, "sample_weight": True, "multi_target": True}
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "max_epochs": [Interval(int, 1)],
        "patience": [Interval(int, 0)],
        "batch_size": [Interval(int, 1)],
        "max_windows_per_epoch": [Interval(int, 1)],
        "max_val_windows": [Interval(int, 1)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "weight_decay": [Interval(float, 0)],
        "val_fraction": [Interval(float, 0, 1, closed="left")],
        "site_val_min_sites": [Interval(int, 2)],
        "missing_mask": [Boolean()],
        "loss": [RegisteredLoss()],
        "balance_weight": [Interval(float, 0)],
        "device": [Pattern(r"cpu|auto|cuda(:\d+)?", "'cpu', 'cuda', 'cuda:N' or 'auto'")],
        "n_threads": [None, Interval(int, 1)],
        "random_state": [None, Seed()],
    }

    def __init__(self, max_epochs: int = 20, patience: int = 3, batch_size: int = 256,
                 max_windows_per_epoch: int = 30000, max_val_windows: int = 20000,
                 lr: float = 1e-3, weight_decay: float = 0.0, val_fraction: float = 0.2,
                 site_val_min_sites: int = 3, missing_mask: bool = True, loss: str = "mse",
                 balance_weight: float = 0.1, device: str = "cpu", n_threads: int | None = 1,
                 random_state: int | None = 0):
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.max_windows_per_epoch = max_windows_per_epoch
        self.max_val_windows = max_val_windows
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.site_val_min_sites = site_val_min_sites
        self.missing_mask = missing_mask
        self.loss = loss
        self.balance_weight = balance_weight
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Merge ``_parameter_constraints`` along the class hierarchy (a subclass lists only
        its own hyperparameters; its entries come first and win)."""
        super().__init_subclass__(**kwargs)
        merged: dict[str, list] = {}
        for klass in cls.__mro__:
            for k, v in klass.__dict__.get("_parameter_constraints", {}).items():
                merged.setdefault(k, v)
        cls._parameter_constraints = merged

    @classmethod
    def _param_names(cls) -> list[str]:
        """Keyword parameters of ``__init__``, followed through ``**kwargs`` to the parents."""
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        names: list[str] = []
        for klass in cls.__mro__:
            if "__init__" not in klass.__dict__:
                continue
            sig = inspect.signature(klass.__dict__["__init__"])
            names += [p for p, par in sig.parameters.items()
                      if p != "self" and par.kind in kinds and p not in names]
            if not any(par.kind == inspect.Parameter.VAR_KEYWORD for par in sig.parameters.values()):
                break
        return names

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Tiny, fast settings (2 epochs, a few hundred windows) for conformance checks."""
        return [{"max_epochs": 2, "max_windows_per_epoch": 200, "max_val_windows": 200,
                 "batch_size": 64, "lr": 1e-2}]

    # ------------------------------------------------------------ subclass hooks
    def _build_network(self, n_in: int, n_out: int) -> nn.Module:
        """The untrained network: ``n_in`` input channels per time step, ``n_out`` outputs.

        Called inside the seeded torch context (its random initialisation is reproducible).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement _build_network")

    def _forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        """Standardised predictions, shape (batch, n_targets), for one :class:`Batch`.

        The default feeds the windows ``batch.x``; override to add per-row or per-site inputs
        (e.g. a task embedding looked up with ``batch.site`` / ``batch.site_ids``).
        """
        return net(batch.x)

    def _parts(self, net: nn.Module) -> dict[str, list[nn.Parameter]]:
        """Parameter groups that ``fine_tune(parts=...)`` can train alone, by name
        (e.g. ``{"head": [...], "last": [...]}``); the default declares none."""
        return {}

    def _lookback(self) -> int:
        """Window length [time steps]: ``lookback`` for sequence learners, else 1."""
        return int(getattr(self, "lookback", 1)) if self.sequence else 1

    # ----------------------------------------------------------------- helpers
    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"{self.name}: device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"{self.name}: device={self.device!r} but CUDA is not available")
        return torch.device(self.device)

    def _predict_device(self) -> torch.device:
        # the fitted model lives on CPU; use CUDA only where it was asked for and is present
        fitted = str(self.device_)
        want_cuda = fitted.startswith("cuda") or self.device == "auto"
        if want_cuda and torch.cuda.is_available():
            return torch.device(fitted if fitted.startswith("cuda") else "cuda")
        return torch.device("cpu")

    def _fit_feature_scaler(self, Xa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, scale and missing-channel columns of the features of the ``fit`` rows."""
        ok = np.isfinite(Xa)
        cnt = ok.sum(axis=0)
        mean = np.where(cnt > 0, np.where(ok, Xa, 0.0).sum(axis=0) / np.maximum(cnt, 1), 0.0)
        var = np.where(ok, (Xa - mean) ** 2, 0.0).sum(axis=0) / np.maximum(cnt, 1)
        std = np.sqrt(var)
        mask_cols = (np.flatnonzero(~ok.all(axis=0)) if self.missing_mask
                     else np.zeros(0, dtype=np.int64))
        return mean, np.where(std > 1e-12, std, 1.0), mask_cols

    def _fit_target_scaler(self, ya: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale per target of the ``fit`` rows (NaN ignored)."""
        return target_stats(np.where(np.isfinite(ya), ya, np.nan))

    def _n_inputs(self) -> int:
        return len(self.x_mean_) + len(self.mask_cols_) + 1

    def _build_loss(self) -> LossFn:
        return get_loss(self.loss)(self)

    def _reset_fitted(self) -> None:
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, k)

    def _inputs(self, Xa: np.ndarray, sites: np.ndarray, dates: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calendar array of model inputs (+ padding row) and row positions."""
        if self.sequence:
            step = getattr(self, "time_step_", "D")
            if step != "D" and infer_time_step(dates) != step:
                raise DataError(None, f"{self.name}: the model was fitted on {_STEP_WORDS[step]} data "
                                      "(dates on the first of the month) but got other dates")
            pos, start, total = layout(sites, dates, step, self.name)
        else:
            pos = np.arange(len(Xa), dtype=np.int64)
            start, total = pos.copy(), len(Xa)
        Z = (Xa - self.x_mean_) / self.x_scale_
        miss = np.isnan(Z)
        Z[miss] = 0.0
        n_f, n_m = Z.shape[1], len(self.mask_cols_)
        full = np.zeros((total + 1, n_f + n_m + 1), dtype=np.float32)
        full[:, n_f:] = 1.0  # absent days: every indicator on
        full[pos, :n_f] = Z
        full[pos, n_f:n_f + n_m] = miss[:, self.mask_cols_]
        full[pos, -1] = 0.0
        return full, pos, start

    def _call_data(self, Xa: np.ndarray, sites: np.ndarray, dates: np.ndarray,
                   dev: torch.device, targets: np.ndarray | None = None) -> _CallData:
        """Inputs of one call on ``dev``. ``targets`` (n, n_targets), NaN where unknown, are
        the call's targets in ``fit`` / ``fine_tune`` and the context fluxes a few-shot
        learner was given in ``predict`` (else None); this base ignores them, a subclass may
        turn them into per-site inputs."""
        full, pos, start = self._inputs(Xa, sites, dates)
        codes, uniq = pd.factorize(sites, sort=True)
        return _CallData(torch.as_tensor(full, device=dev), torch.as_tensor(pos, device=dev),
                         torch.as_tensor(start, device=dev),
                         torch.as_tensor(codes.astype(np.int64), device=dev), np.asarray(uniq, dtype=str))

    def _windows(self, full: torch.Tensor, pos: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        L = self._lookback()
        idx = pos[:, None] + torch.arange(-L + 1, 1, device=pos.device)[None, :]
        idx = torch.where(idx >= start[:, None], idx, full.shape[0] - 1)
        return full[idx]

    def _batch(self, data: _CallData, r: torch.Tensor) -> Batch:
        return Batch(self._windows(data.full, data.pos[r], data.start[r]), r, data.site[r],
                     data.site_ids)

    def _prepare_targets(self, ya: np.ndarray, w: np.ndarray | None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Standardised targets, usable-target mask, row weights and rows with any target."""
        M = np.isfinite(ya) if w is None else np.isfinite(ya) & (w > 0)[:, None]
        Y = (ya - self.y_mean_) / self.y_scale_
        ww = np.ones(len(ya)) if w is None else w
        rows = np.flatnonzero(M.any(axis=1))
        return Y, M, ww, rows

    def _split(self, sites: np.ndarray, dates: np.ndarray, rows: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """Training rows and validation rows (indices into the fit rows)."""
        uniq = np.unique(sites[rows])
        vf = float(self.val_fraction)
        if vf <= 0 or not self.patience:
            return rows, rows[:0], uniq[:0], "none"
        if len(uniq) >= self.site_val_min_sites:
            n_val = min(max(1, int(round(vf * len(uniq)))), len(uniq) - 1)
            val_sites = np.sort(rng.choice(uniq, size=n_val, replace=False))
            is_val = np.isin(sites[rows], val_sites)
            return rows[~is_val], rows[is_val], val_sites, "sites"
        # time-based: the last val_fraction of each site's (target) dates
        d = dates[rows].astype("datetime64[D]").astype(np.int64)
        s = sites[rows]
        is_val = np.zeros(len(rows), dtype=bool)
        for site in uniq:
            k = np.flatnonzero(s == site)
            if len(k) < 2:
                continue
            cut = np.quantile(d[k], 1.0 - vf)
            is_val[k] = d[k] > cut
        return rows[~is_val], rows[is_val], uniq[:0], "time"

    def _check_parts(self, net: nn.Module, parts: str, what: str) -> None:
        if parts == "all":
            return
        declared = self._parts(net)
        names = parts.split("+") if isinstance(parts, str) else []
        if not names or any(n not in declared for n in names):
            raise ConfigError(f"{what}: parts must be 'all' or part names joined by '+' "
                              f"({type(self).__name__} declares {sorted(declared)}), got {parts!r}")

    def _trainable(self, net: nn.Module, parts: str) -> list[nn.Parameter]:
        """The parameters ``parts`` names, in the network's parameter order."""
        if parts == "all":
            return list(net.parameters())
        declared = self._parts(net)
        chosen = {id(p) for n in parts.split("+") for p in declared[n]}
        return [p for p in net.parameters() if id(p) in chosen]

    # ----------------------------------------------------------------- training
    def _train(self, data: _CallData, Y: np.ndarray, M: np.ndarray, w: np.ndarray,
               train_rows: np.ndarray, val_rows: np.ndarray, epochs: int, lr: float,
               patience: int, seed: int, phase: str, parts: str = "all",
               max_windows: int | None = None,
               targets_t: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> None:
        """Train ``self.model_`` on windows of ``train_rows`` (``targets_t``: ``Y``, ``M``, ``w``
        already as :meth:`_target_tensors` on the device; then those three are ignored)."""
        dev = torch.device(self.device_)
        rng = np.random.default_rng(seed)
        loss_fn = self._build_loss()
        model = self.model_.to(dev)
        Y_t, M_t, w_t = self._target_tensors(Y, M, w, dev) if targets_t is None else targets_t
        params = self._trainable(model, parts)
        opt = torch.optim.Adam(params, lr=lr, weight_decay=self.weight_decay)
        if len(val_rows) > self.max_val_windows:
            val_rows = np.sort(rng.choice(val_rows, size=int(self.max_val_windows), replace=False))
        val_t = torch.as_tensor(val_rows, device=dev)
        best, best_state, best_epoch, bad = np.inf, None, 0, 0
        bs = int(self.batch_size)
        n_win = int(self.max_windows_per_epoch if max_windows is None else max_windows)
        n_steps, t0, epoch = 0, time.perf_counter(), 0
        for epoch in range(1, int(epochs) + 1):
            model.train()
            k = min(n_win, len(train_rows))
            pick = rng.choice(train_rows, size=k, replace=False)
            pick_t = torch.as_tensor(pick, device=dev)
            tot, cnt = 0.0, 0
            for b in range(0, k, bs):
                r = pick_t[b:b + bs]
                loss = loss_fn(self._forward(model, self._batch(data, r)), Y_t[r], M_t[r], w_t[r])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                tot += float(loss.detach()) * len(r)
                cnt += len(r)
                n_steps += 1
            val_loss = float("nan")
            if len(val_rows):
                val_loss = self._eval_loss(model, loss_fn, data, Y_t, M_t, w_t, val_t)
            self.history_.append({"phase": phase, "epoch": epoch, "train_loss": tot / max(cnt, 1),
                                  "val_loss": val_loss})
            if len(val_rows):
                if val_loss < best:
                    best, best_epoch, bad = val_loss, epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad += 1
                    if bad >= patience:
                        break
            else:
                best_epoch = epoch
        if best_state is not None:
            model.load_state_dict(best_state)
        elapsed = time.perf_counter() - t0
        self.model_ = model.to("cpu").eval()
        self.n_steps_ = getattr(self, "n_steps_", 0) + n_steps
        self.steps_per_second_ = n_steps / elapsed if elapsed > 0 else float("nan")
        self.best_epoch_ = best_epoch
        self.n_epochs_ = epoch

    @staticmethod
    def _target_tensors(Y: np.ndarray, M: np.ndarray, w: np.ndarray, dev: torch.device
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Standardised targets (NaN -> 0), usable mask and weights as float32 on ``dev``."""
        return (torch.as_tensor(np.nan_to_num(Y), dtype=torch.float32, device=dev),
                torch.as_tensor(M, dtype=torch.float32, device=dev),
                torch.as_tensor(w, dtype=torch.float32, device=dev))

    @torch.no_grad()
    def _eval_loss(self, model: nn.Module, loss_fn: LossFn, data: _CallData, Y_t: torch.Tensor,
                   M_t: torch.Tensor, w_t: torch.Tensor, rows_t: torch.Tensor) -> float:
        model.eval()
        num, den = 0.0, 0
        for b in range(0, len(rows_t), 4096):
            r = rows_t[b:b + 4096]
            loss = loss_fn(self._forward(model, self._batch(data, r)), Y_t[r], M_t[r], w_t[r])
            num += float(loss) * len(r)
            den += len(r)
        return num / max(den, 1)

    # ------------------------------------------------------------------ contract
    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> TorchLearner:
        """Fit scalers and network on these rows (early stopping on sites drawn from them).

        Parameters
        ----------
        X : pandas.DataFrame, shape (n, p)
            Features; NaN allowed.
        y : pandas.DataFrame, shape (n, k)
            Targets; NaN targets are masked (a row counts for the targets it has).
        sites, dates : numpy.ndarray, shape (n,)
            Site id and date of each row.
        sample_weight : numpy.ndarray, shape (n,), optional
            Row weights (>= 0) of the loss.
        """
        check_params(self)
        Xa, ya, fnames, tnames, sites_a, dates_a, w = check_inputs(X, y, sites, dates, sample_weight)
        target_row_masks(ya, w)  # every target needs a usable row
        dev = self._device()
        seed = seed_from(self.random_state)
        self._reset_fitted()  # a refit ignores the previous fit
        try:
            self.x_mean_, self.x_scale_, self.mask_cols_ = self._fit_feature_scaler(Xa)
            self.y_mean_, self.y_scale_ = self._fit_target_scaler(ya)
            self.feature_names_in_ = fnames
            self.target_names_ = tnames
            self._build_loss()  # a ConfigError (e.g. targets the loss needs) before any work
            self.time_step_ = infer_time_step(dates_a) if self.sequence else "D"
            self.device_ = str(dev)
            self.history_ = []
            data = self._call_data(Xa, sites_a, dates_a, dev, targets=ya)
        except Exception:
            self._reset_fitted()
            raise
        Y, M, ww, rows = self._prepare_targets(ya, w)
        rng = np.random.default_rng(seed)
        train_rows, val_rows, val_sites, mode = self._split(sites_a, dates_a, rows, rng)
        if len(train_rows) == 0:
            raise DataError(None, f"{self.name}: no training rows left after the validation split")
        self.val_sites_ = val_sites
        self.val_mode_ = mode
        t0 = time.perf_counter()
        with torch_env(self.n_threads, seed, dev):
            self.model_ = self._build_network(self._n_inputs(), len(tnames))
            self.n_steps_ = 0
            self._train(data, Y, M, ww, train_rows, val_rows, self.max_epochs,
                        self.lr, int(self.patience or 0), seed + 1, "fit")
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_fine_tune_epochs_ = 0
        return self

    def fine_tune(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
                  sample_weight: np.ndarray | None = None, epochs: int = 1,
                  lr: float | None = None, max_windows: int | None = None,
                  parts: str = "all") -> TorchLearner:
        """Continue training the fitted network on new rows (pre-train / fine-tune).

        The scalers of ``fit`` are kept; no early stopping.

        Parameters
        ----------
        X, y, sites, dates, sample_weight
            As in :meth:`fit`; the feature and target columns must equal those of ``fit``.
        epochs : int, default 1
            Epochs, each over at most ``max_windows`` windows of the new rows.
        lr : float, optional
            Adam learning rate; default ``lr / 10``.
        max_windows : int, optional
            Windows per epoch; default ``max_windows_per_epoch`` (giving ``k`` is the same as
            setting ``max_windows_per_epoch = k`` first, without changing it).
        parts : str, default "all"
            Parameters that train: ``"all"``, or names declared by :meth:`_parts` joined with
            ``+`` (e.g. ``"head"``, ``"head+last"``); the others stay exactly as they are.
        """
        self._check_fine_tune_args(epochs, lr, max_windows, parts)
        Xa, ya, sites_a, dates_a, w = self._fine_tune_inputs(X, y, sites, dates, sample_weight)
        dev = torch.device(self.device_)
        data = self._call_data(Xa, sites_a, dates_a, dev, targets=ya)
        Y, M, ww, rows = self._prepare_targets(ya, w)
        if len(rows) == 0:
            raise DataError(None, "fine_tune: no row with a finite target")
        return self._fine_tune_rows(data, rows, epochs, lr, max_windows, parts,
                                    self._target_tensors(Y, M, ww, dev))

    def _check_fine_tune_args(self, epochs: int, lr: float | None, max_windows: int | None,
                              parts: str) -> None:
        self._check_fitted()
        what = f"{self.name}.fine_tune"
        if not Interval(int, 0).ok(epochs):
            raise ConfigError(f"{what}: epochs must be an integer >= 0, got {epochs!r}")
        if max_windows is not None and not Interval(int, 1).ok(max_windows):
            raise ConfigError(f"{what}: max_windows must be an integer >= 1 or None, got {max_windows!r}")
        if lr is not None and not Interval(float, 0, None, closed="neither").ok(lr):
            raise ConfigError(f"{what}: lr must be a number > 0 or None, got {lr!r}")
        self._check_parts(self.model_, parts, what)

    def _fine_tune_inputs(self, X: pd.DataFrame, y: pd.DataFrame, sites: np.ndarray,
                          dates: np.ndarray, sample_weight: np.ndarray | None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Checked arrays of a fine-tune call: the columns of ``fit``, the targets of ``fit``."""
        Xa, ya, fnames, tnames, sites_a, dates_a, w = check_inputs(X, y, sites, dates, sample_weight,
                                                                    what="fine_tune")
        check_columns(self.feature_names_in_, fnames, "fine_tune")
        if list(tnames) != list(self.target_names_):
            raise DataError(None, f"fine_tune: targets {tnames} differ from those seen in fit {self.target_names_}")
        self._build_loss()
        return Xa, ya, sites_a, dates_a, w

    def _fine_tune_rows(self, data: _CallData, rows: np.ndarray, epochs: int, lr: float | None,
                        max_windows: int | None, parts: str,
                        targets_t: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> TorchLearner:
        """The training part of :meth:`fine_tune`: windows of ``rows`` of ``data``."""
        dev = torch.device(self.device_)
        seed = seed_from(self.random_state) + 1000 + int(self.n_fine_tune_epochs_)
        with torch_env(self.n_threads, seed, dev):
            self._train(data, None, None, None, rows, rows[:0], epochs,
                        self.lr / 10.0 if lr is None else lr, 0, seed, "fine_tune", parts, max_windows,
                        targets_t=targets_t)
        self.n_fine_tune_epochs_ += int(epochs)
        return self

    # ------------------------------------------------------- shared fine-tune data
    @classmethod
    def shares_fine_tune_data(cls) -> bool:
        """Whether :meth:`fine_tune_on` can stand in for :meth:`fine_tune` in this class.

        True when the class feeds the network as this base does: inputs, windows, batches,
        targets and training are :class:`TorchLearner`'s own, so a row's window and loss do
        not depend on which other sites are in the call. A subclass that adds per-site or
        target-derived inputs (e.g. TAM-RL's task embedding) gets False and fine-tunes
        with :meth:`fine_tune`.
        """
        methods = ("_inputs", "_call_data", "_windows", "_batch", "_forward", "_prepare_targets",
                   "_train", "_target_tensors", "fine_tune", "_fine_tune_rows")
        return all(getattr(cls, m) is getattr(TorchLearner, m) for m in methods)

    def _require_shared_data(self) -> None:
        if not self.shares_fine_tune_data():
            raise TypeError(f"{type(self).__name__} adds its own inputs to batches: use fine_tune")

    def _scalers(self) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(getattr(self, a)) for a in
                     ("x_mean_", "x_scale_", "mask_cols_", "y_mean_", "y_scale_"))

    def fine_tune_data(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray,
                       dates: np.ndarray, sample_weight: np.ndarray | None = None) -> FineTuneData:
        """Prepare rows once for several :meth:`fine_tune_on` calls on subsets of their sites.

        :meth:`fine_tune` builds the inputs of all the rows it is given at every call; a
        leave-one-site-out strategy that fine-tunes one copy of a model per test site on "all
        sites but that one" would rebuild nearly the same rows once per site (work that
        grows with sites x rows). The inputs are made with this learner's scalers; the
        learners that use them must have the same (copies of this one).

        Parameters
        ----------
        X, y, sites, dates, sample_weight
            As in :meth:`fine_tune`: every row any of the later calls may train on.

        Raises
        ------
        TypeError
            The class does not share fine-tune data (:meth:`shares_fine_tune_data`).
        """
        self._check_fitted()
        self._require_shared_data()
        Xa, ya, sites_a, dates_a, w = self._fine_tune_inputs(X, y, sites, dates, sample_weight)
        dev = torch.device(self.device_)
        call = self._call_data(Xa, sites_a, dates_a, dev, targets=ya)
        Y, M, ww, rows = self._prepare_targets(ya, w)
        return FineTuneData(call, self._target_tensors(Y, M, ww, dev), rows,
                            call.site.cpu().numpy(), np.asarray(call.site_ids, dtype=str),
                            self._scalers(), str(dev))

    def fine_tune_on(self, data: FineTuneData, sites, *, epochs: int = 1, lr: float | None = None,
                     max_windows: int | None = None, parts: str = "all") -> TorchLearner:
        """:meth:`fine_tune` on the rows of ``sites`` within prepared ``data``.

        The same network, bit for bit, as ``fine_tune`` given exactly those rows (in their
        order within ``data``): the same windows are drawn, with the same values and targets.
        Rows of other sites of ``data`` are never drawn.

        Parameters
        ----------
        data : FineTuneData
            From :meth:`fine_tune_data` of this learner or of a copy with the same scalers.
        sites : sequence of str
            The sites whose rows train (ids absent from ``data`` are ignored).
        epochs, lr, max_windows, parts
            As in :meth:`fine_tune`.
        """
        self._check_fine_tune_args(epochs, lr, max_windows, parts)
        self._require_shared_data()
        same = all(a.shape == b.shape and np.array_equal(a, b)
                   for a, b in zip(self._scalers(), data.scalers, strict=True))
        if data.device != str(torch.device(self.device_)) or not same:
            raise ValueError("fine_tune_on: the data were prepared by a learner with other scalers "
                             "or on another device")
        keep = np.isin(data.site_ids, np.asarray(list(sites), dtype=str))
        rows = data.rows[keep[data.site_code[data.rows]]]
        if len(rows) == 0:
            raise DataError(None, "fine_tune: no row with a finite target")
        return self._fine_tune_rows(data.call, rows, epochs, lr, max_windows, parts, data.targets)

    def predict(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """Predict every row [target units], shape (n, n_targets).

        Sequence learners build the windows from the rows given: pass each site's consecutive
        time steps (its whole record, or at least ``lookback - 1`` steps before the first one
        of interest); steps not passed count as missing (padding).
        """
        self._check_fitted()
        Xa, _, fnames, _, sites_a, dates_a, _ = check_inputs(X, None, sites, dates, what="predict")
        check_columns(self.feature_names_in_, fnames)
        return self._predict_arrays(Xa, sites_a, dates_a)

    def _predict_arrays(self, Xa: np.ndarray, sites_a: np.ndarray, dates_a: np.ndarray,
                        targets: np.ndarray | None = None) -> np.ndarray:
        """:meth:`predict` on checked arrays; ``targets`` go to :meth:`_call_data`."""
        dev = self._predict_device()
        out = np.empty((len(Xa), len(self.target_names_)))
        prev = torch.get_num_threads()
        try:
            if self.n_threads:
                torch.set_num_threads(int(self.n_threads))
            model = self.model_.to(dev).eval()
            data = self._call_data(Xa, sites_a, dates_a, dev, targets=targets)
            with torch.no_grad():
                for b in range(0, len(Xa), 4096):
                    r = torch.arange(b, min(b + 4096, len(Xa)), device=dev)
                    out[b:b + 4096] = self._forward(model, self._batch(data, r)).double().cpu().numpy()
            self.model_ = model.to("cpu")
        finally:
            torch.set_num_threads(prev)
        return out * self.y_scale_[None, :] + self.y_mean_[None, :]

    # ------------------------------------------------------------------ saving
    def get_state(self) -> dict[str, Any]:
        """The fitted learner as a dict of tensors and plain Python values.

        Keys: ``format``, ``version``, ``learner`` (registry name), ``params``
        (hyperparameters), ``fitted`` (fitted attributes; arrays as ``{"ndarray": tensor}`` or
        ``{"str_array": [...]}``), ``n_inputs``, ``n_outputs`` and ``state_dict`` (the
        network's weights, on CPU). :meth:`set_state` and :meth:`load` read it back.
        """
        self._check_fitted()
        params = {k: _encode(v, f"{self.name}: hyperparameter {k}") for k, v in self.get_params().items()}
        fitted = {k: _encode(v, f"{self.name}: fitted attribute {k}") for k, v in vars(self).items()
                  if k.endswith("_") and not k.startswith("_") and k != "model_"}
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "learner": self.name,
            "params": params,
            "fitted": fitted,
            "n_inputs": self._n_inputs(),
            "n_outputs": len(self.target_names_),
            "state_dict": {k: v.detach().to("cpu").clone() for k, v in self.model_.state_dict().items()},
        }

    def set_state(self, state: dict[str, Any]) -> TorchLearner:
        """Become the fitted learner described by ``state`` (from :meth:`get_state`).

        Raises
        ------
        fluxcore.errors.DataError
            When ``state`` is not such a dict, is of another learner or does not fit the
            network.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise DataError(None, "not a fluxcore torch learner state (no format entry "
                                  f"{STATE_FORMAT!r})")
        if state.get("version") != STATE_VERSION:
            raise DataError(None, f"state version {state.get('version')!r} is not supported "
                                  f"(this fluxcore reads version {STATE_VERSION})")
        if state.get("learner") != self.name:
            raise DataError(None, f"state of learner {state.get('learner')!r}, not {self.name!r}")
        try:
            params = {k: _decode(v) for k, v in state["params"].items()}
            fitted = {k: _decode(v) for k, v in state["fitted"].items()}
            n_in, n_out = int(state["n_inputs"]), int(state["n_outputs"])
            weights = dict(state["state_dict"])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise DataError(None, f"incomplete learner state ({type(exc).__name__}: {exc})") from exc
        try:
            self.set_params(**params)
        except ConfigError as exc:
            raise DataError(None, f"saved hyperparameters do not fit {type(self).__name__}: {exc}") from exc
        self._reset_fitted()
        for k, v in fitted.items():
            setattr(self, k, v)
        with torch.random.fork_rng(devices=[]):
            net = self._build_network(n_in, n_out)
        try:
            net.load_state_dict(weights)
        except (RuntimeError, KeyError, TypeError) as exc:
            self._reset_fitted()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(None, f"saved weights do not fit the network ({first})") from exc
        self.model_ = net.eval()
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`get_state` with ``torch.save`` (written to a temporary file, then
        renamed); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        torch.save(self.get_state(), tmp)
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> TorchLearner:
        """Read a model written by :meth:`save` (``torch.load(..., weights_only=True)``).

        The learner is made by its registry name (:func:`fluxcore.learners.make_learner`) with
        the saved hyperparameters, so ``TorchLearner.load`` returns the right subclass.

        Raises
        ------
        fluxcore.errors.DataError
            ``DataError(path, problem)`` when the file is missing, not a fluxcore torch model,
            damaged, or of a learner that is not registered.
        """
        p = Path(path)
        if not p.is_file():
            raise DataError(p, "no such model file")
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unreadable file (damaged zip, pickle, truncation...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DataError(p, f"not a readable torch model file ({type(exc).__name__}: {first[:200]})") from exc
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise DataError(p, f"not a fluxcore torch model (no format entry {STATE_FORMAT!r})")
        name = state.get("learner")
        try:
            learner = make_learner(str(name))
        except ConfigError as exc:
            raise DataError(p, f"model of learner {name!r}, which is not registered ({exc})") from exc
        if not isinstance(learner, cls):
            raise DataError(p, f"model of learner {name!r} ({type(learner).__name__}), "
                               f"not a {cls.__name__}")
        try:
            return learner.set_state(state)
        except DataError as exc:
            raise DataError(p, exc.problem) from exc


# ---------------------------------------------------------------- state encoding
def _encode(v: Any, what: str) -> Any:
    """Tensors and plain Python values only (loadable with ``weights_only=True``)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "US":
            return {"str_array": [str(x) for x in v.tolist()], "shape": list(v.shape)}
        if v.dtype.kind in "biuf":
            return {"ndarray": torch.tensor(v)}
        raise ConfigError(f"{what}: cannot save an array of dtype {v.dtype}")
    if isinstance(v, torch.Tensor):
        return v.detach().to("cpu").clone()
    if isinstance(v, (list, tuple)):
        out = [_encode(x, what) for x in v]
        return out if isinstance(v, list) else tuple(out)
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        if set(v) & {"ndarray", "str_array"}:
            raise ConfigError(f"{what}: cannot save a dict with the reserved key 'ndarray' / 'str_array'")
        return {k: _encode(x, what) for k, x in v.items()}
    raise ConfigError(f"{what}: cannot save a value of type {type(v).__name__}")


def _decode(v: Any) -> Any:
    if isinstance(v, dict):
        if "ndarray" in v:
            return v["ndarray"].numpy().copy()
        if "str_array" in v:
            return np.array(v["str_array"], dtype=str).reshape(v.get("shape", [-1]))
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_decode(x) for x in v)
    return v
