"""Alembic environment: runs the project's migrations against the connection corpus hands it.

``corpus.db.upgrade`` passes an open connection in ``config.attributes["connection"]`` so that
migrations share the catalogue's pragmas (foreign keys, busy timeout). Batch mode is on for
SQLite, whose ALTER TABLE cannot change columns in place.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from corpus.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the plain `alembic` command line, pointed at a URL by sqlalchemy.url
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
