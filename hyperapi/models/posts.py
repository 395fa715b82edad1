"""Posts written by users."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, Versioned, utcnow


class Post(Versioned, Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    author_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )

    __table_args__ = (
        Index("ix_posts_timestamp_id", "timestamp", "id"),
        # A user's posts in id order: the /users/{id}/posts page query.
        Index("ix_posts_author_id_id", "author_id", "id"),
    )
