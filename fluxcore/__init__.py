"""fluxcore: data-driven carbon-flux inversion at eddy-covariance towers.

Implements Gao et al. (2025) "Ecosystem carbon flux inversion method combining LSTM and
fuzzy mathematics" (LSTM, random forest, SVM and multiple linear regression under
leave-one-site-out cross-validation, aridity zones, comprehensive Euclidean distance,
fuzzy inversion) as a tested library, a command-line interface and a Streamlit dashboard.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
