"""live streams

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_streams",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("stream_key", sa.String(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("source_url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("playback_id", sa.String(length=40), nullable=True),
        sa.Column("recording_asset_id", sa.String(length=40), nullable=True),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.Column("reconnects", sa.Integer(), nullable=False),
        sa.Column("passthrough", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("error_message", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["playback_id"], ["playback_ids.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["recording_asset_id"], ["assets.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_streams_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_live_streams_stream_key"), ["stream_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("live_streams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_streams_stream_key"))
        batch_op.drop_index(batch_op.f("ix_live_streams_status"))
    op.drop_table("live_streams")
