"""The registry: every table module, imported so that `SQLModel.metadata` holds all tables.

Alembic (`migrations/env.py`) and the schema check in the tests read the
metadata from here. No table module imports this one; a new domain's table
module is added to the list below.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from core.db import models, models_integrations, models_live, models_media  # noqa: F401

metadata = SQLModel.metadata
