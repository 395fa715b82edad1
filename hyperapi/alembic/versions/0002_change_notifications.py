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
NOTIFYING_TABLES = ("users", "posts", "students", "classes", "registrations", "revoked_tokens")

FUNCTION = f"""
CREATE OR REPLACE FUNCTION hyperapi_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ' *');
    ELSIF TG_TABLE_NAME = 'revoked_tokens' THEN
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ' ' || OLD.token_id);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ' ' || NEW.token_id);
        END IF;
    ELSE
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ' ' || OLD.id);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ' ' || NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for table in NOTIFYING_TABLES:
        op.execute(
            f"CREATE TRIGGER hyperapi_notify_change AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION hyperapi_notify_change()"
        )
        op.execute(
            f"CREATE TRIGGER hyperapi_notify_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION hyperapi_notify_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in NOTIFYING_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS hyperapi_notify_change ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS hyperapi_notify_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS hyperapi_notify_change()")
