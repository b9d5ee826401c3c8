"""Figure of process-model-guided transfer learning: per-site ΔR² by aridity zone.

:func:`paired_delta` pairs two arms' per-site skill (e.g. ``pmtl`` against the tower-only
``lstm``) and :func:`delta_r2_by_zone` draws the per-site differences as one box (with every
site as a point) per zone, with a zero line. Plotly only (no Streamlit), so it is tested and
used by reports and the dashboard alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .variables import ZONES

__all__ = ["paired_delta", "delta_r2_by_zone"]


def paired_delta(metrics: pd.DataFrame, arm: str, parent: str, target: str, metric: str = "R2",
                 zones: Mapping[str, str] | pd.Series | None = None) -> pd.DataFrame:
    """Per-site ``metric(arm) - metric(parent)`` for ``target`` on the sites both arms have.

    Parameters
    ----------
    metrics : pandas.DataFrame
        Per-site metrics with columns ``SITE_ID, learner, target`` and ``metric`` (as
        :func:`fluxcore.metrics.site_metrics`), optionally ``zone``.
    arm, parent : str
        Learner names (``arm`` minus ``parent``).
    target : str
    metric : str
        ``"R2"`` (default), ``"r2"`` or ``"RMSE"``...
    zones : mapping or Series, optional
        Site -> aridity zone (used when ``metrics`` has no ``zone`` column).

    Returns
    -------
    pandas.DataFrame
        ``SITE_ID, zone, delta`` sorted by site.
    """
    m = metrics[metrics["target"] == target]
    a = m[m["learner"] == arm].set_index("SITE_ID")[metric]
    b = m[m["learner"] == parent].set_index("SITE_ID")[metric]
    common = sorted(set(a.index) & set(b.index))
    out = pd.DataFrame({"SITE_ID": common, "delta": (a.reindex(common) - b.reindex(common)).to_numpy(dtype=float)})
    if "zone" in m:
        zmap = m.drop_duplicates("SITE_ID").set_index("SITE_ID")["zone"]
    else:
        zmap = pd.Series(dict(zones or {}), dtype=object)
    out["zone"] = [zmap.get(s) if s in zmap.index else None for s in common]
    return out[["SITE_ID", "zone", "delta"]]


def delta_r2_by_zone(deltas: pd.DataFrame, *, title: str = "", metric_label: str = "ΔR²") -> go.Figure:
    """Box per aridity zone of per-site differences (points: sites), with a zero line.

    Parameters
    ----------
    deltas : pandas.DataFrame
        Output of :func:`paired_delta` (``SITE_ID, zone, delta``); rows without a zone are
        shown as ``"unknown"``; NaN differences are dropped.
    title : str
    metric_label : str
        Axis label (e.g. ``"ΔR² (pmtl - lstm)"``).

    Returns
    -------
    plotly.graph_objects.Figure
        One box trace per zone that has sites, in the order of
        :data:`fluxcore.variables.ZONES`; the trace name carries the site count and median.
    """
    d = deltas.dropna(subset=["delta"]).copy()
    d["zone"] = d["zone"].fillna("unknown").astype(str)
    order = [z for z in ZONES if z in set(d["zone"])] + sorted(set(d["zone"]) - set(ZONES))
    fig = go.Figure()
    for z in order:
        v = d[d["zone"] == z]
        fig.add_trace(go.Box(y=v["delta"], x=[z] * len(v), name=f"{z} (n={len(v)}, median {np.median(v['delta']):+.3f})",
                             boxpoints="all", jitter=0.4, text=v["SITE_ID"], hovertemplate="%{text}: %{y:.3f}"))
    fig.add_hline(y=0.0, line_dash="dash", line_color="grey")
    fig.update_layout(title=title, yaxis_title=metric_label, xaxis_title="aridity zone", showlegend=True)
    return fig
