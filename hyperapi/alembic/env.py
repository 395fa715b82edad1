"""alembic environment: the database URL comes from the ini's [app:main] settings.

The same settings parser as the application applies, so ``HYPERAPI_DATABASE_URL``
overrides the ini here exactly as it does for the server.
"""

from __future__ import annotations

from alembic import context
from plaster import get_settings
from sqlalchemy import engine_from_config, pool

from hyperapi import settings as hyperapi_settings
from hyperapi.models import metadata

config = context.config


def database_url() -> str:
    explicit = config.attributes.get("database_url")
    if explicit:
        return explicit
    app_settings = get_settings(config.config_file_name, "app:main")
    return hyperapi_settings.parse(app_settings)["sqlalchemy.url"]


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_on(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations_on(connection)
        return
    engine = engine_from_config(
        {"sqlalchemy.url": database_url()}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        run_migrations_on(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
