"""User accounts and who follows whom."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, Versioned, utcnow


class User(Versioned, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    about_me: Mapped[str] = mapped_column(Text, nullable=False, default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    member_since: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_seen: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Denormalised counters, kept in step by every write that changes them, so that a user's
    # representation (and therefore its ETag) needs no COUNT(*) and changes with its version.
    post_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    follower_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    followed_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Part of every bearer token; incremented when the password changes, which revokes
    # every token issued before, in every process.
    token_generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    __table_args__ = (
        # "Susan" and "susan" are the same account.
        Index("uq_users_username_lower", func.lower(username), unique=True),
        Index("ix_users_username_id", "username", "id"),
        Index("ix_users_member_since_id", "member_since", "id"),
    )


class Follow(Versioned, Base):
    __tablename__ = "follows"

    follower_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    followed_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class RevokedToken(Base):
    """A bearer token revoked before its expiry; the row is useless after ``expires_at``."""

    __tablename__ = "revoked_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
