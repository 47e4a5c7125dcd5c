"""The domain layer: plain functions over a ``Session``; no HTTP, no MQTT.

Routes, the MQTT adapter and the CLI call these. Each entry point that changes
state (upload, register, release, provision, start a rollout) writes its audit
entry in the same transaction and commits; ingest functions leave the commit to
the caller's ``session_scope``.
"""
