"""Few-shot evaluation: the months of a held-out site whose fluxes a learner may see.

In leave-one-site-out every learner is *zero-shot* by default: nothing about a test site's
fluxes reaches it. A learner with the capability tag ``few_shot`` (e.g. ``tamrl`` with
``context_months=k``) may also see the observed fluxes of the first ``k`` calendar months of
the test site's record ("k-shot"). This module holds the one definition of those months and
the helpers the runner uses to hand them over and to keep them out of the scores:

* :func:`first_months_mask` -- rows in the first ``k`` calendar months of their site;
* :func:`context_rows` -- the rows a fitted or unfitted learner consumes (``None``: none);
* :func:`context_frame` -- the long table ``SITE_ID, DATE, <targets>`` of those rows only,
  the explicit channel (``predict(..., context=...)``) through which they reach the learner;
* :func:`shot_label` / :func:`run_shot_labels` -- "zero-shot" or "k-shot" for results.

A learner with the tag implements ``context_rows(sites, dates) -> ndarray of bool`` and
accepts ``context=`` (a :func:`context_frame`) in ``predict``. The runner predicts the test
site with its context rows' fluxes and marks those rows as not scored (``predicted`` NaN,
``observed`` kept), so every score, which uses finite pairs only, covers the other months.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["first_months_mask", "context_rows", "context_frame", "shot_label", "run_shot_labels",
           "evaluation_text", "few_shot_note"]


def first_months_mask(sites: np.ndarray, dates: np.ndarray, months: int) -> np.ndarray:
    """Rows in the first ``months`` calendar months of their site's record (among these rows).

    The first month is the calendar month of the site's earliest date (it may be partial);
    with ``months = 3`` and a record starting on 2010-01-15, the rows of 2010-01-15 ..
    2010-03-31 are in the mask.

    Parameters
    ----------
    sites : array_like of str, shape (n,)
        Site id of each row.
    dates : array_like of datetime64, shape (n,)
        Date of each row.
    months : int
        Number of calendar months (0: no row).

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
    """
    s = np.asarray(sites)
    d = np.asarray(dates).astype("datetime64[ns]")
    out = np.zeros(len(s), dtype=bool)
    if int(months) <= 0 or len(s) == 0:
        return out
    codes, uniq = pd.factorize(s)
    month = d.astype("datetime64[M]").astype(np.int64)
    ok = ~np.isnat(d)
    first = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, codes[ok], month[ok])
    out[ok] = (month[ok] - first[codes[ok]]) < int(months)
    return out


def context_rows(learner: Any, sites: np.ndarray, dates: np.ndarray) -> np.ndarray | None:
    """Rows whose observed fluxes ``learner`` consumes at prediction time, or ``None``.

    ``None`` for a learner without the tag ``few_shot`` and for a few-shot learner that
    takes no row here (``context_months = 0``: zero-shot).
    """
    if learner is None or not learner.get_tag("few_shot", False):
        return None
    mask = np.asarray(learner.context_rows(np.asarray(sites), np.asarray(dates)), dtype=bool)
    if mask.shape != (len(sites),):
        raise RuntimeError(f"{learner.name}.context_rows returned shape {mask.shape}, "
                           f"expected ({len(sites)},)")
    return mask if mask.any() else None


def context_frame(y: pd.DataFrame, sites: np.ndarray, dates: np.ndarray,
                  mask: np.ndarray) -> pd.DataFrame:
    """The context rows' observed fluxes: ``SITE_ID, DATE`` and one column per target.

    Parameters
    ----------
    y : pandas.DataFrame, shape (n, k)
        Observed targets of the rows [gC m-2 d-1].
    sites, dates : numpy.ndarray, shape (n,)
        Site id and date of the same rows.
    mask : numpy.ndarray of bool, shape (n,)
        The context rows (:func:`context_rows`); only these rows are copied.
    """
    m = np.asarray(mask, dtype=bool)
    out = pd.DataFrame({"SITE_ID": np.asarray(sites)[m].astype(str),
                        "DATE": np.asarray(dates)[m].astype("datetime64[ns]")})
    vals = y.to_numpy(dtype=float)[m]
    for j, col in enumerate(y.columns):
        out[str(col)] = vals[:, j]
    return out


def shot_label(months: Any) -> str:
    """``"zero-shot"`` for 0 (or no value), else ``"<k>-shot"`` (k months of the test
    site's fluxes seen by the learner)."""
    try:
        k = int(months or 0)
    except (TypeError, ValueError):
        k = 0
    return "zero-shot" if k <= 0 else f"{k}-shot"


def run_shot_labels(config: Any, learners: Sequence[str] | None = None) -> dict[str, str]:
    """Evaluation mode of every learner of a run: ``{learner: "zero-shot" | "k-shot"}``.

    Read from the run's configuration (``config.params[learner]["context_months"]``; a
    learner without that hyperparameter never sees a test site's fluxes: zero-shot).
    ``config`` is a :class:`fluxcore.config.RunConfig` (or anything with ``learners`` and
    ``params``).
    """
    names = list(getattr(config, "learners", []) if learners is None else learners)
    params = getattr(config, "params", {}) or {}
    return {n: shot_label(dict(params.get(n, {}) or {}).get("context_months", 0)) for n in names}


def evaluation_text(config: Any) -> str:
    """``"<learner> zero-shot; <learner> k-shot; ..."``: each learner's evaluation mode in words
    (:func:`run_shot_labels`), for summaries and reports."""
    return "; ".join(f"{n} {lab}" for n, lab in run_shot_labels(config).items())


def few_shot_note(config: Any) -> str | None:
    """One sentence naming the run's few-shot learners (Markdown), or None when every
    learner is zero-shot."""
    shots = {n: lab for n, lab in run_shot_labels(config).items() if lab != "zero-shot"}
    if not shots:
        return None
    return ("Few-shot evaluation: " + ", ".join(f"**{n}** {lab}" for n, lab in shots.items())
            + ". The first months of each test site's fluxes entered that learner's site embedding and are "
            "left out of its scores; every other learner is zero-shot.")
