"""Axis ranges that one outlier cannot flatten (for the dashboard's figures).

A single site with R² = -35 squeezes every other box of a "scores by zone" plot into a line;
a learner predicting -20 for one day stretches a scatter of data in 0..5. These functions give
ranges that show the bulk of the data and count what is left outside, so that a page can say
so in a note (the points are clipped from view, never dropped from the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AxisRange", "robust_range", "score_range"]


@dataclass(frozen=True)
class AxisRange:
    """An axis range and what lies outside it.

    Attributes
    ----------
    lo, hi : float
        The range (same unit as the values).
    n_below, n_above : int
        Finite values below ``lo`` / above ``hi``.
    min, max : float
        Smallest and largest finite value (NaN when there is none).
    """

    lo: float
    hi: float
    n_below: int
    n_above: int
    min: float
    max: float

    @property
    def n_outside(self) -> int:
        return self.n_below + self.n_above

    def note(self, what: str = "value", fmt: str = "{:.3g}") -> str:
        """``"2 values outside the axis (lowest -35.2, highest 7.1) are not shown."`` ('' if none)."""
        if not self.n_outside:
            return ""
        parts = []
        if self.n_below:
            parts.append(f"lowest {fmt.format(self.min)}")
        if self.n_above:
            parts.append(f"highest {fmt.format(self.max)}")
        s = "s" if self.n_outside != 1 else ""
        return (f"{self.n_outside} {what}{s} outside the axis ({', '.join(parts)}) not shown in the "
                "figure; they count in every score and table.")


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def robust_range(values, lower_q: float = 0.005, upper_q: float = 0.995, pad: float = 0.03) -> AxisRange:
    """Range over the central ``lower_q``..``upper_q`` quantiles of the values, padded.

    Parameters
    ----------
    values : array-like
        Values shown on the axis (NaN ignored).
    lower_q, upper_q : float
        Quantiles that bound the range [0-1].
    pad : float
        Padding as a fraction of the range on each side.
    """
    v = _finite(values)
    if not len(v):
        return AxisRange(0.0, 1.0, 0, 0, float("nan"), float("nan"))
    lo, hi = float(np.quantile(v, lower_q)), float(np.quantile(v, upper_q))
    if hi <= lo:
        lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    p = pad * (hi - lo)
    lo, hi = lo - p, hi + p
    return AxisRange(lo, hi, int((v < lo).sum()), int((v > hi).sum()), float(v.min()), float(v.max()))


def score_range(values, metric: str = "R2", floor: float = -1.0) -> AxisRange:
    """Axis range of per-site scores: R²/r² axes stop at ``floor`` (default -1) below.

    An R² below -1 means a site predicted worse than twice its own mean's error; showing such
    sites on the axis flattens every other box. Other metrics (RMSE, MAE, bias) use
    :func:`robust_range` with the 2nd-98th percentiles when the extremes are far out.
    """
    v = _finite(values)
    if not len(v):
        return AxisRange(0.0, 1.0, 0, 0, float("nan"), float("nan"))
    vmin, vmax = float(v.min()), float(v.max())
    if metric.lower() in ("r2", "r²"):
        hi = max(1.0, vmax) + 0.05
        lo = min(vmin, 0.0) - 0.05
        if vmin < floor:
            lo = floor - 0.05
        return AxisRange(lo, hi, int((v < lo).sum()), int((v > hi).sum()), vmin, vmax)
    r = robust_range(v, 0.02, 0.98, pad=0.1)
    spread = r.hi - r.lo
    if vmin >= r.lo - spread and vmax <= r.hi + spread:  # no far outlier: show everything
        p = 0.05 * ((vmax - vmin) or 1.0)
        return AxisRange(vmin - p, vmax + p, 0, 0, vmin, vmax)
    return r
