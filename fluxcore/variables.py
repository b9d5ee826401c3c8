"""Canonical variable names, units and groups used everywhere in fluxcore.

fluxcore follows FLUXNET naming (Pastorello et al. 2020, doi:10.1038/s41597-020-0534-3)
without the processing suffixes: ``TA`` is the gap-filled daily mean air temperature
(``TA_F`` in FLUXNET2015), ``GPP`` is ``GPP_NT_VUT_REF``, and so on.

The 14 predictor variables of Gao et al. (2025) are split into three groups:

* meteorology (daily): TA, TMIN, TMAX, P, WS, VPD
* remote sensing (daily): LAI, SW_IN

plus, where a dataset has them, the extra drivers ``EVI`` (MODIS enhanced vegetation index,
Huete et al. 2002, doi:10.1016/S0034-4257(02)00096-2) and ``P_MONTHLY``, ``WS_MONTHLY``
(monthly mean precipitation and wind brought to days, for data without daily values).
* static (one value per site, kept in the site catalogue): ELEV, SLOPE, ASPECT, CLAY, SAND, SILT

Targets are GPP, ER and NEE [gC m-2 d-1], with NEE = ER - GPP (negative = uptake).

A dataset never has to hold all of them: :attr:`fluxcore.dataset.FluxDataset.variables`
says which ones are present.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """Description of one canonical variable.

    Parameters
    ----------
    name : str
        Canonical name (column name in fluxcore tables).
    unit : str
        Unit, FLUXNET style (``gC m-2 d-1``).
    group : str
        One of ``"meteo"``, ``"rs"``, ``"static"``, ``"target"``.
    long_name : str
        Human readable description.
    valid_min, valid_max : float
        Physically possible range; values outside are removed by quality control.
    """

    name: str
    unit: str
    group: str
    long_name: str
    valid_min: float
    valid_max: float


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable("TA", "degC", "meteo", "daily mean air temperature", -60.0, 50.0),
        Variable("TMIN", "degC", "meteo", "daily minimum air temperature", -70.0, 45.0),
        Variable("TMAX", "degC", "meteo", "daily maximum air temperature", -55.0, 60.0),
        Variable("P", "mm d-1", "meteo", "precipitation", 0.0, 500.0),
        Variable("WS", "m s-1", "meteo", "wind speed", 0.0, 40.0),
        Variable("VPD", "hPa", "meteo", "vapour pressure deficit", 0.0, 100.0),
        Variable("SW_IN", "W m-2", "rs", "downward shortwave radiation (daily mean)", 0.0, 500.0),
        Variable("LAI", "m2 m-2", "rs", "leaf area index", 0.0, 12.0),
        Variable("EVI", "-", "rs", "enhanced vegetation index (MODIS)", -0.2, 1.0),
        Variable("P_MONTHLY", "mm d-1", "meteo",
                 "precipitation, monthly mean interpolated to days", 0.0, 100.0),
        Variable("WS_MONTHLY", "m s-1", "meteo", "wind speed, monthly mean interpolated to days",
                 0.0, 40.0),
        Variable("ELEV", "m", "static", "elevation above sea level", -500.0, 9000.0),
        Variable("SLOPE", "deg", "static", "terrain slope", 0.0, 90.0),
        Variable("ASPECT", "deg", "static", "terrain aspect (clockwise from north)", 0.0, 360.0),
        Variable("CLAY", "%", "static", "topsoil clay fraction", 0.0, 100.0),
        Variable("SAND", "%", "static", "topsoil sand fraction", 0.0, 100.0),
        Variable("SILT", "%", "static", "topsoil silt fraction", 0.0, 100.0),
        Variable("GPP", "gC m-2 d-1", "target", "gross primary production", -5.0, 30.0),
        Variable("ER", "gC m-2 d-1", "target", "ecosystem respiration", -5.0, 30.0),
        Variable("NEE", "gC m-2 d-1", "target", "net ecosystem exchange (negative = uptake)", -25.0, 25.0),
    ]
}

METEO: tuple[str, ...] = tuple(k for k, v in VARIABLES.items() if v.group == "meteo")
REMOTE_SENSING: tuple[str, ...] = tuple(k for k, v in VARIABLES.items() if v.group == "rs")
STATIC: tuple[str, ...] = tuple(k for k, v in VARIABLES.items() if v.group == "static")
DAILY_DRIVERS: tuple[str, ...] = METEO + REMOTE_SENSING
#: Daily drivers beyond the paper's 14 that fluxcore uses when a dataset has them.
EXTRA_DRIVERS: tuple[str, ...] = ("EVI", "P_MONTHLY", "WS_MONTHLY")
PAPER_VARIABLES: tuple[str, ...] = tuple(v for v in DAILY_DRIVERS if v not in EXTRA_DRIVERS) + STATIC
TARGETS: tuple[str, ...] = ("GPP", "ER", "NEE")

#: Aridity zones in the paper's order (dry to wet).
ZONES: tuple[str, ...] = ("arid", "semi-arid", "semi-humid", "humid")

#: Columns every site catalogue has (static variables are added when known).
SITE_COLUMNS: tuple[str, ...] = (
    "SITE_ID", "NAME", "LAT", "LON", "IGBP", "ARIDITY_INDEX", "ARIDITY_ZONE",
)


def unit_of(name: str) -> str:
    """Return the unit of a canonical variable, e.g. ``unit_of("GPP") -> "gC m-2 d-1"``."""
    return VARIABLES[name].unit


def label(name: str) -> str:
    """Axis label ``"GPP [gC m-2 d-1]"`` for a canonical variable (name itself if unknown)."""
    v = VARIABLES.get(name)
    return f"{name} [{v.unit}]" if v else name


#: Catalogue attributes that may enter as site-level features (``FeatureConfig.site_attributes``).
SITE_ATTRIBUTES: tuple[str, ...] = ("ARIDITY_INDEX", "WHC_MM", "MAP_MM", "WS_MEAN", "LAT")


def is_site_level(name: str) -> bool:
    """True for derived site-level features (site means, catalogue attributes, IGBP one-hot).

    The paper's static variables (``ELEV``, ``SLOPE`` ...) are not counted: they are inputs of
    every learner. Learners that extrapolate badly over few sites (``mlr``) leave the derived
    site-level features out by default.
    """
    return name.startswith(("SITE_MEAN_", "IGBP_")) or name in SITE_ATTRIBUTES
