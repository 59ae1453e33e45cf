"""Alembic environment for the engine database.

The engine runs migrations programmatically (``orchestrator.db.engine.upgrade``), passing an
open connection in ``config.attributes["connection"]``; the ``alembic`` command line works too
and reads the URL from the settings.
"""

from alembic import context
from sqlmodel import SQLModel

import orchestrator.db.tables  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from sqlalchemy import create_engine

    from orchestrator.settings import get_settings

    with create_engine(get_settings().database_url).connect() as conn:
        _run(conn)
        conn.commit()
