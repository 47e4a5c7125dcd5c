"""Alembic migrations of the control-plane store (a package so wheels ship them)."""
