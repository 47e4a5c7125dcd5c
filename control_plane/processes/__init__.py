"""The control plane's process entry points; only the CLI imports this package.

- ``serve``: ``parkwatch serve``: the HTTP API (with ingest, the embedded broker and the
  periodic tasks in its lifespan), or an ingest-only worker (``--role ingest``);
- ``ingest``: the ingest-only process;
- ``worker``: ``parkwatch worker``, continuous training.
"""
