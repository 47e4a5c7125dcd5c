"""What the control plane keeps: its only state lives here (docs/architecture.md, "Scale").

- ``models``: the SQLModel tables; ``db``: engines, sessions, ``insert_ignore`` and the
  Alembic ``upgrade`` (``migrations/``, one revision per schema change);
- ``artifacts``: the ``ArtifactStore`` interface and the content-addressed artifact folder
  (model files, reports, samples); ``s3_artifacts``: the same in an S3-compatible bucket;
  ``open_artifacts``: the one the settings name;
- ``keys``: the Ed25519 release-signing keyring on disk;
- ``gauges``: Prometheus gauges read from the store at scrape time.

Nothing here knows about HTTP, MQTT or rollouts.
"""
