"""Students, classes and the registrations that link them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, Versioned, utcnow


class Student(Versioned, Base):
    __tablename__ = "students"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False)

    # Keyset paging by name walks this index (id breaks ties).
    __table_args__ = (Index("ix_students_name_id", "name", "id"),)


class Class(Versioned, Base):
    __tablename__ = "classes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False)

    __table_args__ = (Index("ix_classes_name_id", "name", "id"),)


class Registration(Versioned, Base):
    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), nullable=False
    )
    class_id: Mapped[int] = mapped_column(
        ForeignKey("classes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("student_id", "class_id"),
        Index("ix_registrations_enrolled_at_id", "enrolled_at", "id"),
    )
