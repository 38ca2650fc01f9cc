"""media extras: text tracks (subtitles and captions uploaded to an asset)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "text_tracks",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("asset_id", sa.String(length=40), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("source_format", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("cues", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("text_tracks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_text_tracks_asset_id"), ["asset_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("text_tracks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_text_tracks_asset_id"))
    op.drop_table("text_tracks")
