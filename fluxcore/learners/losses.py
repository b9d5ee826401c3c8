"""Training losses of the torch learners, looked up by name (``loss="mse"``, ...).

A loss is registered with :func:`register_loss` as a *builder*: a function that receives the
learner (fitted scalers and ``target_names_`` already set) and returns the loss function

``loss(pred, y, mask, weight) -> scalar tensor``

with ``pred`` and ``y`` the standardised predictions and targets, shape (batch, n_targets),
``mask`` 1 where a target is observed and usable (0 for NaN targets or rows of weight 0) and
``weight`` the row weights, shape (batch,). A builder validates what it needs (targets,
hyperparameters) and raises :class:`fluxcore.errors.ConfigError` naming the problem; the
learner builds its loss at the start of ``fit`` and ``fine_tune``, before any training.

Built-in losses
---------------
``mse``
    Mask- and weight-averaged squared error on the standardised targets:
    ``sum(w m (pred - y)^2) / sum(w m)``.
``mae``
    Mask- and weight-averaged absolute error on the standardised targets:
    ``sum(w m |pred - y|) / sum(w m)`` (the mean absolute error NARCF trains with; less
    sensitive to outlying months than ``mse``).
``mse+balance``
    ``mse`` plus ``balance_weight * sum(w r^2) / sum(w) / var(NEE)`` with the carbon-balance
    residual ``r = ER - GPP - NEE`` [gC m-2 d-1] computed on the predictions mapped back to
    physical units (the mass balance NEE = ER - GPP) and ``var(NEE)`` the fitted variance of
    the NEE target (so the term is dimensionless like the ``mse`` part). Needs the targets
    GPP, ER and NEE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError

#: ``loss(pred, y, mask, weight) -> scalar tensor`` (see the module docstring)
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
#: ``build(learner) -> LossFn``
LossBuilder = Callable[[Any], LossFn]

_LOSSES: dict[str, LossBuilder] = {}


def register_loss(name: str) -> Callable[[LossBuilder], LossBuilder]:
    """Decorator registering a loss builder under ``name`` (see the module docstring)."""

    def deco(builder: LossBuilder) -> LossBuilder:
        _LOSSES[name] = builder
        return builder

    return deco


def available_losses() -> list[str]:
    """Names of the registered losses."""
    return sorted(_LOSSES)


def get_loss(name: str) -> LossBuilder:
    """The builder registered under ``name``; :class:`ConfigError` for an unknown name."""
    if name not in _LOSSES:
        raise ConfigError(f"unknown loss {name!r}; available: {', '.join(available_losses())}")
    return _LOSSES[name]


def weighted_mse(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                 weight: torch.Tensor) -> torch.Tensor:
    """``sum(w m (pred - y)^2) / sum(w m)`` over the batch (targets with mask 0 ignored)."""
    wm = mask * weight[:, None]
    return (wm * (pred - y) ** 2).sum() / wm.sum().clamp_min(1e-12)


@register_loss("mse")
def _build_mse(learner: Any) -> LossFn:
    return weighted_mse


def weighted_mae(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                 weight: torch.Tensor) -> torch.Tensor:
    """``sum(w m |pred - y|) / sum(w m)`` over the batch (targets with mask 0 ignored)."""
    wm = mask * weight[:, None]
    return (wm * (pred - y).abs()).sum() / wm.sum().clamp_min(1e-12)


@register_loss("mae")
def _build_mae(learner: Any) -> LossFn:
    return weighted_mae


BALANCE_TARGETS = ("GPP", "ER", "NEE")


@register_loss("mse+balance")
def _build_mse_balance(learner: Any) -> LossFn:
    tnames = [str(t) for t in learner.target_names_]
    missing = [t for t in BALANCE_TARGETS if t not in tnames]
    if missing:
        raise ConfigError(f"{learner.name}: loss='mse+balance' needs targets {BALANCE_TARGETS}, "
                          f"got {tnames} (missing {missing})")
    g, e, n = (tnames.index(t) for t in BALANCE_TARGETS)
    y_mean = np.asarray(learner.y_mean_, dtype=float)
    y_scale = np.asarray(learner.y_scale_, dtype=float)
    bw = learner.balance_weight

    def loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
             weight: torch.Tensor) -> torch.Tensor:
        ym = torch.as_tensor(y_mean, dtype=pred.dtype, device=pred.device)
        ys = torch.as_tensor(y_scale, dtype=pred.dtype, device=pred.device)
        p = pred * ys + ym  # physical units [gC m-2 d-1]
        r = p[:, e] - p[:, g] - p[:, n]
        return (weighted_mse(pred, y, mask, weight)
                + bw * (weight * r ** 2).sum() / weight.sum().clamp_min(1e-12) / ys[n] ** 2)

    return loss
