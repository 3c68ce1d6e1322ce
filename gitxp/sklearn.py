"""`gitxp.sklearn`: record scikit-learn fits (`autolog`, `fit`, `log_estimator`).

A public alias of `gitxp.integrations.sklearn`, where the code lives.
"""

from __future__ import annotations

from .integrations.sklearn import autolog, fit, log_estimator

__all__ = ["autolog", "fit", "log_estimator"]
