"""Room in each ``telemetry_rollup`` page for its rows' next versions (PostgreSQL).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07

Ingest adds every window into its hour rows with an UPDATE of a row of about 1 KB. A
full page (seven such rows) has no room for a row's new version, so the update went to
another page and wrote a new entry into each of the table's three indexes: next to none
of them were HOT (heap-only) updates, and the table grew by a row per update until a
vacuum. With pages filled to 60 % on insert, the new version fits beside the old one and
the indexes are not touched (docs/performance.md, "Rollup pages with room for the next
version"). Existing pages keep their fill until rewritten (``VACUUM FULL``); new hour
rows get the room. SQLite has no such setting: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

FILLFACTOR = 60


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE telemetry_rollup SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE telemetry_rollup RESET (fillfactor)")
