"""Long short-term memory network (PyTorch) on look-back windows of daily or monthly drivers.

A small subclass of :class:`fluxcore.learners.torchbase.TorchLearner`, which holds the
windowing, scaling, target masking, early stopping on validation sites, determinism, device
selection, losses, fine-tuning and saving (read its module docstring). This module adds the
network only.

Architecture
------------
For each row to predict, the input is the window of the ``lookback`` time steps (days, or
months for monthly data) ending on that row's date (same-step and past drivers of the same
site only). Each time step carries the standardised features (static site variables are
constant channels repeated at every step), one missing-value indicator per feature that had
NaN in training (``missing_mask=True``) and one "no data" indicator for steps before the site's
first date or absent calendar steps. A one- or multi-layer LSTM (Hochreiter & Schmidhuber 1997)
reads the window; its last hidden state goes through dropout and one linear head with one
output per target (many-to-one).

Fine-tuning parts: ``"head"`` (the linear head) and ``"last"`` (the last LSTM layer), so
``fine_tune(parts="head")`` or ``parts="head+last"``.

References
----------
Hochreiter, S., Schmidhuber, J. (1997). Long short-term memory. Neural Computation 9(8),
1735-1780. doi:10.1162/neco.1997.9.8.1735
Kingma, D. P., Ba, J. (2015). Adam: a method for stochastic optimization. ICLR.
arXiv:1412.6980
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Interval, register
from .losses import available_losses
from .torchbase import TorchLearner
from .torchbase import layout as _layout  # noqa: F401  (re-exported for older imports)

#: built-in losses (the registry in :mod:`fluxcore.learners.losses` may hold more)
LOSSES = tuple(available_losses())


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


@register("lstm")
class LSTMLearner(TorchLearner):
    """LSTM regression of all targets from look-back windows of daily or monthly features.

    Parameters
    ----------
    lookback : int, default 30
        Window length [time steps: days, or months for monthly data], including the
        predicted step.
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
    loss : {"mse", "mse+balance"} or another registered loss, default "mse"
        Training loss (:mod:`fluxcore.learners.losses`); ``"mse+balance"`` adds the
        carbon-balance penalty (needs GPP, ER, NEE).
    balance_weight : float, default 0.1
        Weight of the carbon-balance penalty.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default "cpu"
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
    time_step_ : str
        ``"D"`` (daily) or ``"M"`` (monthly: every fit date is a month start).
    val_sites_ : numpy.ndarray of str
        Training sites used for early stopping (empty for time-based or no validation).
    val_mode_ : str
        ``"sites"``, ``"time"`` or ``"none"``.
    history_ : list of dict
        Per epoch: ``phase, epoch, train_loss, val_loss``.
    best_epoch_, n_epochs_, n_steps_, n_fine_tune_epochs_ : int
    steps_per_second_, fit_seconds_ : float
        Optimiser steps per second of the last training call; seconds of the fit.
    device_ : str
    feature_names_in_, target_names_ : list of str
    """

    name = "lstm"
    description = "LSTM network"
    main_params = {"lookback": "days of history per prediction", "hidden_size": "LSTM units",
                   "max_epochs": "upper limit (early stopping on validation sites)",
                   "patience": "epochs without improvement before stopping"}
    _tags = {"sequence": True, "fast_strategy": "group_finetune",
             "time_resolution": ("daily", "monthly")}
    #: own hyperparameters; the shared ones come from TorchLearner (merged on subclassing)
    _parameter_constraints = {
        "lookback": [Interval(int, 1)],
        "hidden_size": [Interval(int, 1)],
        "num_layers": [Interval(int, 1)],
        "dropout": [Interval(float, 0, 1, closed="left")],
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

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Tiny, fast settings (hidden 8, 2 epochs, a few hundred windows); ``"skill"``: 8 epochs."""
        if parameter_set == "skill":
            return [{"hidden_size": 16, "lr": 1e-2, "max_epochs": 8, "batch_size": 64,
                     "max_windows_per_epoch": 800, "lookback": 10, "patience": 3}]
        tiny = {"lookback": 5, "hidden_size": 8, "max_epochs": 2, "batch_size": 64,
                "max_windows_per_epoch": 200, "max_val_windows": 200, "lr": 1e-2}
        return [tiny, {**tiny, "num_layers": 2, "missing_mask": False, "patience": 0}]

    def _build_network(self, n_in: int, n_out: int) -> nn.Module:
        return _Net(n_in, int(self.hidden_size), int(self.num_layers), float(self.dropout), n_out)

    def _parts(self, net: nn.Module) -> dict[str, list[nn.Parameter]]:
        last = f"_l{net.lstm.num_layers - 1}"
        return {"head": list(net.head.parameters()),
                "last": [p for n, p in net.lstm.named_parameters() if n.endswith(last)]}
