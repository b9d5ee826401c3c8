"""TAM-RL: task-aware modulation of a recurrent decoder by a per-site embedding of the drivers.

A subclass of :class:`fluxcore.learners.torchbase.TorchLearner` (windowing, scaling, target
masking, early stopping on validation sites, determinism, losses, fine-tuning and saving come
from there). After the TAM-RL framework of the CarbonFluxBench code (seed ``004``), with the
changes listed under *Differences from the original*.

Architecture
------------
Task encoder (one embedding per site)
    For every site of a ``fit`` / ``fine_tune`` / ``predict`` call, ``context_windows``
    windows of ``context_days`` calendar days are placed evenly over the site's record (first
    window at its first day, last window ending on its last day; a record shorter than a
    window gives one window padded with "no data" steps). Each window holds the same
    standardised input channels as the decoder (features, missing-value indicators, "no data"
    indicator) averaged over blocks of ``context_pool`` days. Two 1-D convolutions (kernel 3,
    ReLU, ``encoder_size`` channels) read each window, the result is averaged over time and
    over the windows, concatenated with the site's static attributes and mapped by a linear
    layer and ``tanh`` to the embedding ``z`` (``embedding_size`` values). With
    ``context_months = 0`` (zero-shot, the default) only the ``X`` rows of the call enter: the
    site's *drivers*, never its fluxes. A held-out site's embedding thus uses its own drivers
    only (leak-free), and is the same for every row of the site (no dependence on the window
    being predicted). For the few-shot mode see *Few-shot mode* below.
Static attributes
    The feature columns that are constant per site: the catalogue attributes and derived
    site-level features (:func:`fluxcore.variables.is_site_level`: ``ARIDITY_INDEX``,
    ``MAP_MM``, ``WHC_MM``, ``SITE_MEAN_*``, ``IGBP_*`` one-hot) and the paper statics
    ``ELEV, SLOPE, ASPECT, CLAY, SAND, SILT`` (and ``LAT``) when present; recorded in
    ``static_features_``.
Decoder with modulation
    Each time step of the ``lookback`` window is mapped by a linear layer to ``hidden_size``
    channels and modulated by the static attributes (FiLM, Perez et al. 2018:
    ``u * (1 + gamma_s) + beta_s``), then read by an LSTM; its last hidden state ``h`` is
    modulated by the task embedding, ``h * (1 + gamma(z)) + beta(z)``, and a two-layer head
    (ReLU, dropout) gives one output per target. Both FiLM layers start at zero (the untrained
    network is a plain LSTM).
Loss
    ``loss="mse"`` or ``"mse+balance"`` from :mod:`fluxcore.learners.losses`: the masked,
    weighted MSE on standardised targets plus ``balance_weight * mean((ER - GPP - NEE)^2) /
    var(NEE)`` on the predictions mapped back to [gC m-2 d-1].

Fine-tuning parts: ``"head"``, ``"last"`` (the LSTM), ``"film"`` (both FiLM layers) and
``"encoder"`` (task encoder), joined with ``+``.

Few-shot mode
-------------
``context_months = k > 0`` ("k-shot"; tag ``few_shot``): the context windows gain, per target,
a channel with the standardised observed flux and a 0/1 "observed" channel, filled only on the
days of the first ``k`` calendar months of each site's record
(:func:`fluxcore.fewshot.first_months_mask`, the month of the site's first date counting as
the first) where the flux is finite; everywhere else both are 0. The first context window
starts on the site's first day, so it holds all ``k`` months when the windows are at least
``31 k`` days long (checked in ``fit``). The same scheme is used for every site:

* ``fit`` / ``fine_tune``: each training site's embedding sees the fluxes of its own first
  ``k`` months (training sites' fluxes may be used), and those rows get loss weight 0, so a
  network never learns to predict a day whose flux its embedding saw (training then matches
  evaluation; early stopping uses the other months of the validation sites too);
* ``predict(X, sites=, dates=, context=)``: ``context`` (:func:`fluxcore.fewshot.context_frame`:
  ``SITE_ID, DATE`` and the targets) holds the observed fluxes of the first ``k`` months of the
  predicted sites, and nothing else: a row outside those months, or not among the predicted
  rows, is an error. Without ``context`` the flux channels are empty ("not observed": a site
  without measurements). Nothing fitted changes: the fluxes enter the embedding only.

:meth:`TAMRLLearner.context_rows` tells the runner which rows those are; the runner hands
their fluxes over and leaves them out of the site's scores (:mod:`fluxcore.fewshot`).
``context_months = 0`` is the zero-shot computation, unchanged.

Differences from the original
-----------------------------
* the balance term runs (it is silently skipped there) and compares predictions in physical
  units, where NEE = ER - GPP holds;
* the embedding summarises the whole site from windows spread over its record, instead of
  encoding the very window being predicted;
* early stopping on held-out validation *sites* (not the last 20 % of each site's record).

References
----------
Perez, E., Strub, F., de Vries, H., Dumoulin, V., Courville, A. (2018). FiLM: visual reasoning
with a general conditioning layer. AAAI. arXiv:1709.07871
Hochreiter, S., Schmidhuber, J. (1997). Long short-term memory. Neural Computation 9(8),
1735-1780. doi:10.1162/neco.1997.9.8.1735
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..fewshot import first_months_mask
from ..variables import is_site_level
from ._util import check_columns, check_inputs
from .base import Interval, check_params, register
from .torchbase import Batch, TorchLearner, _CallData

#: paper statics and catalogue values that are constant per site (besides is_site_level names)
STATIC_NAMES = ("ELEV", "SLOPE", "ASPECT", "CLAY", "SAND", "SILT", "LAT", "LON")


class _ContextMonths(Interval):
    """Constraint of ``context_months``: an integer >= 0 (0: zero-shot)."""

    def __init__(self) -> None:
        super().__init__(int, 0)

    def __str__(self) -> str:
        return ("an integer >= 0 (0: zero-shot; k: the first k calendar months of a held-out "
                "site's fluxes enter its embedding and are not scored)")


def static_feature_names(names: list[str]) -> list[str]:
    """Feature columns that TAM-RL treats as static site attributes (see module docstring)."""
    return [n for n in names if is_site_level(n) or n in STATIC_NAMES]


# --------------------------------------------------------------------------- data
@dataclass
class _TamCallData(_CallData):
    """Call data plus the per-site context windows and static attributes."""

    ctx: torch.Tensor | None = None      # (n_sites, K, T, n_in)
    static: torch.Tensor | None = None   # (n_sites, n_static)


@dataclass
class TamBatch(Batch):
    """A :class:`~fluxcore.learners.torchbase.Batch` with the call's per-site inputs.

    Attributes
    ----------
    ctx : torch.Tensor, shape (n_sites, context_windows, T, n_inputs)
        Context windows of every site of the call (``T = context_days // context_pool``).
    static : torch.Tensor, shape (n_sites, n_static)
        Standardised static attributes of every site of the call.
    """

    ctx: torch.Tensor | None = None
    static: torch.Tensor | None = None


# ------------------------------------------------------------------------- network
class _TamNet(nn.Module):
    """Task encoder + statically modulated LSTM decoder + FiLM by the task embedding."""

    def __init__(self, n_in: int, n_static: int, hidden: int, emb: int, enc: int,
                 dropout: float, n_out: int, n_flux: int = 0):
        super().__init__()
        self.n_static = n_static
        # n_flux: extra context channels of the few-shot mode (fluxes + "observed" flags)
        self.encoder = nn.Sequential(nn.Conv1d(n_in + n_flux, enc, 3, padding=1), nn.ReLU(),
                                     nn.Conv1d(enc, enc, 3, padding=1), nn.ReLU())
        self.to_z = nn.Linear(enc + n_static, emb)
        self.inp = nn.Linear(n_in, hidden)
        self.static_film = nn.Linear(max(n_static, 1), 2 * hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.film = nn.Linear(emb, 2 * hidden)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_out))
        for layer in (self.static_film, self.film):  # start as a plain LSTM
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def encode(self, ctx: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """Embeddings, shape (sites, emb), of context windows (sites, K, T, n_in)."""
        s, k, t, c = ctx.shape
        h = self.encoder(ctx.reshape(s * k, t, c).transpose(1, 2))  # (s*k, enc, t)
        h = h.mean(dim=2).reshape(s, k, -1).mean(dim=1)
        return torch.tanh(self.to_z(torch.cat([h, static], dim=1)))

    def forward(self, x: torch.Tensor, z: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        u = self.inp(x)
        s = static if self.n_static else torch.zeros(len(x), 1, dtype=x.dtype, device=x.device)
        gs, bs = self.static_film(s).chunk(2, dim=-1)
        u = torch.relu(u * (1 + gs[:, None, :]) + bs[:, None, :])
        out, _ = self.lstm(u)
        gz, bz = self.film(z).chunk(2, dim=-1)
        return self.head(out[:, -1] * (1 + gz) + bz)


# ------------------------------------------------------------------------- learner
@register("tamrl")
class TAMRLLearner(TorchLearner):
    """TAM-RL: LSTM decoder modulated by a per-site embedding of the site's own drivers.

    Parameters
    ----------
    lookback : int, default 30
        Decoder window [days], including the predicted day.
    hidden_size : int, default 64
        LSTM hidden units (and width of the input layer and head).
    embedding_size : int, default 16
        Length of the site embedding ``z``.
    encoder_size : int, default 32
        Channels of the task encoder's convolutions.
    context_windows : int, default 6
        Context windows per site, spread evenly over its record.
    context_days : int, default 364
        Length of a context window [days].
    context_pool : int, default 28
        Context steps averaged into one encoder step [days].
    context_months : int, default 0
        Few-shot mode: the first ``context_months`` calendar months of each site's observed
        fluxes enter its embedding (see *Few-shot mode* in the module docstring); 0 is
        zero-shot. Recorded in the run configuration; results are labelled zero-shot or
        k-shot (:func:`fluxcore.fewshot.shot_label`).
    dropout : float, default 0.1
        Dropout in the head.
    max_epochs, patience, batch_size, max_windows_per_epoch, max_val_windows, lr,
    weight_decay, val_fraction, site_val_min_sites, missing_mask, device, n_threads,
    random_state
        As in :class:`fluxcore.learners.torchbase.TorchLearner`.
    loss : {"mse", "mse+balance"} or another registered loss, default "mse"
        Training loss (:mod:`fluxcore.learners.losses`); ``"mse+balance"`` needs the
        targets GPP, ER and NEE.
    balance_weight : float, default 1.0
        Weight of the carbon-balance term of ``"mse+balance"``.

    Attributes
    ----------
    static_features_ : list of str
        Feature columns used as static site attributes.
    static_cols_ : numpy.ndarray of int
        Their positions among the features.
    (and those of :class:`~fluxcore.learners.torchbase.TorchLearner`)
    """

    name = "tamrl"
    description = "TAM-RL network (task-aware modulation)"
    _tags = {"sequence": True, "multi_target": True, "fine_tune": True, "few_shot": True,
             "fast_strategy": "group_finetune", "time_resolution": ("daily",)}
    _parameter_constraints = {
        "lookback": [Interval(int, 1)],
        "hidden_size": [Interval(int, 1)],
        "embedding_size": [Interval(int, 1)],
        "encoder_size": [Interval(int, 1)],
        "context_windows": [Interval(int, 1)],
        "context_days": [Interval(int, 1)],
        "context_pool": [Interval(int, 1)],
        "context_months": [_ContextMonths()],
        "dropout": [Interval(float, 0, 1, closed="left")],
    }

    def __init__(self, lookback: int = 30, hidden_size: int = 64, embedding_size: int = 16,
                 encoder_size: int = 32, context_windows: int = 6, context_days: int = 364,
                 context_pool: int = 28, context_months: int = 0, dropout: float = 0.1,
                 max_epochs: int = 20, patience: int = 3, batch_size: int = 256,
                 max_windows_per_epoch: int = 30000, max_val_windows: int = 20000,
                 lr: float = 1e-3, weight_decay: float = 0.0, val_fraction: float = 0.2,
                 site_val_min_sites: int = 3, missing_mask: bool = True,
                 loss: str = "mse", balance_weight: float = 1.0, device: str = "cpu",
                 n_threads: int | None = 1, random_state: int | None = 0):
        self.lookback = lookback
        self.hidden_size = hidden_size
        self.embedding_size = embedding_size
        self.encoder_size = encoder_size
        self.context_windows = context_windows
        self.context_days = context_days
        self.context_pool = context_pool
        self.context_months = context_months
        self.dropout = dropout
        super().__init__(max_epochs=max_epochs, patience=patience, batch_size=batch_size,
                         max_windows_per_epoch=max_windows_per_epoch,
                         max_val_windows=max_val_windows, lr=lr, weight_decay=weight_decay,
                         val_fraction=val_fraction, site_val_min_sites=site_val_min_sites,
                         missing_mask=missing_mask, loss=loss, balance_weight=balance_weight,
                         device=device, n_threads=n_threads, random_state=random_state)

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Tiny, fast settings (hidden 8, 2 epochs, short context); ``"skill"``: 8 epochs."""
        if parameter_set == "skill":
            return [{"lookback": 10, "hidden_size": 16, "embedding_size": 4, "encoder_size": 8,
                     "context_windows": 2, "context_days": 56, "context_pool": 7, "max_epochs": 8,
                     "batch_size": 64, "max_windows_per_epoch": 800, "lr": 1e-2, "patience": 3}]
        tiny = {"lookback": 5, "hidden_size": 8, "embedding_size": 4, "encoder_size": 8,
                "context_windows": 2, "context_days": 28, "context_pool": 7, "max_epochs": 2,
                "batch_size": 64, "max_windows_per_epoch": 200, "max_val_windows": 200, "lr": 1e-2}
        return [tiny, {**tiny, "loss": "mse", "missing_mask": False, "patience": 0}]

    # ------------------------------------------------------------- hooks
    def _build_network(self, n_in: int, n_out: int) -> nn.Module:
        n_flux = 2 * n_out if int(self.context_months) > 0 else 0
        return _TamNet(n_in, len(self._static_columns()), int(self.hidden_size),
                       int(self.embedding_size), int(self.encoder_size), float(self.dropout), n_out,
                       n_flux)

    def _static_columns(self) -> np.ndarray:
        """Positions of the static attributes among the features (set on first use in fit)."""
        if not hasattr(self, "static_cols_"):
            names = list(self.feature_names_in_)
            self.static_features_ = static_feature_names(names)
            self.static_cols_ = np.array([names.index(n) for n in self.static_features_], dtype=np.int64)
        return self.static_cols_

    def _parts(self, net: nn.Module) -> dict[str, list[nn.Parameter]]:
        return {"head": list(net.head.parameters()), "last": list(net.lstm.parameters()),
                "film": list(net.film.parameters()) + list(net.static_film.parameters()),
                "encoder": list(net.encoder.parameters()) + list(net.to_z.parameters())}

    def _call_data(self, Xa: np.ndarray, sites: np.ndarray, dates: np.ndarray,
                   dev: torch.device, targets: np.ndarray | None = None) -> _TamCallData:
        base = super()._call_data(Xa, sites, dates, dev)
        cols = self._static_columns()
        codes = base.site.cpu().numpy()
        n_sites = len(base.site_ids)
        Z = (Xa[:, cols] - self.x_mean_[cols]) / self.x_scale_[cols]
        Z = np.where(np.isfinite(Z), Z, 0.0)
        static = np.zeros((n_sites, len(cols)), dtype=np.float32)
        np.add.at(static, codes, Z.astype(np.float32))
        static /= np.maximum(np.bincount(codes, minlength=n_sites), 1)[:, None]
        full = base.full
        if int(self.context_months) > 0:  # few-shot: flux channels of the first k months
            full = torch.cat([full, self._flux_channels(targets, sites, dates, base.pos, full)], dim=1)
        ctx = self._context(full, base.pos, base.start, base.site, n_sites)
        return _TamCallData(base.full, base.pos, base.start, base.site, base.site_ids,
                            ctx=ctx, static=torch.as_tensor(static, device=dev))

    def _flux_channels(self, targets: np.ndarray | None, sites: np.ndarray, dates: np.ndarray,
                       pos: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        """Calendar array (like ``full``) of the few-shot channels: standardised fluxes and
        0/1 "observed" flags, non-zero only on the first ``context_months`` months of each site."""
        n_t = len(self.target_names_)
        out = np.zeros((full.shape[0], 2 * n_t), dtype=np.float32)
        if targets is not None:
            keep = first_months_mask(sites, dates, int(self.context_months))
            T = (np.asarray(targets, dtype=float) - self.y_mean_) / self.y_scale_
            seen = np.isfinite(T) & keep[:, None]
            p = pos.cpu().numpy()
            out[p, :n_t] = np.where(seen, T, 0.0)
            out[p, n_t:] = seen
        return torch.as_tensor(out, device=full.device)

    def _context(self, full: torch.Tensor, pos: torch.Tensor, start: torch.Tensor,
                 site: torch.Tensor, n_sites: int) -> torch.Tensor:
        """Context windows of every site, shape (n_sites, K, T, n_in): evenly placed windows of
        ``context_days`` days averaged over blocks of ``context_pool`` days."""
        k, pool = int(self.context_windows), int(self.context_pool)
        t = max(1, int(self.context_days) // pool)
        w = t * pool
        dev = full.device
        pad = full.shape[0] - 1
        first = torch.full((n_sites,), pad, dtype=torch.int64, device=dev)
        last = torch.zeros(n_sites, dtype=torch.int64, device=dev)
        first = first.scatter_reduce(0, site, start, "amin", include_self=True)
        last = last.scatter_reduce(0, site, pos, "amax", include_self=True)
        room = (last - first + 1 - w).clamp_min(0)  # slack for window starts [days]
        frac = torch.linspace(0.0, 1.0, k, device=dev) if k > 1 else torch.zeros(1, device=dev)
        starts = first[:, None] + torch.round(room[:, None].double() * frac[None, :].double()).long()
        out = torch.empty((n_sites, k, t, full.shape[1]), dtype=full.dtype, device=dev)
        offs = torch.arange(w, device=dev)
        for b in range(0, n_sites, 16):  # a few sites at a time (bounded memory)
            idx = starts[b:b + 16, :, None] + offs[None, None, :]
            idx = torch.where(idx <= last[b:b + 16, None, None], idx, pad)
            win = full[idx]  # (s, k, w, c)
            out[b:b + 16] = win.reshape(win.shape[0], k, t, pool, -1).mean(dim=3)
        return out

    def _batch(self, data: _CallData, r: torch.Tensor) -> TamBatch:
        b = super()._batch(data, r)
        return TamBatch(b.x, b.rows, b.site, b.site_ids, ctx=data.ctx, static=data.static)

    # ------------------------------------------------------------- few-shot mode
    def context_rows(self, sites: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """Rows whose observed fluxes the embedding may see: the first ``context_months``
        calendar months of each site among these rows (all False when zero-shot).

        Parameters
        ----------
        sites, dates : numpy.ndarray, shape (n,)
            Site id and date of each row (e.g. a held-out site's whole record).

        Returns
        -------
        numpy.ndarray of bool, shape (n,)
        """
        return first_months_mask(sites, dates, int(self.context_months))

    def _check_context_window(self) -> None:
        """The first context window must hold the first ``context_months`` months."""
        k = int(self.context_months)
        w = max(1, int(self.context_days) // int(self.context_pool)) * int(self.context_pool)
        if k > 0 and w < 31 * k:
            raise ConfigError(f"{self.name}: context_months={k} needs context windows of at least "
                              f"{31 * k} days, but context_days={self.context_days} with "
                              f"context_pool={self.context_pool} gives {w} days; raise context_days")

    def _loss_weights(self, X: pd.DataFrame, y: pd.DataFrame, sites: np.ndarray,
                      dates: np.ndarray, sample_weight: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Checked ``sites, dates`` and the loss weights: 0 on the context months (few-shot)."""
        check_params(self)
        self._check_context_window()
        if int(self.context_months) == 0:
            return sites, dates, sample_weight
        _, _, _, _, sites_a, dates_a, w = check_inputs(X, y, sites, dates, sample_weight)
        w = np.ones(len(sites_a)) if w is None else np.array(w, dtype=float)
        w[first_months_mask(sites_a, dates_a, int(self.context_months))] = 0.0
        return sites_a, dates_a, w

    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> TAMRLLearner:
        """As :meth:`TorchLearner.fit`; in few-shot mode each site's first ``context_months``
        months enter its embedding and get loss weight 0 (see the module docstring)."""
        sites, dates, sample_weight = self._loss_weights(X, y, sites, dates, sample_weight)
        return super().fit(X, y, sites=sites, dates=dates, sample_weight=sample_weight)

    def fine_tune(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
                  sample_weight: np.ndarray | None = None, epochs: int = 1,
                  lr: float | None = None, max_windows: int | None = None,
                  parts: str = "all") -> TAMRLLearner:
        """As :meth:`TorchLearner.fine_tune`, with the few-shot weighting of :meth:`fit`."""
        sites, dates, sample_weight = self._loss_weights(X, y, sites, dates, sample_weight)
        return super().fine_tune(X, y, sites=sites, dates=dates, sample_weight=sample_weight,
                                 epochs=epochs, lr=lr, max_windows=max_windows, parts=parts)

    def _context_targets(self, context: pd.DataFrame | None, sites: np.ndarray, dates: np.ndarray,
                         what: str) -> np.ndarray | None:
        """The ``context`` fluxes aligned with the call rows (NaN elsewhere), checked: only
        rows of the first ``context_months`` months of the call's sites."""
        if context is None:
            return None
        k = int(self.context_months)
        if k == 0:
            raise ConfigError(f"{what}: context fluxes given, but context_months=0 (zero-shot); "
                              "set context_months to use them")
        if not isinstance(context, pd.DataFrame):
            raise DataError(None, f"{what}: context must be a DataFrame with SITE_ID, DATE and "
                                  f"{', '.join(self.target_names_)}, got {type(context).__name__}")
        need = ["SITE_ID", "DATE", *self.target_names_]
        missing = [c for c in need if c not in context.columns]
        if missing:
            raise DataError(None, f"{what}: context lacks the column(s) {', '.join(missing)}")
        out = np.full((len(sites), len(self.target_names_)), np.nan)
        if len(context) == 0:
            return out
        key = pd.MultiIndex.from_arrays([np.asarray(sites).astype(str),
                                         np.asarray(dates).astype("datetime64[ns]")])
        try:
            cdates = pd.to_datetime(context["DATE"]).to_numpy().astype("datetime64[ns]")
        except (ValueError, TypeError) as exc:
            raise DataError(None, f"{what}: context DATE is not a date column ({exc})") from exc
        ckey = pd.MultiIndex.from_arrays([context["SITE_ID"].astype(str).to_numpy(), cdates])
        if ckey.has_duplicates:
            raise DataError(None, f"{what}: context has a (SITE_ID, DATE) twice")
        idx = key.get_indexer(ckey)
        if (idx < 0).any():
            bad = ckey[np.flatnonzero(idx < 0)[0]]
            raise DataError(None, f"{what}: context row {bad[0]} {str(bad[1])[:10]} is not among "
                                  "the predicted rows")
        outside = ~self.context_rows(sites, dates)[idx]
        if outside.any():
            bad = ckey[np.flatnonzero(outside)[0]]
            raise DataError(None, f"{what}: context row {bad[0]} {str(bad[1])[:10]} lies outside the "
                                  f"first {k} month(s) of its site: only those fluxes may be given")
        vals = context[list(self.target_names_)].to_numpy(dtype=float)
        out[idx] = vals
        return out

    def predict(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
                context: pd.DataFrame | None = None) -> np.ndarray:
        """Predict every row [target units], shape (n, n_targets).

        Parameters
        ----------
        X, sites, dates
            As in :meth:`TorchLearner.predict`.
        context : pandas.DataFrame, optional
            Few-shot mode only: observed fluxes [target units] of the first
            ``context_months`` months of the predicted sites (columns ``SITE_ID, DATE`` and
            the targets; :func:`fluxcore.fewshot.context_frame`). They enter the sites'
            embeddings, nothing else. A row outside those months is an error.
        """
        self._check_fitted()
        Xa, _, fnames, _, sites_a, dates_a, _ = check_inputs(X, None, sites, dates, what="predict")
        check_columns(self.feature_names_in_, fnames)
        targets = self._context_targets(context, sites_a, dates_a, f"{self.name}.predict")
        return self._predict_arrays(Xa, sites_a, dates_a, targets)

    def _forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        uniq, inv = torch.unique(batch.site, return_inverse=True)
        z = net.encode(batch.ctx[uniq], batch.static[uniq])
        return net(batch.x, z[inv], batch.static[batch.site])

    # ------------------------------------------------------------- embeddings
    def embed(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
              context: pd.DataFrame | None = None) -> pd.DataFrame:
        """Site embeddings from the drivers ``X`` of the sites given (no target needed;
        few-shot mode: ``context`` fluxes as in :meth:`predict`).

        Returns
        -------
        pandas.DataFrame
            Index ``SITE_ID`` (sorted), columns ``z0 .. z{embedding_size-1}`` [-].
        """
        self._check_fitted()
        Xa, _, fnames, _, sites_a, dates_a, _ = check_inputs(X, None, sites, dates, what="embed")
        check_columns(self.feature_names_in_, fnames)
        if len(Xa) == 0:
            raise DataError(None, f"{self.name}.embed: no rows")
        targets = self._context_targets(context, sites_a, dates_a, f"{self.name}.embed")
        prev = torch.get_num_threads()
        try:
            if self.n_threads:
                torch.set_num_threads(int(self.n_threads))
            data = self._call_data(Xa, sites_a, dates_a, torch.device("cpu"), targets=targets)
            net = self.model_.eval()
            with torch.no_grad():
                z = net.encode(data.ctx, data.static).double().numpy()
        finally:
            torch.set_num_threads(prev)
        cols = [f"z{i}" for i in range(z.shape[1])]
        return pd.DataFrame(z, index=pd.Index(data.site_ids, name="SITE_ID"), columns=cols)
