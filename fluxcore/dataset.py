"""The one representation of a flux dataset used everywhere in fluxcore.

A :class:`FluxDataset` holds

``sites``
    a :class:`geopandas.GeoDataFrame`, one row per site, indexed by ``SITE_ID``, with columns
    ``SITE_ID, NAME, LAT, LON, IGBP, ARIDITY_INDEX, ARIDITY_ZONE`` and the static variables
    that are known (``ELEV, SLOPE, ASPECT, CLAY, SAND, SILT``), plus point geometry in
    EPSG:4326 (empty geometry where the position is unknown). Optional extra columns
    (``KOEPPEN``, ``YEARS`` ...) may follow.
``daily``
    a :class:`pandas.DataFrame`, one row per site and time step, sorted by ``SITE_ID, DATE``,
    with ``SITE_ID`` (str), ``DATE`` (datetime64[ns], local standard time day) and the
    canonical drivers and targets that the source provides (see :mod:`fluxcore.variables`).
    Missing values are NaN. For a monthly dataset (``time_step == "monthly"``) each row is a
    site-month, ``DATE`` is the first day of the month and fluxes and precipitation are
    monthly sums (see :mod:`fluxcore.timeres`); the attribute keeps its name.
``qc``
    the quality-control report (:class:`pandas.DataFrame`, one row per site and reason).
``problems``
    what could not be loaded (one line per bad file or site), so nothing is lost silently.

Static variables live in the catalogue and are broadcast to days by :meth:`FluxDataset.frame`.

A "site" may also be a grid cell: a catalogue with only ``SITE_ID, LAT, LON`` (the other
columns NaN) and a table without targets is a valid dataset for feature building and
prediction (:func:`fluxcore.timeres.cells_dataset`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .errors import ConfigError
from .variables import DAILY_DRIVERS, EXTRA_DRIVERS, PAPER_VARIABLES, STATIC, TARGETS, ZONES

try:  # geopandas is a hard dependency, but keep import errors readable
    import geopandas as gpd
except ImportError as exc:  # pragma: no cover
    raise ImportError("fluxcore needs geopandas: pip install -r requirements.txt") from exc


QC_COLUMNS = ["SITE_ID", "variable", "reason", "n_removed", "n_total"]

#: Time steps a dataset may have: one row per site and day, or per site and month.
TIME_STEPS: tuple[str, ...] = ("daily", "monthly")


def empty_qc() -> pd.DataFrame:
    """An empty quality-control report with the standard columns."""
    return pd.DataFrame({c: pd.Series(dtype="object" if c in ("SITE_ID", "variable", "reason") else "int64") for c in QC_COLUMNS})


def make_sites_frame(df: pd.DataFrame) -> gpd.GeoDataFrame:
    """Turn a plain site table into the catalogue GeoDataFrame.

    Parameters
    ----------
    df : pandas.DataFrame
        Must have ``SITE_ID``; ``LAT``/``LON`` [deg] may be NaN (unknown position).
        Missing standard columns are added as NaN.

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``SITE_ID`` (the column is kept too), CRS EPSG:4326.
    """
    df = df.copy()
    for col in ("NAME", "LAT", "LON", "IGBP", "ARIDITY_INDEX", "ARIDITY_ZONE"):
        if col not in df:
            df[col] = df["SITE_ID"] if col == "NAME" else np.nan
    df["SITE_ID"] = df["SITE_ID"].astype(str)
    df["LAT"] = pd.to_numeric(df["LAT"], errors="coerce")
    df["LON"] = pd.to_numeric(df["LON"], errors="coerce")
    geometry = gpd.points_from_xy(df["LON"], df["LAT"], crs="EPSG:4326")
    gdf = gpd.GeoDataFrame(df, geometry=geometry, crs="EPSG:4326")
    gdf.index = pd.Index(gdf["SITE_ID"].to_numpy(), name="site")
    return gdf.sort_index()


@dataclass
class FluxDataset:
    """A flux dataset: site catalogue, daily table, QC report and provenance.

    Parameters
    ----------
    sites : geopandas.GeoDataFrame
        Site catalogue (see module docstring).
    daily : pandas.DataFrame
        Daily site-day table (see module docstring).
    name : str
        Short name shown to users (``"demo"``, ``"fluxnet2015"``...).
    source : str
        Where it came from (``"demo"`` or a path).
    synthetic : bool
        True for generated data; every view must then label it synthetic.
    qc : pandas.DataFrame
        Quality-control report.
    problems : list of str
        Files or sites that could not be loaded, with the reason.
    meta : dict
        Free-form provenance (seed, generator version, LAI method...).
    time_step : {"daily", "monthly"}, default "daily"
        What one row of ``daily`` is: a site-day or a site-month (month-start ``DATE``).
        Part of :meth:`fingerprint` only when not ``"daily"``.
    """

    sites: gpd.GeoDataFrame
    daily: pd.DataFrame
    name: str = "dataset"
    source: str = ""
    synthetic: bool = False
    qc: pd.DataFrame = field(default_factory=empty_qc)
    problems: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    time_step: str = "daily"

    def __post_init__(self) -> None:
        if self.time_step not in TIME_STEPS:
            raise ConfigError(f"dataset {self.name!r}: unknown time_step {self.time_step!r}; "
                              f"choose from {list(TIME_STEPS)}")

    # ------------------------------------------------------------------ views
    @property
    def site_ids(self) -> list[str]:
        """Sites that have at least one day of data, sorted."""
        return sorted(self.daily["SITE_ID"].unique().tolist())

    @property
    def n_sites(self) -> int:
        return int(self.daily["SITE_ID"].nunique())

    @property
    def n_site_days(self) -> int:
        return int(len(self.daily))

    @property
    def variables(self) -> list[str]:
        """The paper's predictor variables, extra drivers (EVI) and targets this dataset really has.

        A daily variable counts when its column exists with at least one value; a static one
        when the catalogue column has at least one value.
        """
        out = []
        for v in PAPER_VARIABLES + EXTRA_DRIVERS + TARGETS:
            if v in STATIC:
                if v in self.sites and self.sites[v].notna().any():
                    out.append(v)
            elif v in self.daily and self.daily[v].notna().any():
                out.append(v)
        return out

    @property
    def drivers(self) -> list[str]:
        """Daily drivers present (subset of TA, TMIN, TMAX, P, WS, VPD, SW_IN, LAI, EVI)."""
        return [v for v in self.variables if v in DAILY_DRIVERS]

    @property
    def statics(self) -> list[str]:
        """Static site variables present (subset of ELEV, SLOPE, ASPECT, CLAY, SAND, SILT)."""
        return [v for v in self.variables if v in STATIC]

    @property
    def targets(self) -> list[str]:
        """Targets present (subset of GPP, ER, NEE)."""
        return [v for v in self.variables if v in TARGETS]

    def zone_of(self, site_id: str) -> str | None:
        z = self.sites.loc[site_id, "ARIDITY_ZONE"] if site_id in self.sites.index else None
        return None if z is None or (isinstance(z, float) and np.isnan(z)) else str(z)

    def zone_counts(self) -> dict[str, int]:
        """Number of sites (with data) per aridity zone, in the order arid..humid."""
        cat = self.sites.loc[self.sites.index.isin(self.site_ids), "ARIDITY_ZONE"]
        counts = {z: int((cat == z).sum()) for z in ZONES}
        n_unknown = int(cat.isna().sum())
        if n_unknown:
            counts["unknown"] = n_unknown
        return counts

    def frame(self, with_static: bool = True) -> pd.DataFrame:
        """Daily table with the static catalogue variables broadcast to each day.

        Returns a new DataFrame; the dataset is not modified.
        """
        df = self.daily
        if with_static and self.statics:
            st = self.sites[self.statics]
            df = df.join(st, on="SITE_ID")
        return df

    # --------------------------------------------------------------- subsets
    def subset(
        self,
        sites: Iterable[str] | None = None,
        zones: Iterable[str] | None = None,
    ) -> FluxDataset:
        """Dataset restricted to some sites and/or aridity zones (intersection)."""
        keep = set(self.site_ids)
        if sites is not None:
            sites = [str(s) for s in sites]
            unknown = sorted(set(sites) - keep)
            if unknown:
                raise ConfigError(f"unknown site id(s): {', '.join(unknown[:10])}")
            keep &= set(sites)
        if zones is not None:
            zones = list(zones)
            bad = [z for z in zones if z not in ZONES]
            if bad:
                raise ConfigError(f"unknown aridity zone(s) {bad}; choose from {list(ZONES)}")
            in_zone = set(self.sites.index[self.sites["ARIDITY_ZONE"].isin(zones)])
            keep &= in_zone
        daily = self.daily[self.daily["SITE_ID"].isin(keep)].reset_index(drop=True)
        sites_gdf = self.sites[self.sites.index.isin(keep)]
        qc = self.qc[self.qc["SITE_ID"].isin(keep)] if len(self.qc) else self.qc
        return replace(self, daily=daily, sites=sites_gdf, qc=qc)

    # ----------------------------------------------------------- provenance
    def fingerprint(self) -> str:
        """SHA-256 (hex, first 16 characters) of the daily table and the catalogue.

        Two datasets with the same values, columns and sites have the same fingerprint,
        whatever path they were loaded from. A time step other than ``"daily"`` is hashed
        too, so daily fingerprints (and the run keys built on them) are those of datasets
        made before time steps existed.
        """
        h = hashlib.sha256()
        if self.time_step != "daily":
            h.update(f"time_step={self.time_step};".encode())
        d = self.daily.sort_values(["SITE_ID", "DATE"]).reset_index(drop=True)
        h.update(",".join(map(str, d.columns)).encode())
        h.update(pd.util.hash_pandas_object(d, index=False).to_numpy().tobytes())
        s = pd.DataFrame(self.sites.drop(columns="geometry"))
        s = s.reset_index(drop=True).astype(str)
        h.update(pd.util.hash_pandas_object(s, index=False).to_numpy().tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """Figures printed by ``fluxcore data``: sites, site-days, zones, variables, QC."""
        qc = self.qc
        qc_by_reason: dict[str, int] = {}
        if len(qc):
            qc_by_reason = {str(k): int(v) for k, v in qc.groupby("reason")["n_removed"].sum().items()}
        return {
            "name": self.name,
            "source": self.source,
            "synthetic": bool(self.synthetic),
            "time_step": self.time_step,
            "n_sites": self.n_sites,
            "n_site_days": self.n_site_days,
            "zones": self.zone_counts(),
            "variables": self.variables,
            "qc": {
                "n_removed": int(qc["n_removed"].sum()) if len(qc) else 0,
                "by_reason": qc_by_reason,
                "n_sites_affected": int(qc.loc[qc["n_removed"] > 0, "SITE_ID"].nunique()) if len(qc) else 0,
            },
            "problems": list(self.problems),
            "sites_without_position": sorted(
                self.sites.index[self.sites["LAT"].isna() | self.sites["LON"].isna()].tolist()
            ),
        }

    @property
    def label(self) -> str:
        """Name for display; synthetic data always says so."""
        return f"{self.name} (SYNTHETIC demo world)" if self.synthetic else self.name
