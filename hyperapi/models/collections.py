"""One row per collection: its version, its size and when it last changed.

Every create, update and delete of a member bumps its collection's row in the same
transaction. That gives a collection an ETag and a Last-Modified that are right after a
delete (unlike MAX(updated_at)), and a total that needs no COUNT(*) over the table.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .meta import Base, UTCDateTime, utcnow

#: The collections whose state is tracked; the initial migration creates their rows.
COLLECTIONS = ("users", "follows", "posts", "students", "classes", "registrations")


class CollectionState(Base):
    __tablename__ = "collection_states"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


def bump(session: Session, name: str, delta: int = 0) -> None:
    """Record that collection ``name`` changed and grew by ``delta`` members."""
    table = CollectionState.__table__
    result = session.execute(
        update(table)
        .where(table.c.name == name)
        .values(version=table.c.version + 1, count=table.c.count + delta, updated_at=utcnow())
    )
    if result.rowcount == 0:
        # Only reachable on a database created without the migration's seed rows.
        session.execute(
            table.insert().values(name=name, version=2, count=max(delta, 0), updated_at=utcnow())
        )


def states(session: Session, names: tuple[str, ...]) -> dict[str, tuple[int, int, dt.datetime]]:
    """Return ``{name: (version, count, updated_at)}`` for ``names`` in one query."""
    table = CollectionState.__table__
    rows = session.execute(
        select(table.c.name, table.c.version, table.c.count, table.c.updated_at).where(
            table.c.name.in_(names)
        )
    )
    found = {name: (version, count, updated) for name, version, count, updated in rows}
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return {name: found.get(name, (0, 0, epoch)) for name in names}
