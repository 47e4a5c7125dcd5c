"""Drift analysis from mergeable telemetry histograms (DESIGN.md section 5).

``stats``: the statistics (PSI, Jensen-Shannon, binned KS, chi-square, CBPE estimated
accuracy) with alarm levels calibrated to the sample size; ``summary`` and ``compare``:
merging windows and comparing them with a reference profile (pure); ``analyser``: the
analysis over the store, which writes drift reports and keeps alerts in step;
``scheduler``: the periodic analysis that ``parkwatch serve`` runs.
"""

from .settings import DriftSettings, FeatureThreshold

__all__ = ["DriftSettings", "FeatureThreshold"]
