"""Bodies of students, classes and registrations."""

from __future__ import annotations

import colander

from .types import DateTime, Mapping, Reference, String

READ_ONLY = ("id", "_links", "_etag", "version", "updated_at")


class StudentBody(colander.MappingSchema):
    name = colander.SchemaNode(String(), validator=colander.Length(1, 128))


class ClassBody(colander.MappingSchema):
    name = colander.SchemaNode(String(), validator=colander.Length(1, 128))


class RegistrationBody(colander.MappingSchema):
    student = colander.SchemaNode(Reference("students"))
    # "class" is a Python keyword; the node is named explicitly.
    class_ = colander.SchemaNode(Reference("classes"), name="class")
    enrolled_at = colander.SchemaNode(DateTime(), missing=colander.drop)


def student_body() -> colander.SchemaNode:
    return StudentBody(Mapping(read_only=READ_ONLY))


def class_body() -> colander.SchemaNode:
    return ClassBody(Mapping(read_only=READ_ONLY))


def registration_body() -> colander.SchemaNode:
    return RegistrationBody(Mapping(read_only=READ_ONLY))
