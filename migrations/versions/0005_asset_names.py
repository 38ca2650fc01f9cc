"""asset names and metadata: name, meta_title, meta_creator_id, meta_external_id

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (("name", 255), ("meta_title", 512), ("meta_creator_id", 128), ("meta_external_id", 128))


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place for everything; on PostgreSQL it is plain ALTERs.
    with op.batch_alter_table("assets", schema=None) as batch_op:
        for name, length in COLUMNS:
            batch_op.add_column(sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
