"""Long short-term memory network (PyTorch) on look-back windows of daily drivers.

Architecture
------------
For each site-day to predict, the input is the window of the ``lookback`` days ending on that
day (same-day and past drivers of the same site only). Each time step carries the standardised
features (static site variables are constant channels repeated at every step), one
missing-value indicator per feature that had NaN in training (``missing_mask=True``) and one
"no data" indicator for days before the site's first day or absent calendar days. A one- or
multi-layer LSTM (Hochreiter & Schmidhuber 1997) reads the window; its last hidden state goes
through dropout and one linear head with one output per target (many-to-one).

Windowing
---------
Rows are placed on a per-site calendar (contiguous array per site, one slot per day from the
site's first to last day); a window is pure index arithmetic ``pos - lookback + 1 .. pos``,
positions before the site's first day point to a padding row (features 0 = training mean,
indicators 1). So every day gets a prediction, the first days of a site with a shorter
(padded) history. Windows never cross sites.

Training
--------
Inputs are standardised with the training rows' mean and standard deviation (NaN -> 0 after
scaling, i.e. the training mean). Targets are standardised per target; the loss is the
(sample-)weighted mean squared error over the finite targets of each row (NaN targets are
masked). Adam, gradient-norm clipping at 1. Each epoch samples at most
``max_windows_per_epoch`` training windows. Early stopping with ``patience`` on validation
*sites* drawn (seeded) from the training sites (``val_fraction`` of them); with fewer than
``site_val_min_sites`` training sites, the last ``val_fraction`` of each site's days is used
instead. The weights of the best validation epoch are kept.

Carbon-balance loss (``loss="mse+balance"``) adds ``balance_weight * mean(w (ER - GPP - NEE)^2)
/ var(NEE)`` on the predictions (the mass balance NEE = ER - GPP) when the targets include
GPP, ER and NEE: a hook for knowledge-guided (TAM-RL-style) training.

Determinism: training runs inside :func:`torch.random.fork_rng` seeded by ``random_state``
(the global RNG is restored afterwards), window sampling uses a local numpy Generator,
``torch.use_deterministic_algorithms`` is on while fitting and ``torch.set_num_threads`` is
set to ``n_threads`` and restored. On CPU, the same ``random_state`` and ``n_threads`` give
bitwise identical predictions; on CUDA results may differ in the last digits.

References
----------
Hochreiter, S., Schmidhuber, J. (1997). Long short-term memory. Neural Computation 9(8),
1735-1780. doi:10.1162/neco.1997.9.8.1735
Kingma, D. P., Ba, J. (2015). Adam: a method for stochastic optimization. ICLR.
arXiv:1412.6980
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ._util import check_columns, check_inputs, seed_from, target_row_masks, target_stats
from .base import Boolean, FluxLearner, Interval, Options, Pattern, Seed, check_params, register

LOSSES = ("mse", "mse+balance")


class _Net(nn.Module):
    """LSTM encoder + dropout + one linear head (n_targets outputs)."""

    def __init__(self, n_in: int, hidden: int, layers: int, dropout: float, n_out: int):
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(self.drop(out[:, -1]))


def _layout(sites: np.ndarray, dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Calendar position of each row in a concatenation of per-site daily arrays.

    Returns
    -------
    pos : ndarray of int64, shape (n,)
        Slot of each row.
    start : ndarray of int64, shape (n,)
        First slot of the row's site.
    total : int
        Number of slots (the padding slot is ``total``).
    """
    n = len(sites)
    if np.isnat(dates).any():
        raise DataError(None, "lstm: dates contain NaT")
    codes, _ = pd.factorize(sites, sort=True)
    day = dates.astype("datetime64[D]").astype(np.int64)
    order = np.lexsort((day, codes))
    c_s, d_s = codes[order], day[order]
    first = np.flatnonzero(np.r_[True, c_s[1:] != c_s[:-1]])
    counts = np.diff(np.r_[first, n])
    sid = np.repeat(np.arange(len(first)), counts)
    if np.any((np.diff(d_s) == 0) & (np.diff(sid) == 0)):
        raise DataError(None, "lstm: a site has the same date twice")
    dmin = d_s[first]
    span = d_s[first + counts - 1] - dmin + 1
    offset = np.r_[0, np.cumsum(span)[:-1]]
    if span.sum() > max(20 * n, 2_000_000):
        raise DataError(None, f"lstm: dates span {int(span.sum())} site-days for {n} rows; "
                              "check for wrong dates (windows need a daily calendar per site)")
    pos = np.empty(n, dtype=np.int64)
    start = np.empty(n, dtype=np.int64)
    pos[order] = offset[sid] + (d_s - dmin[sid])
    start[order] = offset[sid]
    return pos, start, int(span.sum())


@contextmanager
def _torch_env(n_threads: int | None, seed: int, device: torch.device):
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


@register("lstm")
class LSTMLearner(FluxLearner):
    """LSTM regression of all targets from look-back windows of daily features.

    Parameters
    ----------
    lookback : int, default 30
        Window length [days], including the predicted day.
    hidden_size : int, default 64
        LSTM hidden units.
    num_layers : int, default 1
        Stacked LSTM layers.
    dropout : float, default 0.1
        Dropout before the head (and between LSTM layers).
    max_epochs : int, default 20
        Epoch cap.
    patience : int, default 3
        Epochs without validation improvement before stopping.
    batch_size : int, default 256
        Windows per optimiser step.
    max_windows_per_epoch : int, default 30000
        Training windows sampled (without replacement) per epoch.
    max_val_windows : int, default 20000
        Validation windows (a fixed seeded sample) evaluated per epoch.
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 0.0
        Adam weight decay.
    val_fraction : float, default 0.2
        Fraction of training sites (or of each site's last days) used for early stopping;
        0 disables early stopping (all ``max_epochs`` are run).
    site_val_min_sites : int, default 3
        With fewer training sites, validation uses the last days of each site instead.
    missing_mask : bool, default True
        Add a 0/1 channel per feature that had NaN in training.
    loss : {"mse", "mse+balance"}, default "mse"
        Training loss; ``"mse+balance"`` adds the carbon-balance penalty (needs GPP, ER, NEE).
    balance_weight : float, default 0.1
        Weight of the carbon-balance penalty.
    device : {"cpu", "cuda", "auto"}, default "cpu"
        ``"auto"`` uses CUDA when available.
    n_threads : int, default 1
        ``torch.set_num_threads`` while fitting/predicting (restored afterwards).
    random_state : int or None, default 0
        Seed of weight initialisation, dropout, window sampling and validation sites.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained network (on CPU between calls).
    x_mean_, x_scale_, y_mean_, y_scale_ : numpy.ndarray
        Training scaling of features and targets.
    mask_cols_ : numpy.ndarray of int
        Features with a missing-value channel.
    val_sites_ : numpy.ndarray of str
        Training sites used for early stopping (empty for time-based or no validation).
    val_mode_ : str
        ``"sites"``, ``"time"`` or ``"none"``.
    history_ : list of dict
        Per epoch: ``phase, epoch, train_loss, val_loss``.
    best_epoch_, n_epochs_, n_steps_ : int
    steps_per_second_ : float
        Optimiser steps per second of the fit.
    device_ : str
    feature_names_in_, target_names_ : list of str
    """

    name = "lstm"
    multi_target = True
    sequence = True
    _parameter_constraints = {
        "lookback": [Interval(int, 1)],
        "hidden_size": [Interval(int, 1)],
        "num_layers": [Interval(int, 1)],
        "dropout": [Interval(float, 0, 1, closed="left")],
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
        "loss": [Options(*LOSSES)],
        "balance_weight": [Interval(float, 0)],
        "device": [Pattern(r"cpu|auto|cuda(:\d+)?", "'cpu', 'cuda', 'cuda:N' or 'auto'")],
        "n_threads": [None, Interval(int, 1)],
        "random_state": [None, Seed()],
    }

    def __init__(self, lookback: int = 30, hidden_size: int = 64, num_layers: int = 1,
                 dropout: float = 0.1, max_epochs: int = 20, patience: int = 3,
                 batch_size: int = 256, max_windows_per_epoch: int = 30000,
                 max_val_windows: int = 20000, lr: float = 1e-3, weight_decay: float = 0.0,
                 val_fraction: float = 0.2, site_val_min_sites: int = 3,
                 missing_mask: bool = True, loss: str = "mse", balance_weight: float = 0.1,
                 device: str = "cpu", n_threads: int | None = 1,
                 random_state: int | None = 0):
        self.lookback = lookback
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
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

    # ------------------------------------------------------------------ helpers
    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"lstm: device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("lstm: device='cuda' but CUDA is not available")
        return torch.device(self.device)

    def _inputs(self, Xa: np.ndarray, sites: np.ndarray, dates: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calendar array of model inputs (+ padding row) and row positions."""
        pos, start, total = _layout(sites, dates)
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

    def _windows(self, full: torch.Tensor, pos: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        L = int(self.lookback)
        idx = pos[:, None] + torch.arange(-L + 1, 1, device=pos.device)[None, :]
        idx = torch.where(idx >= start[:, None], idx, full.shape[0] - 1)
        return full[idx]

    def _batch_loss(self, pred, yt, m, w) -> torch.Tensor:
        wm = m * w[:, None]
        loss = (wm * (pred - yt) ** 2).sum() / wm.sum().clamp_min(1e-12)
        if self.loss == "mse+balance":
            g, e, n = self._balance_idx
            ym = torch.as_tensor(self.y_mean_, dtype=pred.dtype, device=pred.device)
            ys = torch.as_tensor(self.y_scale_, dtype=pred.dtype, device=pred.device)
            p = pred * ys + ym
            r = p[:, e] - p[:, g] - p[:, n]
            loss = loss + self.balance_weight * (w * r ** 2).sum() / w.sum().clamp_min(1e-12) / ys[n] ** 2
        return loss

    def _check_loss(self, tnames: list[str]) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"lstm: loss must be one of {LOSSES}, got {self.loss!r}")
        if self.loss == "mse+balance":
            need = ("GPP", "ER", "NEE")
            if not set(need) <= set(tnames):
                raise ConfigError(f"lstm: loss='mse+balance' needs targets {need}, got {tnames}")
            self._balance_idx = tuple(tnames.index(t) for t in need)

    def _split(self, sites: np.ndarray, dates: np.ndarray, rows: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
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
        # time-based: the last val_fraction of each site's (target) days
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

    # ----------------------------------------------------------------- training
    def _train(self, full, pos, start, Y, M, w, train_rows, val_rows, epochs, lr, patience,
               seed, phase, freeze_lstm=False) -> None:
        dev = torch.device(self.device_)
        rng = np.random.default_rng(seed)
        model = self.model_.to(dev)
        full_t = torch.as_tensor(full, device=dev)
        pos_t = torch.as_tensor(pos, device=dev)
        start_t = torch.as_tensor(start, device=dev)
        Y_t = torch.as_tensor(np.nan_to_num(Y), dtype=torch.float32, device=dev)
        M_t = torch.as_tensor(M, dtype=torch.float32, device=dev)
        w_t = torch.as_tensor(w, dtype=torch.float32, device=dev)
        params = [p for n_, p in model.named_parameters() if not (freeze_lstm and n_.startswith("lstm."))]
        opt = torch.optim.Adam(params, lr=lr, weight_decay=self.weight_decay)
        if len(val_rows) > self.max_val_windows:
            val_rows = np.sort(rng.choice(val_rows, size=int(self.max_val_windows), replace=False))
        val_t = torch.as_tensor(val_rows, device=dev)
        best, best_state, best_epoch, bad = np.inf, None, 0, 0
        bs = int(self.batch_size)
        n_steps, t0 = 0, time.perf_counter()
        for epoch in range(1, int(epochs) + 1):
            model.train()
            k = min(int(self.max_windows_per_epoch), len(train_rows))
            pick = rng.choice(train_rows, size=k, replace=False)
            pick_t = torch.as_tensor(pick, device=dev)
            tot, cnt = 0.0, 0
            for b in range(0, k, bs):
                r = pick_t[b:b + bs]
                xb = self._windows(full_t, pos_t[r], start_t[r])
                loss = self._batch_loss(model(xb), Y_t[r], M_t[r], w_t[r])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                tot += float(loss.detach()) * len(r)
                cnt += len(r)
                n_steps += 1
            val_loss = float("nan")
            if len(val_rows):
                val_loss = self._eval_loss(model, full_t, pos_t, start_t, Y_t, M_t, w_t, val_t)
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

    @torch.no_grad()
    def _eval_loss(self, model, full_t, pos_t, start_t, Y_t, M_t, w_t, rows_t) -> float:
        model.eval()
        num, den = 0.0, 0
        for b in range(0, len(rows_t), 4096):
            r = rows_t[b:b + 4096]
            loss = self._batch_loss(model(self._windows(full_t, pos_t[r], start_t[r])), Y_t[r], M_t[r], w_t[r])
            num += float(loss) * len(r)
            den += len(r)
        return num / max(den, 1)

    def _prepare_targets(self, ya, w):
        M = np.isfinite(ya) if w is None else np.isfinite(ya) & (w > 0)[:, None]
        Y = (ya - self.y_mean_) / self.y_scale_
        ww = np.ones(len(ya)) if w is None else w
        rows = np.flatnonzero(M.any(axis=1))
        return Y, M, ww, rows

    # ------------------------------------------------------------------ contract
    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> LSTMLearner:
        check_params(self)
        Xa, ya, fnames, tnames, sites_a, dates_a, w = check_inputs(X, y, sites, dates, sample_weight)
        self._check_loss(tnames)
        target_row_masks(ya, w)  # every target needs a usable row
        dev = self._device()
        seed = seed_from(self.random_state)
        # fitted state (reset: a refit ignores the previous fit)
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, k)
        ok = np.isfinite(Xa)
        cnt = ok.sum(axis=0)
        mean = np.where(cnt > 0, np.where(ok, Xa, 0.0).sum(axis=0) / np.maximum(cnt, 1), 0.0)
        var = np.where(ok, (Xa - mean) ** 2, 0.0).sum(axis=0) / np.maximum(cnt, 1)
        std = np.sqrt(var)
        self.x_mean_ = mean
        self.x_scale_ = np.where(std > 1e-12, std, 1.0)
        self.mask_cols_ = (np.flatnonzero(~ok.all(axis=0)) if self.missing_mask
                           else np.zeros(0, dtype=np.int64))
        self.y_mean_, self.y_scale_ = target_stats(np.where(np.isfinite(ya), ya, np.nan))
        self.feature_names_in_ = fnames
        self.target_names_ = tnames
        self.device_ = str(dev)
        self.history_ = []
        full, pos, start = self._inputs(Xa, sites_a, dates_a)
        Y, M, ww, rows = self._prepare_targets(ya, w)
        rng = np.random.default_rng(seed)
        train_rows, val_rows, val_sites, mode = self._split(sites_a, dates_a, rows, rng)
        if len(train_rows) == 0:
            raise DataError(None, "lstm: no training rows left after the validation split")
        self.val_sites_ = val_sites
        self.val_mode_ = mode
        n_in = full.shape[1]
        t0 = time.perf_counter()
        with _torch_env(self.n_threads, seed, dev):
            self.model_ = _Net(n_in, int(self.hidden_size), int(self.num_layers),
                               float(self.dropout), len(tnames))
            self.n_steps_ = 0
            self._train(full, pos, start, Y, M, ww, train_rows, val_rows, self.max_epochs,
                        self.lr, int(self.patience or 0), seed + 1, "fit")
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_fine_tune_epochs_ = 0
        return self

    def fine_tune(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
                  sample_weight: np.ndarray | None = None, epochs: int = 5,
                  lr: float | None = None, freeze_lstm: bool = False, **kwargs: Any) -> LSTMLearner:
        """Continue training the fitted network on new rows (pre-train / fine-tune).

        The feature and target scalers of the first ``fit`` are kept; no early stopping.

        Parameters
        ----------
        X, y, sites, dates, sample_weight
            As in :meth:`fit`; the feature and target columns must match the first fit.
        epochs : int, default 5
            Epochs over (at most ``max_windows_per_epoch``) windows of the new rows.
        lr : float, optional
            Learning rate; default ``lr / 10``.
        freeze_lstm : bool, default False
            Train the linear head only.
        """
        self._check_fitted()
        if kwargs:
            raise ConfigError(f"lstm.fine_tune: unknown argument(s) {sorted(kwargs)}")
        Xa, ya, fnames, tnames, sites_a, dates_a, w = check_inputs(X, y, sites, dates, sample_weight,
                                                                    what="fine_tune")
        check_columns(self.feature_names_in_, fnames, "fine_tune")
        if list(tnames) != list(self.target_names_):
            raise DataError(None, f"fine_tune: targets {tnames} differ from those seen in fit {self.target_names_}")
        self._check_loss(tnames)
        full, pos, start = self._inputs(Xa, sites_a, dates_a)
        Y, M, ww, rows = self._prepare_targets(ya, w)
        if len(rows) == 0:
            raise DataError(None, "fine_tune: no row with a finite target")
        dev = torch.device(self.device_)
        seed = seed_from(self.random_state) + 1000 + int(self.n_fine_tune_epochs_)
        with _torch_env(self.n_threads, seed, dev):
            self._train(full, pos, start, Y, M, ww, rows, rows[:0], epochs,
                        self.lr / 10.0 if lr is None else lr, 0, seed, "fine_tune", freeze_lstm)
        self.n_fine_tune_epochs_ += int(epochs)
        return self

    def predict(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """Predict every row; windows are built from the rows given.

        Pass each site's consecutive days (its whole record, or at least ``lookback - 1``
        days before the first day of interest): days not passed count as missing days (padding),
        so predicting a thinned-out subset of days loses the history.
        """
        self._check_fitted()
        Xa, _, fnames, _, sites_a, dates_a, _ = check_inputs(X, None, sites, dates, what="predict")
        check_columns(self.feature_names_in_, fnames)
        full, pos, start = self._inputs(Xa, sites_a, dates_a)
        # the fitted model lives on CPU; use CUDA only where it was asked for and is present
        want_cuda = str(self.device_).startswith("cuda") or self.device == "auto"
        dev = torch.device(self.device_ if str(self.device_).startswith("cuda") else "cuda") \
            if want_cuda and torch.cuda.is_available() else torch.device("cpu")
        out = np.empty((len(Xa), len(self.target_names_)))
        prev = torch.get_num_threads()
        try:
            if self.n_threads:
                torch.set_num_threads(int(self.n_threads))
            model = self.model_.to(dev).eval()
            with torch.no_grad():
                full_t = torch.as_tensor(full, device=dev)
                pos_t = torch.as_tensor(pos, device=dev)
                start_t = torch.as_tensor(start, device=dev)
                for b in range(0, len(Xa), 4096):
                    sl = slice(b, b + 4096)
                    out[sl] = model(self._windows(full_t, pos_t[sl], start_t[sl])).double().cpu().numpy()
            self.model_ = model.to("cpu")
        finally:
            torch.set_num_threads(prev)
        return out * self.y_scale_[None, :] + self.y_mean_[None, :]
