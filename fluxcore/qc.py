"""Quality control of the daily table: configurable, reported, never deletes a day.

:func:`apply_qc` sets bad values to NaN (rows are kept, so that daily sequences stay
continuous for the LSTM) and returns a report with one row per site, variable and reason:
``SITE_ID, variable, reason, n_removed, n_total`` where ``n_total`` is the number of values
present (not NaN) at that site just before that check. Checks run in this order:

``not_finite``
    ``inf`` or ``-inf`` in any variable or QC helper column. Always applied, also with
    :meth:`QCConfig.none`: an infinite value is never a measurement, and no learner or
    metric can use it (it would reach predictions as ``observed=inf``). Report rows only
    for the variables in which such a value was found.
``out_of_range``
    value outside the physically possible range of :data:`fluxcore.variables.VARIABLES`
    (e.g. TA outside -60..50 degC, GPP outside -5..30 gC m-2 d-1), or of ``QCConfig.ranges``.
``gpp_below_min``
    GPP below ``QCConfig.gpp_min`` (default -3 gC m-2 d-1). Small negative GPP is noise of
    the night-time partitioning; strongly negative GPP is not physical (FLUXNET2015 README
    "known oddities": about 368 such days at US-Syv).
``low_measured_fraction``
    targets (GPP, ER, NEE) on days where less than ``QCConfig.min_measured_frac`` of the
    half-hours of NEE were measured (column ``QC_NEE_FRAC``: ``NEE_MEASURED_FRAC`` of the
    prepared layout, ``NEE_VUT_REF_QC`` of official daily files). All three targets come
    from the same NEE, so the same fraction applies to all of them.
``low_ta_measured_fraction``
    TA, TMIN, TMAX on days where less than ``QCConfig.min_ta_measured_frac`` of the
    half-hours were measured (``QC_TA_FRAC``). Off by default: gap-filled meteorology
    (ERA-Interim downscaling in FLUXNET2015) is a fair driver.

Default of ``min_measured_frac`` (0.1) and why: in the prepared FLUXNET2015 data the median
daily measured fraction of NEE is only 0.33 (night-time u*-filtering), and 27.7 % of the days
have no measured half-hour at all; their daily fluxes are the output of the MDS gap-filling
model, itself a function of SW_IN, TA and VPD, so learners that train or are scored on them
partly learn and reproduce the gap-filling model. 0.1 (at least 5 of 48 half-hours
measured) removes those days and the nearly-all-gap-filled ones but keeps the ordinary
u*-filtered days. Figures on the real data are in ``docs/data.md``; set 0.0 to keep every
value (closer to studies that use the daily product as it is).

Reference: Pastorello, G. et al. (2020) The FLUXNET2015 dataset and the ONEFlux processing
pipeline for eddy covariance data. Scientific Data 7, 225. doi:10.1038/s41597-020-0534-3
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from .dataset import QC_COLUMNS, empty_qc
from .errors import ConfigError
from .schema import FLAG, mapping, number, option, raise_problems, show
from .schema import problems as schema_problems
from .variables import TARGETS, VARIABLES

#: Daily helper columns that QC reads (kept in ``dataset.daily``; not model variables).
QC_NEE_FRAC = "QC_NEE_FRAC"
QC_TA_FRAC = "QC_TA_FRAC"
QC_HELPER_COLUMNS: tuple[str, ...] = (QC_NEE_FRAC, QC_TA_FRAC)


@dataclass
class QCConfig:
    """Quality-control settings (all values removed are reported in ``dataset.qc``).

    Every option is typed (:mod:`fluxcore.schema`): a bad value raises :class:`ConfigError`
    at construction, one line per problem (``qc.<option>: must be ..., got ...``).

    Parameters
    ----------
    range_check : bool, default True
        Set values outside the physically possible range to NaN (ranges from
        :data:`fluxcore.variables.VARIABLES`, overridable with ``ranges``).
    ranges : dict, default {}
        ``{variable: (min, max)}`` overriding the standard range of a variable (finite
        numbers, min <= max).
    gpp_min : float or None, default -3.0
        GPP [gC m-2 d-1] below this is removed; None disables the check.
    min_measured_frac : float, default 0.1
        Targets on days with a measured fraction of NEE half-hours (``QC_NEE_FRAC``) below
        this are removed; 0 disables. Days without that information are kept.
    min_ta_measured_frac : float, default 0.0
        Same for TA/TMIN/TMAX with ``QC_TA_FRAC``; 0 (default) disables.
    """

    range_check: bool = option(True, FLAG)
    ranges: dict = option(factory=dict, spec=mapping("a mapping {variable: [min, max]}"))
    gpp_min: float | None = option(-3.0, number(optional=True))
    min_measured_frac: float = option(0.1, number(ge=0, le=1))
    min_ta_measured_frac: float = option(0.0, number(ge=0, le=1))

    def __post_init__(self) -> None:
        raise_problems(self.problems())

    def problems(self) -> list[str]:
        """One line per bad option (``qc.<name>: ...``): types, ranges, ``ranges`` entries."""
        lines = schema_problems(QCConfig, self, prefix="qc.")
        if not any(ln.startswith("qc.ranges:") for ln in lines):
            for var, rng in self.ranges.items():
                if var not in VARIABLES:
                    lines.append(f"qc.ranges: unknown variable {var!r}; choose from {list(VARIABLES)}")
                elif not _is_range(rng):
                    lines.append(f"qc.ranges[{var!r}]: must be [min, max] with finite numbers min <= max, "
                                 f"got {show(rng)}")
        return lines

    @classmethod
    def none(cls) -> QCConfig:
        """A configuration with all checks off (only non-finite values are still removed)."""
        return cls(range_check=False, gpp_min=None, min_measured_frac=0.0, min_ta_measured_frac=0.0)

    @classmethod
    def from_dict(cls, d: dict | None) -> QCConfig:
        """Build from a plain dict (YAML/JSON; range lists become tuples).

        Raises
        ------
        ConfigError
            One line per problem: unknown keys, values of the wrong type or range
            (:meth:`problems`).
        """
        if d is None:
            return cls()
        if isinstance(d, QCConfig):
            return d
        if not isinstance(d, dict):
            raise ConfigError(f"qc: must be a mapping of QC options, got {show(d)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted((k for k in d if k not in known), key=str)
        lines = [f"qc: unknown qc option(s) {unknown}; known: {sorted(known)}"] if unknown else []
        d = {k: v for k, v in d.items() if k in known}
        if isinstance(d.get("ranges"), dict):
            d["ranges"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["ranges"].items()}
        try:
            cfg = cls(**d)
        except ConfigError as exc:
            lines += str(exc).splitlines()
        raise_problems(lines)
        return cfg

    def to_dict(self) -> dict:
        """Plain dict (JSON-safe) for run configs and ``dataset.meta``."""
        out = asdict(self)
        out["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return out

    def range_of(self, var: str) -> tuple[float, float]:
        """Valid (min, max) of a variable under this configuration."""
        if var in self.ranges:
            lo, hi = self.ranges[var]
            return float(lo), float(hi)
        v = VARIABLES[var]
        return v.valid_min, v.valid_max


def _is_range(rng) -> bool:
    """A ``(min, max)`` pair of finite numbers (not booleans) with ``min <= max``."""
    if not isinstance(rng, (tuple, list)) or len(rng) != 2:
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng):
        return False
    try:
        lo, hi = float(rng[0]), float(rng[1])
    except OverflowError:  # an integer too large for a float
        return False
    return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= hi)


def _apply_mask(
    daily: pd.DataFrame,
    var: str,
    bad: np.ndarray,
    reason: str,
    site_codes: np.ndarray,
    site_names: np.ndarray,
    rows: list[dict],
) -> pd.DataFrame:
    """Set ``var`` to NaN where ``bad`` and append per-site report rows."""
    vals = daily[var].to_numpy(dtype=float)
    present = ~np.isnan(vals)  # inf counts as present (and is removed by "not_finite")
    bad = bad & present
    n_sites = len(site_names)
    n_total = np.bincount(site_codes, weights=present, minlength=n_sites).astype(np.int64)
    n_removed = np.bincount(site_codes, weights=bad, minlength=n_sites).astype(np.int64)
    for i, sid in enumerate(site_names):
        if n_total[i] or n_removed[i]:
            rows.append({"SITE_ID": sid, "variable": var, "reason": reason,
                         "n_removed": int(n_removed[i]), "n_total": int(n_total[i])})
    if bad.any():
        new = vals.copy()
        new[bad] = np.nan
        daily[var] = new.astype(daily[var].dtype if daily[var].dtype.kind == "f" else float)
    return daily


def apply_qc(daily: pd.DataFrame, config: QCConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply quality control to a daily table.

    Parameters
    ----------
    daily : pandas.DataFrame
        Daily table with ``SITE_ID`` and canonical variables (see
        :mod:`fluxcore.dataset`), optionally the helper columns ``QC_NEE_FRAC`` and
        ``QC_TA_FRAC`` (fractions 0-1).
    config : QCConfig, optional
        Settings; default ``QCConfig()``.

    Returns
    -------
    daily : pandas.DataFrame
        A new table with the same rows, in the same order; removed values are NaN.
    report : pandas.DataFrame
        ``SITE_ID, variable, reason, n_removed, n_total`` (one row per site, variable and
        check that ran; ``n_total`` = values present before that check).
    """
    config = config or QCConfig()
    daily = daily.copy()
    if len(daily) == 0:
        return daily, empty_qc()
    codes, names = pd.factorize(daily["SITE_ID"].astype(str), sort=True)
    names = np.asarray(names, dtype=object)
    rows: list[dict] = []

    for var in (*VARIABLES, *QC_HELPER_COLUMNS):
        if var in daily.columns:
            inf = np.isinf(daily[var].to_numpy(dtype=float))
            if inf.any():  # report rows only for variables that have such values
                daily = _apply_mask(daily, var, inf, "not_finite", codes, names, rows)

    if config.range_check:
        for var in VARIABLES:
            if var in daily.columns:
                lo, hi = config.range_of(var)
                x = daily[var].to_numpy(dtype=float)
                with np.errstate(invalid="ignore"):
                    bad = (x < lo) | (x > hi)
                daily = _apply_mask(daily, var, bad, "out_of_range", codes, names, rows)

    if config.gpp_min is not None and "GPP" in daily.columns:
        x = daily["GPP"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = x < float(config.gpp_min)
        daily = _apply_mask(daily, "GPP", bad, "gpp_below_min", codes, names, rows)

    if config.min_measured_frac > 0 and QC_NEE_FRAC in daily.columns:
        f = daily[QC_NEE_FRAC].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = f < float(config.min_measured_frac)  # NaN fraction: unknown, kept
        for var in TARGETS:
            if var in daily.columns:
                daily = _apply_mask(daily, var, bad, "low_measured_fraction", codes, names, rows)

    if config.min_ta_measured_frac > 0 and QC_TA_FRAC in daily.columns:
        f = daily[QC_TA_FRAC].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = f < float(config.min_ta_measured_frac)
        for var in ("TA", "TMIN", "TMAX"):
            if var in daily.columns:
                daily = _apply_mask(daily, var, bad, "low_ta_measured_fraction", codes, names, rows)

    report = pd.DataFrame(rows, columns=QC_COLUMNS) if rows else empty_qc()
    if rows:
        report = report.astype({"SITE_ID": object, "variable": object, "reason": object,
                                "n_removed": "int64", "n_total": "int64"})
    return daily, report


def merge_reports(*reports: pd.DataFrame) -> pd.DataFrame:
    """Concatenate QC reports, summing rows of the same site, variable and reason.

    ``n_total`` keeps the first report's count (values present before any QC).
    """
    parts = [r for r in reports if r is not None and len(r)]
    if not parts:
        return empty_qc()
    df = pd.concat(parts, ignore_index=True)
    return (df.groupby(["SITE_ID", "variable", "reason"], sort=True, as_index=False)
            .agg(n_removed=("n_removed", "sum"), n_total=("n_total", "first")))[QC_COLUMNS]


__all__ = ["QCConfig", "apply_qc", "merge_reports", "QC_NEE_FRAC", "QC_TA_FRAC", "QC_HELPER_COLUMNS"]
