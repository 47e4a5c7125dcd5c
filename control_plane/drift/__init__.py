"""Drift analysis from mergeable telemetry histograms (docs/drift.md).

``stats``: the statistics (PSI, Jensen-Shannon, binned KS, chi-square, CBPE estimated
accuracy) with alarm levels calibrated to the sample size; ``summary`` and ``compare``:
merging windows and comparing them with a reference profile (pure); ``collect``: a
range's windows streamed from the store and merged per release and device (the hot
loop); ``analyser``: the analysis over the store, which writes drift reports and keeps
alerts in step (``release_alerts``: a release's alerts and gauges from its fleet report);
``scheduler``: the periodic analysis that ``parkwatch serve`` runs;
``baseline``: a camera × condition's production baseline and its own alarm levels
(pure); ``learning``: baselines in the store (learned, listed, reset); ``verdicts``:
verdicts against baselines and the feature behind each (pure); ``realized``: accuracy from
labelled samples with its interval; ``wording``: verdicts in
words; ``oracle`` and ``synthetic``: the straightforward computation and synthetic data, for
tests and benchmarks only. Its settings are the ``[drift]`` section, ``config/drift.py``.
"""
