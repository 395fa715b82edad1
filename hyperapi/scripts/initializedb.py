"""hyperapi-initializedb: bring the database named by an ini file to the latest schema.

    hyperapi-initializedb development.ini

Runs ``alembic upgrade head`` with the ini's [alembic] section; the database URL comes from
[app:main] (or HYPERAPI_DATABASE_URL), exactly as the server reads it.
"""

from __future__ import annotations

import argparse
import sys

from alembic import command
from alembic.config import Config


def alembic_config(config_uri: str) -> Config:
    return Config(config_uri.partition("#")[0], ini_section="alembic")


def upgrade(config_uri: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(config_uri), revision)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    args = parser.parse_args(argv)
    upgrade(args.config_uri)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
