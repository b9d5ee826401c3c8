"""Site embeddings of a fitted TAM-RL learner: table, 2-D projection and plotly figure.

The embeddings come from :meth:`fluxcore.learners.tamrl.TAMRLLearner.embed`: one vector per
site computed from that site's *drivers* (the ``X`` rows given) and static attributes, never
from its fluxes. :func:`project_embeddings` projects them on their first two principal
components (centred, no scaling: the embedding values are already of order 1, ``tanh``
outputs); :func:`embedding_figure` draws that projection coloured by aridity zone, with one
marker symbol per IGBP class. Nothing here needs Streamlit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .errors import ConfigError
from .features import FeatureConfig, build_features
from .learners import make_learner
from .runstore import RunStore
from .variables import ZONES

__all__ = ["site_embeddings", "project_embeddings", "embedding_figure", "ZONE_COLOURS"]

#: colour per aridity zone (dry to wet)
ZONE_COLOURS = {"arid": "#d62728", "semi-arid": "#ff7f0e", "semi-humid": "#2ca02c", "humid": "#1f77b4"}
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "triangle-down",
            "pentagon", "hexagon", "circle-open", "square-open", "diamond-open", "star-open")


def site_embeddings(learner_fitted, X: pd.DataFrame, sites: np.ndarray, dates: np.ndarray) -> pd.DataFrame:
    """One embedding per site from the drivers ``X`` of those sites.

    Parameters
    ----------
    learner_fitted : TAMRLLearner
        A fitted learner with an ``embed`` method (``tamrl``).
    X : pandas.DataFrame, shape (n, p)
        Features (drivers and static attributes) of the sites' rows, the columns of ``fit``.
    sites, dates : numpy.ndarray, shape (n,)
        Site id and date of each row.

    Returns
    -------
    pandas.DataFrame
        Index ``SITE_ID``, columns ``z0 ..`` [-].

    Raises
    ------
    fluxcore.errors.ConfigError
        When the learner has no site embeddings.
    """
    embed = getattr(learner_fitted, "embed", None)
    if embed is None:
        raise ConfigError(f"learner {getattr(learner_fitted, 'name', type(learner_fitted).__name__)!r} "
                          "has no site embeddings (only 'tamrl' has)")
    return embed(X, sites=np.asarray(sites), dates=np.asarray(dates))


def project_embeddings(embeddings: pd.DataFrame, n_components: int = 2) -> pd.DataFrame:
    """Principal-component scores of the embeddings (centred SVD).

    Returns
    -------
    pandas.DataFrame
        Index as ``embeddings``, columns ``PC1 .. PC<n_components>``; the explained variance
        ratio of each component in ``attrs["explained_variance_ratio"]``.
    """
    Z = np.asarray(embeddings, dtype=float)
    if Z.ndim != 2 or len(Z) < 2:
        raise ConfigError(f"embeddings: need at least 2 sites to project, got {len(Z)}")
    Zc = Z - Z.mean(axis=0)
    U, S, _ = np.linalg.svd(Zc, full_matrices=False)
    k = min(n_components, len(S))
    scores = U[:, :k] * S[:k]
    if k < n_components:  # fewer dimensions than asked: pad with zeros
        scores = np.hstack([scores, np.zeros((len(Z), n_components - k))])
    var = S ** 2
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    out = pd.DataFrame(scores, index=embeddings.index, columns=[f"PC{i + 1}" for i in range(n_components)])
    out.attrs["explained_variance_ratio"] = [float(r) for r in ratio[:n_components]]
    return out


def embedding_figure(embeddings: pd.DataFrame, zones: pd.Series, igbp: pd.Series,
                     title: str = "TAM-RL site embeddings (zero-shot, from drivers only)") -> go.Figure:
    """2-D PCA projection of the site embeddings, coloured by aridity zone, symbol by IGBP.

    Parameters
    ----------
    embeddings : pandas.DataFrame
        From :func:`site_embeddings` (index ``SITE_ID``).
    zones, igbp : pandas.Series
        Aridity zone and IGBP class per site (index ``SITE_ID``); every embedded site needs both.

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per (zone, IGBP) pair, named ``"<zone>, <IGBP>"``; hover shows the site id.
    """
    for name, s in (("zones", zones), ("igbp", igbp)):
        missing = [x for x in embeddings.index if x not in s.index]
        if missing:
            raise ConfigError(f"embedding_figure: {name} lacks {len(missing)} embedded site(s), "
                              f"e.g. {missing[:3]}")
    pc = project_embeddings(embeddings)
    frame = pc.assign(zone=zones.reindex(pc.index).astype(str).to_numpy(),
                      igbp=igbp.reindex(pc.index).astype(str).to_numpy())
    classes = sorted(frame["igbp"].unique())
    symbol = {c: _SYMBOLS[i % len(_SYMBOLS)] for i, c in enumerate(classes)}
    order = [z for z in ZONES if z in set(frame["zone"])] + sorted(set(frame["zone"]) - set(ZONES))
    fig = go.Figure()
    for zone in order:
        for cls in classes:
            g = frame[(frame["zone"] == zone) & (frame["igbp"] == cls)]
            if g.empty:
                continue
            fig.add_trace(go.Scatter(
                x=g["PC1"], y=g["PC2"], mode="markers", name=f"{zone}, {cls}",
                legendgroup=zone, text=list(g.index),
                hovertemplate="%{text}<br>PC1 %{x:.2f}<br>PC2 %{y:.2f}<extra>" + f"{zone}, {cls}</extra>",
                marker={"color": ZONE_COLOURS.get(zone, "#7f7f7f"), "symbol": symbol[cls], "size": 9,
                        "line": {"width": 0.5, "color": "#333"}}))
    ratio = pc.attrs["explained_variance_ratio"]
    fig.update_layout(title=title, legend_title_text="zone, IGBP", template="plotly_white",
                      xaxis_title=f"PC1 ({100 * ratio[0]:.0f} %)",
                      yaxis_title=f"PC2 ({100 * ratio[1]:.0f} %)" if len(ratio) > 1 else "PC2")
    return fig


def run_embeddings(run, dataset, learner: str = "tamrl") -> pd.DataFrame:
    """Site embeddings of a finished run, from one of its stored group models.

    The fast ``group_finetune`` strategy keeps each group model in the run's model store
    (``runs/<key>/models/<learner>/``). A site's embedding depends only on its own drivers
    (never on fluxes), so any stored model of the run embeds every site; the first one (sorted
    by name) is used. Features are rebuilt from ``dataset`` with the run's feature settings.

    Parameters
    ----------
    run : RunResult
        The finished run (:func:`fluxcore.runstore.load_run`).
    dataset : FluxDataset
        The run's data.
    learner : str
        Name of the learner in the run.

    Returns
    -------
    pandas.DataFrame
        Index ``SITE_ID``, columns ``z0...``; empty when the run stored no model of ``learner``.
    """
    store = RunStore(run.path)
    names = sorted(n for lrn, n in store.list_models() if lrn == learner and not n.startswith("pretrain-"))
    if not names:
        return pd.DataFrame()
    state = store.load_model(learner, names[0])
    if state is None:
        return pd.DataFrame()
    params = dict(run.config.params.get(learner, {}))
    model = make_learner(learner, **params).set_state(state)
    ft = build_features(dataset, FeatureConfig.from_dict(dict(run.config.features)), [])
    # one-hot IGBP columns follow the classes present: a class the run's data lacked is 0
    names = list(getattr(model, "feature_names_in_", ft.X.columns))
    X = ft.X.reindex(columns=names)
    onehot = [c for c in names if c.startswith("IGBP_") and c not in ft.X.columns]
    X[onehot] = 0.0
    return site_embeddings(model, X, np.asarray(ft.sites).astype(str), np.asarray(ft.dates))
