"""change notifications: triggers that NOTIFY hyperapi_changes of every changed row

PostgreSQL only (SQLite has no NOTIFY; nothing is done there). Each row inserted, updated
or deleted in the tables whose rows a read may remember (hyperapi.models.changes) sends
``'<table> <key>'`` on the ``hyperapi_changes`` channel, and a TRUNCATE sends
``'<table> *'``. Notifications are sent at commit, and identical ones within a
transaction are sent once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 12:10:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here, as a migration must be; hyperapi.models.changes names the same.
CHANNEL = "hyperapi_changes"
NOTIFYING_TABLES = {
    "users": "id",
    "posts": "id",
    "students": "id",
    "classes": "id",
    "registrations": "id",
    "revoked_tokens": "token_id",
}

FUNCTION = f"""
CREATE OR REPLACE FUNCTION hyperapi_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV[0]: the column that names a row (id, or token_id).
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ' *');
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ' ' || (to_jsonb(OLD) ->> TG_ARGV[0]));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ' ' || (to_jsonb(NEW) ->> TG_ARGV[0]));
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for table, key in NOTIFYING_TABLES.items():
        op.execute(
            f"CREATE TRIGGER hyperapi_notify_change AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION hyperapi_notify_change('{key}')"
        )
        op.execute(
            f"CREATE TRIGGER hyperapi_notify_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION hyperapi_notify_change('{key}')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in NOTIFYING_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS hyperapi_notify_change ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS hyperapi_notify_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS hyperapi_notify_change()")
