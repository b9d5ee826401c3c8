"""Published figures that fluxcore's skill is compared against.

* Gao et al. (2025): mean R² of 0.72 for GPP and ER at US sites; Table 3 LSTM RMSE by
  aridity zone [gC m-2 d-1].
* FLUXCOM (Tramontana et al. 2016, doi:10.5194/bg-13-4291-2016; Jung et al. 2020,
  doi:10.5194/bg-17-1343-2020): site-level R² above about 0.7 for GPP and 0.6 for ER.
* CarbonFluxBench (public repository ``alexxxroz/CarbonFluxBench``, MIT): per-site test
  scores of TAM-RL, LSTM, LightGBM... in a stratified site split, read from
  ``../shared/anchors/carbonfluxbench`` (per-site files, compared on the sites both have).

Every comparison says what differs: CarbonFluxBench used a newer, longer data release and a
stratified site split (fewer training sites than a leave-one-site-out fold), so only the sites
in both sets are compared and the caveat is stated beside the figures.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .errors import DataError
from .metrics import skill_summary
from .resources import anchors_dir

#: Gao et al. (2025): mean R² at US sites, per target.
PAPER_US_MEAN_R2: dict[str, float] = {"GPP": 0.72, "ER": 0.72}

#: Gao et al. (2025), Table 3: LSTM RMSE by aridity zone [gC m-2 d-1], per target.
PAPER_TABLE3_LSTM_RMSE: dict[str, dict[str, float]] = {
    "GPP": {"arid": 0.62, "semi-arid": 0.74, "semi-humid": 1.06, "humid": 0.61},
    "ER": {"arid": 0.78, "semi-arid": 0.85, "semi-humid": 0.80, "humid": 0.63},
}

#: FLUXCOM site-level cross-validated R² (lower bounds quoted in the literature).
FLUXCOM_SITE_R2: dict[str, float] = {"GPP": 0.7, "ER": 0.6}

#: CarbonFluxBench TAM-RL median per-site R² (Koppen split, minimal features, ensemble).
CFB_TAMRL_MEDIAN_R2: dict[str, float] = {"GPP": 0.644, "ER": 0.593}

#: Said beside every table of published site-level skill.
PUBLISHED_CAVEAT = ("Those come from other data releases and splits: context, not a like-for-like test.")

#: Said beside every CarbonFluxBench common-site comparison.
CFB_CAVEAT = ("CarbonFluxBench used a newer, longer data release, daily MODIS reflectance and ERA5-Land "
              "drivers, and a stratified site split (fewer training sites than a leave-one-site-out fold).")

_CFB_TARGETS = {
    "GPP_NT_VUT_USTAR50": "GPP",
    "RECO_NT_VUT_USTAR50": "ER",
    "NEE_VUT_USTAR50": "NEE",
}
_CFB_NAME = re.compile(r"^(?P<model>.+?)_(?P<split>IGBP|Koppen)_(?P<features>minimal|standard|full)(?P<ens>_ensemble)?\.csv$")


def default_anchor_dir() -> Path:
    """``$FLUXCORE_ANCHORS``, else ``../shared/anchors/carbonfluxbench`` beside the project
    root or the current directory (:func:`fluxcore.resources.anchors_dir`)."""
    return anchors_dir()


def load_carbonfluxbench(folder: str | Path | None = None) -> pd.DataFrame:
    """Read CarbonFluxBench per-site scores into one tidy table.

    Parameters
    ----------
    folder : path, optional
        Folder of ``<model>_<split>_<features>[_ensemble].csv`` files (default
        :func:`default_anchor_dir`).

    Returns
    -------
    pandas.DataFrame
        Columns ``SITE_ID, target (GPP|ER|NEE), model, split, features, ensemble, R2, RMSE``;
        ``model`` is the file's ``model`` column where it has one (``LightGBM``, ``XGBoost``,
        ``tam-rl``...), else the model part of the file name.
    """
    folder = Path(folder) if folder is not None else default_anchor_dir()
    if not folder.is_dir():
        raise DataError(folder, "CarbonFluxBench anchor folder not found")
    frames = []
    for f in sorted(folder.glob("*.csv")):
        m = _CFB_NAME.match(f.name)
        if not m:
            continue
        d = pd.read_csv(f)
        missing = {"site", "R2", "RMSE", "target"} - set(d.columns)
        if missing:
            raise DataError(f, f"missing columns {sorted(missing)}")
        frames.append(pd.DataFrame({
            "SITE_ID": d["site"].astype(str),
            "target": d["target"].map(_CFB_TARGETS),
            # the file's own model column names the tree baselines ("lgbm" files say
            # "LightGBM", "xgb" files "XGBoost"); older files without it: the file name
            "model": (d["model"].astype(str) if "model" in d.columns else m["model"]),
            "split": m["split"],
            "features": m["features"],
            "ensemble": bool(m["ens"]),
            "R2": pd.to_numeric(d["R2"], errors="coerce"),
            "RMSE": pd.to_numeric(d["RMSE"], errors="coerce"),
        }))
    if not frames:
        raise DataError(folder, "no CarbonFluxBench result files (<model>_<split>_<features>.csv)")
    return pd.concat(frames, ignore_index=True).dropna(subset=["target"])


def compare_with_carbonfluxbench(
    metrics: pd.DataFrame,
    anchors: pd.DataFrame | None = None,
    *,
    split: str = "Koppen",
    features: str = "minimal",
    models: tuple[str, ...] = ("tam-rl", "lstm", "LightGBM", "XGBoost"),
) -> pd.DataFrame:
    """Median per-site R² of fluxcore and CarbonFluxBench models on the sites both have.

    Parameters
    ----------
    metrics : pandas.DataFrame
        fluxcore per-site metrics (``SITE_ID, learner, target, R2``).
    anchors : pandas.DataFrame, optional
        Output of :func:`load_carbonfluxbench` (loaded when None).
    split, features : str
        Which CarbonFluxBench configuration to compare with.
    models : tuple of str
        CarbonFluxBench models to include, as named in the files' ``model`` column (the tree
        baselines are ``"LightGBM"`` and ``"XGBoost"``; they were run only with the
        ``minimal`` features).

    Returns
    -------
    pandas.DataFrame
        One row per (target, source, model): ``target, source ("fluxcore"|"CarbonFluxBench"),
        model, n_sites, median_R2, mean_R2`` computed on the common sites of that target.
    """
    if anchors is None:
        anchors = load_carbonfluxbench()
    a = anchors[(anchors["split"] == split) & (anchors["features"] == features)
                & anchors["model"].isin(models)]
    rows = []
    for target, mt in metrics.groupby("target"):
        at = a[a["target"] == target]
        common = sorted(set(mt["SITE_ID"]) & set(at["SITE_ID"]))
        if not common:
            continue
        for source, frame, by in (("fluxcore", mt, "learner"), ("CarbonFluxBench", at, "model")):
            part = frame[frame["SITE_ID"].isin(common)]
            for r in skill_summary(part, by=[by]).sort_values(by).itertuples(index=False):
                rows.append({"target": target, "source": source, "model": getattr(r, by),
                             "n_sites": int(part.loc[part[by] == getattr(r, by), "SITE_ID"].nunique()),
                             "median_R2": r.R2_median, "mean_R2": r.R2_mean})
    return pd.DataFrame(rows, columns=["target", "source", "model", "n_sites", "median_R2", "mean_R2"])


def common_site_comparison(
    metrics: pd.DataFrame,
    *,
    synthetic: bool,
    anchors: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame | None, str | None]:
    """:func:`compare_with_carbonfluxbench` where it means something, else why not.

    Parameters
    ----------
    metrics : pandas.DataFrame
        fluxcore per-site metrics.
    synthetic : bool
        The run's sites are synthetic: their ids name no real tower, so nothing is compared
        (and the anchors are not read).
    anchors : pandas.DataFrame or callable, optional
        The anchor table, or a function returning it (called only when needed; e.g. a cached
        loader); default :func:`load_carbonfluxbench`.

    Returns
    -------
    (table, None) or (None, reason)
        ``reason``: ``"synthetic sites"``, ``"no test site in common"`` or the anchor folder's
        :class:`~fluxcore.errors.DataError` message.
    """
    if synthetic:
        return None, "synthetic sites"
    try:
        table = anchors() if callable(anchors) else anchors
        cmp_ = compare_with_carbonfluxbench(metrics, table)
    except DataError as exc:
        return None, str(exc)
    if cmp_.empty:
        return None, "no test site in common"
    return cmp_, None


__all__ = [
    "PAPER_US_MEAN_R2", "PAPER_TABLE3_LSTM_RMSE", "FLUXCOM_SITE_R2", "CFB_TAMRL_MEDIAN_R2",
    "PUBLISHED_CAVEAT", "CFB_CAVEAT", "default_anchor_dir", "load_carbonfluxbench",
    "compare_with_carbonfluxbench", "common_site_comparison",
]
