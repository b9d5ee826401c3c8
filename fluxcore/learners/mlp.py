"""Dense feed-forward network (multilayer perceptron, PyTorch) on single rows of features.

A small subclass of :class:`fluxcore.learners.torchbase.TorchLearner`, which holds the
scaling (fitted on the ``fit`` rows only), target masking, determinism, device selection,
losses, fine-tuning and saving (read its module docstring). This module adds the network
and the choice of early-stopping validation rows (``val_by``).

Architecture
------------
The default is the network of the North American Regional Carbon Flux model (NARCF, seed
``001``; ``../shared/notes/seed-methods.md``): hidden dense layers of 50-100-100-100-50-50
units, each followed by ReLU, batch normalisation and dropout 0.25, then one linear output
per target; mean-absolute-error loss (``loss="mae"``), Adam, batches of 256 rows, at most
100 epochs. Each row is one input vector (a site-month or site-day: the learner is not a
sequence model, ``lookback`` is 1): the standardised features, one 0/1 "was missing"
channel per feature that had NaN in training (``missing_mask=True``) and the base class's
"no data" channel (always 0 for real rows). Several targets share the network (one output
each; the loss averages the standardised targets).

A batch of a single row in training (the remainder of an epoch) normalises with the running
statistics instead of the batch's own (a batch-norm of one value is undefined).

Early stopping
--------------
``val_by="sites"`` (default): ``val_fraction`` of the sites passed to ``fit`` (seeded) are
validation sites (with fewer than ``site_val_min_sites`` sites: the last dates of each
site), as in the base class. ``val_by="years"``: for every site, the last
``round(val_fraction x n)`` of its ``n`` calendar years in the ``fit`` rows (at least one
when ``n >= 2``, never all of them; none for a site with a single year) are validation rows;
when no site has two years there is no early stopping (``val_mode_ = "none"``, all
``max_epochs`` run). Either way the
validation rows are a subset of the rows given to ``fit``: the evaluation period, which the
caller never passes to ``fit``, cannot be used for early stopping (unlike NARCF, which
validated on its test year). ``val_years_`` records the calendar years of the validation
rows.

Fine-tuning parts: ``"head"`` (the output layer) and ``"last"`` (the last hidden block).

Determinism under threads: torch's random generator and thread settings are process-global,
so fits of this learner in one process are serialised by a lock (the generic
``group_holdout`` strategy fits group models in threads); the same ``random_state`` then
gives the same numbers whatever the number of threads.

References
----------
NARCF, Ashwin K. et al. (2021), github.com/ashwink0/narcf (architecture only; its evaluation
protocol leaks the test year, see ``benchmarks/bench_regional.py``).
Ioffe, S., Szegedy, C. (2015). Batch normalization. ICML. arXiv:1502.03167
Srivastava, N. et al. (2014). Dropout. JMLR 15, 1929-1958.
Kingma, D. P., Ba, J. (2015). Adam: a method for stochastic optimization. ICLR.
arXiv:1412.6980
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import Boolean, Interval, Options, register
from .torchbase import Batch, TorchLearner

#: hidden layer widths of the NARCF network
NARCF_WIDTHS = (50, 100, 100, 100, 50, 50)
#: ``val_by`` choices
VAL_BY = ("sites", "years")

_FIT_LOCK = threading.RLock()


class _Widths:
    """Constraint: a non-empty sequence of positive integers (hidden layer widths)."""

    def ok(self, v: Any) -> bool:
        if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) == 0:
            return False
        return all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in v)

    def __str__(self) -> str:
        return "a non-empty list of integers >= 1"


class _BatchNorm(nn.BatchNorm1d):
    """Batch normalisation that uses the running statistics for a training batch of one row."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] < 2:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        return super().forward(x)


class _Net(nn.Module):
    """Hidden blocks (Linear, ReLU, BatchNorm, Dropout) + one linear head (n_targets outputs)."""

    def __init__(self, n_in: int, widths: tuple[int, ...], dropout: float, batch_norm: bool, n_out: int):
        super().__init__()
        blocks = []
        prev = n_in
        for w in widths:
            layers: list[nn.Module] = [nn.Linear(prev, w), nn.ReLU()]
            if batch_norm:
                layers.append(_BatchNorm(w))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layers))
            prev = w
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(prev, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


@register("mlp")
class MLPLearner(TorchLearner):
    """Dense network (NARCF architecture by default) regressing all targets on one row each.

    Parameters
    ----------
    hidden : sequence of int, default (50, 100, 100, 100, 50, 50)
        Widths of the hidden layers (NARCF's network by default).
    dropout : float, default 0.25
        Dropout after each hidden layer.
    batch_norm : bool, default True
        Batch normalisation after each hidden layer's ReLU.
    val_by : {"sites", "years"}, default "sites"
        Early-stopping validation rows: held-out training sites, or the last years of each
        training site (see the module docstring).
    max_epochs : int, default 100
        Epoch cap (NARCF trained 100 epochs).
    patience : int, default 10
        Epochs without validation improvement before stopping.
    batch_size : int, default 256
        Rows per optimiser step.
    max_windows_per_epoch : int, default 30000
        Rows sampled (without replacement) per epoch.
    max_val_windows : int, default 20000
        Validation rows (a fixed seeded sample) evaluated per epoch.
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 0.0
        Adam weight decay.
    val_fraction : float, default 0.2
        Fraction of sites or of each site's years used for early stopping (NARCF: a 20 %
        validation split); 0 disables early stopping.
    site_val_min_sites : int, default 3
        ``val_by="sites"`` with fewer sites uses the last dates of each site instead.
    missing_mask : bool, default True
        Add a 0/1 channel per feature that had NaN in training.
    loss : str, default "mae"
        A registered loss (:mod:`fluxcore.learners.losses`): ``"mae"`` (NARCF), ``"mse"``,
        ``"mse+balance"``.
    balance_weight : float, default 0.1
        Weight of the carbon-balance term of ``loss="mse+balance"``.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default "cpu"
    n_threads : int or None, default 1
        ``torch.set_num_threads`` while fitting / predicting.
    random_state : int or None, default 0
        Seed of weight initialisation, dropout, row sampling and validation sites.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained network (on CPU between calls).
    x_mean_, x_scale_, y_mean_, y_scale_ : numpy.ndarray
        Scaling fitted on the ``fit`` rows [feature / target units].
    val_sites_ : numpy.ndarray of str
        Validation sites (``val_by="sites"``; empty otherwise).
    val_years_ : numpy.ndarray of int
        Calendar years of the validation rows (empty without validation).
    val_mode_ : str
        ``"sites"``, ``"years"``, ``"time"`` (``val_by="sites"`` with few sites) or ``"none"``.
    history_ : list of dict
        Per epoch: ``phase, epoch, train_loss, val_loss``.
    best_epoch_, n_epochs_, n_steps_, n_fine_tune_epochs_ : int
    steps_per_second_, fit_seconds_ : float
    feature_names_in_, target_names_ : list of str
    """

    name = "mlp"
    description = "neural network (MLP, NARCF)"
    _tags = {"sequence": False, "multi_target": True, "fine_tune": True, "sample_weight": True,
             "fast_strategy": "group_holdout", "time_resolution": ("daily", "monthly")}
    _parameter_constraints = {
        "hidden": [_Widths()],
        "dropout": [Interval(float, 0, 1, closed="left")],
        "batch_norm": [Boolean()],
        "val_by": [Options(*VAL_BY)],
    }

    def __init__(self, hidden: tuple[int, ...] | list[int] = NARCF_WIDTHS, dropout: float = 0.25,
                 batch_norm: bool = True, val_by: str = "sites", max_epochs: int = 100,
                 patience: int = 10, batch_size: int = 256, max_windows_per_epoch: int = 30000,
                 max_val_windows: int = 20000, lr: float = 1e-3, weight_decay: float = 0.0,
                 val_fraction: float = 0.2, site_val_min_sites: int = 3,
                 missing_mask: bool = True, loss: str = "mae", balance_weight: float = 0.1,
                 device: str = "cpu", n_threads: int | None = 1,
                 random_state: int | None = 0):
        self.hidden = hidden
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.val_by = val_by
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

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Tiny, fast settings (two small layers, a few epochs); ``"skill"``: 8 epochs."""
        if parameter_set == "skill":
            return [{"hidden": (16, 16), "max_epochs": 8, "patience": 3, "batch_size": 64,
                     "max_windows_per_epoch": 800, "lr": 1e-2}]
        tiny = {"hidden": (16, 16), "max_epochs": 3, "patience": 2, "batch_size": 64,
                "max_windows_per_epoch": 400, "max_val_windows": 200, "lr": 1e-2}
        return [tiny, {**tiny, "val_by": "years", "batch_norm": False, "dropout": 0.0, "loss": "mse"}]

    # ------------------------------------------------------------ network
    def _build_network(self, n_in: int, n_out: int) -> nn.Module:
        return _Net(n_in, tuple(int(w) for w in self.hidden), float(self.dropout),
                    bool(self.batch_norm), n_out)

    def _forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return net(batch.x[:, -1, :])  # windows of length 1: one row each

    def _parts(self, net: nn.Module) -> dict[str, list[nn.Parameter]]:
        return {"head": list(net.head.parameters()), "last": list(net.blocks[-1].parameters())}

    # ------------------------------------------------------------ fitting
    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> MLPLearner:
        """Fit scalers and network on these rows; early stopping on rows among them (``val_by``).

        Parameters
        ----------
        X : pandas.DataFrame, shape (n, p)
            Features; NaN allowed.
        y : pandas.DataFrame, shape (n, k)
            Targets [gC m-2 d-1 or gC m-2 month-1]; NaN targets are masked.
        sites, dates : numpy.ndarray, shape (n,)
            Site id and date of each row.
        sample_weight : numpy.ndarray, shape (n,), optional
            Row weights (>= 0) of the loss.
        """
        with _FIT_LOCK:
            super().fit(X, y, sites=sites, dates=dates, sample_weight=sample_weight)
        return self

    def fine_tune(self, *args: Any, **kwargs: Any) -> MLPLearner:
        """As :meth:`TorchLearner.fine_tune` (serialised like :meth:`fit`)."""
        with _FIT_LOCK:
            super().fine_tune(*args, **kwargs)
        return self

    def _split(self, sites: np.ndarray, dates: np.ndarray, rows: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """Training and validation rows (indices into the ``fit`` rows), by sites or years."""
        if self.val_by not in VAL_BY:
            raise ConfigError(f"{self.name}: val_by must be one of {list(VAL_BY)}, got {self.val_by!r}")
        years = pd.DatetimeIndex(np.asarray(dates)[rows]).year.to_numpy()
        if self.val_by == "sites" or float(self.val_fraction) <= 0 or not self.patience:
            tr, va, vs, mode = super()._split(sites, dates, rows, rng)
        else:
            tr, va, vs, mode = self._split_years(sites[rows], years, rows)
        pos = np.searchsorted(rows, va)
        self.val_years_ = np.unique(years[pos]).astype(np.int64) if len(va) else np.zeros(0, np.int64)
        return tr, va, vs, mode

    def _split_years(self, sites: np.ndarray, years: np.ndarray, rows: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """The last ``round(val_fraction x n_years)`` years of each site are validation rows."""
        vf = float(self.val_fraction)
        is_val = np.zeros(len(rows), dtype=bool)
        for site in np.unique(sites):
            k = np.flatnonzero(sites == site)
            uy = np.unique(years[k])
            if len(uy) < 2:
                continue
            n_val = min(max(1, int(round(vf * len(uy)))), len(uy) - 1)
            is_val[k] = np.isin(years[k], uy[-n_val:])
        mode = "years" if is_val.any() else "none"  # no site has two years: no early stopping
        return rows[~is_val], rows[is_val], np.array([], dtype=str), mode


__all__ = ["MLPLearner", "NARCF_WIDTHS", "VAL_BY"]
