"""Samples an agent mined as candidate negatives say where they came from.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Null for the low-confidence samples agents always sent; ``rejected``, ``track`` or
``background`` for a crop of the camera's own background or distractors that the
agent offers as "no animal" for an operator to confirm or relabel.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sample", sa.Column("candidate", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("sample", "candidate")
