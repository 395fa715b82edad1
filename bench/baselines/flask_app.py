"""Baseline: Flask + Flask-SQLAlchemy doing hyperapi's item GET against the same database.

``GET /api/v1/users/{id}`` loads the row through the ORM, renders the same fields and
absolute links (``url_for(_external=True)``) and an ETag from the row's version. It does
less than hyperapi (no authentication, no content negotiation, no problem details), so a
ratio in hyperapi's favour is conservative. Served through PasteDeploy
(``use = call:flask_app:main``) under gunicorn, like hyperapi.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask, jsonify, url_for
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(db.Model):
    """The columns of hyperapi's ``users`` table that its public representation shows."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    about_me: Mapped[str] = mapped_column(Text)
    member_since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    post_count: Mapped[int] = mapped_column(Integer)
    follower_count: Mapped[int] = mapped_column(Integer)
    followed_count: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite keeps naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def user_item(user_id: int):
    user = db.get_or_404(User, user_id)

    def link(endpoint: str, **values) -> dict:
        return {"href": url_for(endpoint, _external=True, **values)}

    response = jsonify(
        {
            "id": user.id,
            "username": user.username,
            "about_me": user.about_me,
            "member_since": iso(user.member_since),
            "last_seen": iso(user.last_seen),
            "post_count": user.post_count,
            "follower_count": user.follower_count,
            "followed_count": user.followed_count,
            "_links": {
                "self": link("user_item", user_id=user.id),
                "followers": link("user_related", user_id=user.id, relation="followers"),
                "followed": link("user_related", user_id=user.id, relation="followed"),
                "posts": link("user_related", user_id=user.id, relation="posts"),
                "collection": link("user_collection"),
            },
        }
    )
    response.headers["ETag"] = f'"{user.version}"'
    return response


def not_served(**_):
    return {"detail": "not part of the baseline"}, 404


def main(global_config, **settings):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = settings["sqlalchemy.url"]
    db.init_app(app)
    app.add_url_rule("/api/v1/users/<int:user_id>", "user_item", user_item)
    app.add_url_rule("/api/v1/users/<int:user_id>/<relation>", "user_related", not_served)
    app.add_url_rule("/api/v1/users", "user_collection", not_served)
    return app
