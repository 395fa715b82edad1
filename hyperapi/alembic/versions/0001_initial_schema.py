"""initial schema: users, follows, posts, students, classes, registrations, revoked tokens

Every row has a version (ETags, compare-and-swap) and an updated_at (Last-Modified);
collection_states holds each collection's version and size, seeded here.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 05:52:15.197548
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classes")),
    )
    with op.batch_alter_table("classes", schema=None) as batch_op:
        batch_op.create_index("ix_classes_name_id", ["name", "id"], unique=False)

    op.create_table(
        "collection_states",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_collection_states")),
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_revoked_tokens")),
    )
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_revoked_tokens_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "students",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_students")),
    )
    with op.batch_alter_table("students", schema=None) as batch_op:
        batch_op.create_index("ix_students_name_id", ["name", "id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("about_me", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("member_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("post_count", sa.Integer(), nullable=False),
        sa.Column("follower_count", sa.Integer(), nullable=False),
        sa.Column("followed_count", sa.Integer(), nullable=False),
        sa.Column("token_generation", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ix_users_member_since_id", ["member_since", "id"], unique=False)
        batch_op.create_index("ix_users_username_id", ["username", "id"], unique=False)
        # "Susan" and "susan" are one account (autogenerate cannot see expression indexes).
        batch_op.create_index("uq_users_username_lower", [sa.text("lower(username)")], unique=True)

    op.create_table(
        "follows",
        sa.Column("follower_id", sa.Integer(), nullable=False),
        sa.Column("followed_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["followed_id"],
            ["users.id"],
            name=op.f("fk_follows_followed_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["users.id"],
            name=op.f("fk_follows_follower_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("follower_id", "followed_id", name=op.f("pk_follows")),
    )
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_follows_followed_id"), ["followed_id"], unique=False)

    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_posts_author_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index("ix_posts_author_id_id", ["author_id", "id"], unique=False)
        batch_op.create_index("ix_posts_timestamp_id", ["timestamp", "id"], unique=False)

    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["classes.id"],
            name=op.f("fk_registrations_class_id_classes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["students.id"],
            name=op.f("fk_registrations_student_id_students"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
        sa.UniqueConstraint("student_id", "class_id", name=op.f("uq_registrations_student_id")),
    )
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registrations_class_id"), ["class_id"], unique=False)
        batch_op.create_index(
            "ix_registrations_enrolled_at_id", ["enrolled_at", "id"], unique=False
        )

    states = sa.table(
        "collection_states",
        sa.column("name", sa.String),
        sa.column("version", sa.Integer),
        sa.column("count", sa.Integer),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        states,
        [
            {"name": name, "version": 1, "count": 0, "updated_at": now}
            for name in ("users", "follows", "posts", "students", "classes", "registrations")
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_index("ix_registrations_enrolled_at_id")
        batch_op.drop_index(batch_op.f("ix_registrations_class_id"))

    op.drop_table("registrations")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_timestamp_id")
        batch_op.drop_index("ix_posts_author_id_id")

    op.drop_table("posts")
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_follows_followed_id"))

    op.drop_table("follows")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("uq_users_username_lower")
        batch_op.drop_index("ix_users_username_id")
        batch_op.drop_index("ix_users_member_since_id")

    op.drop_table("users")
    with op.batch_alter_table("students", schema=None) as batch_op:
        batch_op.drop_index("ix_students_name_id")

    op.drop_table("students")
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revoked_tokens_expires_at"))

    op.drop_table("revoked_tokens")
    op.drop_table("collection_states")
    with op.batch_alter_table("classes", schema=None) as batch_op:
        batch_op.drop_index("ix_classes_name_id")

    op.drop_table("classes")
