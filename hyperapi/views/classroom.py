"""Students, classes, and the registrations that put a student in a class."""

from __future__ import annotations

from sqlalchemy import func, select

from .. import links
from ..errors import Problem
from ..models import Class, Registration, Student
from ..models.collections import bump
from ..resources import Relation, Resource, relation_service, services
from ..schemas.classroom import class_body, registration_body, student_body
from ..schemas.types import Reference, String, format_datetime


def _named(kind: str):
    def represent(request, row) -> dict:
        return {
            "id": row.id,
            "name": row.name,
            "_links": {
                "self": links.link(request, f"{kind}.item", id=row.id),
                "registrations": links.link(request, f"{kind}.registrations", id=row.id),
                "collection": links.link(request, f"{kind}.collection"),
            },
        }

    return represent


def _drop_registrations(column: str):
    def before_delete(request, instance) -> None:
        table = Registration.__table__
        session = request.dbsession
        count = session.execute(
            select(func.count()).select_from(table).where(table.c[column] == instance.id)
        ).scalar()
        if count:
            # The database cascades the delete; the collection's state must follow it.
            bump(session, "registrations", -count)

    return before_delete


students = Resource(
    name="students",
    title="student",
    model=Student,
    body=student_body(),
    represent=_named("students"),
    filters={"name": ("name", String())},
    sorts={"id": "id", "name": "name"},
    before_delete=_drop_registrations("student_id"),
    create_permission="manage",
    edit_permission="manage",
)

classes = Resource(
    name="classes",
    title="class",
    model=Class,
    body=class_body(),
    represent=_named("classes"),
    filters={"name": ("name", String())},
    sorts={"id": "id", "name": "name"},
    before_delete=_drop_registrations("class_id"),
    create_permission="manage",
    edit_permission="manage",
)


def represent_registration(request, row) -> dict:
    student = links.href(request, "students.item", id=row.student_id)
    klass = links.href(request, "classes.item", id=row.class_id)
    return {
        "id": row.id,
        "student": student,
        "class": klass,
        "enrolled_at": format_datetime(row.enrolled_at),
        "_links": {
            "self": links.link(request, "registrations.item", id=row.id),
            "student": {"href": student},
            "class": {"href": klass},
            "collection": links.link(request, "registrations.collection"),
        },
    }


def create_registration(request, data: dict) -> Registration:
    session = request.dbsession
    missing = [
        {"location": "body", "name": name, "description": f"there is no such {title}"}
        for name, model, title in (("student", Student, "student"), ("class", Class, "class"))
        if session.get(model, data[name]) is None
    ]
    if missing:
        raise Problem(
            "validation", "The registration refers to a missing resource.", errors=missing
        )
    values = {"student_id": data["student"], "class_id": data["class"]}
    if "enrolled_at" in data:
        values["enrolled_at"] = data["enrolled_at"]
    return Registration(**values)


registrations = Resource(
    name="registrations",
    title="registration",
    model=Registration,
    body=registration_body(),
    represent=represent_registration,
    filters={
        "student": ("student_id", Reference("students")),
        "class": ("class_id", Reference("classes")),
    },
    sorts={"id": "id", "enrolled_at": "enrolled_at"},
    item_methods=("DELETE",),
    create=create_registration,
    create_permission="manage",
    edit_permission="manage",
    conflict="This student is already registered in this class.",
)

student_registrations = Relation(
    route="students.registrations",
    parent=students,
    member=registrations,
    scope=lambda sid: Registration.__table__.c.student_id == sid,
)

class_registrations = Relation(
    route="classes.registrations",
    parent=classes,
    member=registrations,
    scope=lambda cid: Registration.__table__.c.class_id == cid,
)

SERVICES = [
    *services(students),
    *services(classes),
    *services(registrations),
    relation_service(student_registrations),
    relation_service(class_registrations),
]
