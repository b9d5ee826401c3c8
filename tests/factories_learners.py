"""Seeded synthetic site-day data for learner tests (the generator of :mod:`fluxcore.testing`)."""

from __future__ import annotations

from fluxcore.testing import make_synthetic

__all__ = ["make_synthetic"]
