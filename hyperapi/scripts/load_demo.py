"""hyperapi-load-demo: fill the database with demo data, for trying and benchmarking.

    hyperapi-load-demo development.ini --users 1000 --posts 100000 --students 1000

Rows are inserted in batches with SQLAlchemy Core (not the ORM: a million posts would take
minutes that way); the collection states and users' counters are set to match. All demo
users share one password, printed at the end, hashed once.
"""

from __future__ import annotations

import argparse
import random
import sys

from pyramid.paster import bootstrap, setup_logging
from sqlalchemy import func, insert, select, update
from tqdm import tqdm
from zope.sqlalchemy import mark_changed

from ..models import Class, CollectionState, Follow, Post, Registration, Student, User
from ..models.meta import utcnow

BATCH = 5000
DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed for the user of a demo database
WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua"
).split()


def batches(total: int, make, table, session, label: str) -> None:
    with tqdm(total=total, desc=label, unit="rows", file=sys.stderr) as bar:
        for start in range(0, total, BATCH):
            rows = [make(i) for i in range(start, min(total, start + BATCH))]
            session.execute(insert(table), rows)
            bar.update(len(rows))


def sync_states(session) -> None:
    """Make every collection's count and version agree with what is now in the tables."""
    now = utcnow()
    for model, name in (
        (User, "users"),
        (Follow, "follows"),
        (Post, "posts"),
        (Student, "students"),
        (Class, "classes"),
        (Registration, "registrations"),
    ):
        count = session.execute(select(func.count()).select_from(model.__table__)).scalar()
        table = CollectionState.__table__
        session.execute(
            update(table)
            .where(table.c.name == name)
            .values(count=count, version=table.c.version + 1, updated_at=now)
        )
    users = User.__table__
    posts = Post.__table__
    follows = Follow.__table__
    session.execute(
        update(users).values(
            post_count=select(func.count())
            .where(posts.c.author_id == users.c.id)
            .scalar_subquery(),
            follower_count=select(func.count())
            .where(follows.c.followed_id == users.c.id)
            .scalar_subquery(),
            followed_count=select(func.count())
            .where(follows.c.follower_id == users.c.id)
            .scalar_subquery(),
            version=users.c.version + 1,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_uri")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--follows", type=int, default=5, help="follows per user")
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--registrations", type=int, default=3, help="per student")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    setup_logging(args.config_uri)
    rng = random.Random(args.seed)  # noqa: S311 - demo data, not secrets
    now = utcnow()
    with bootstrap(args.config_uri) as env:
        request = env["request"]
        request.method = "POST"  # a write session
        with request.tm:
            session = request.dbsession
            first_user = (session.execute(select(func.max(User.id))).scalar() or 0) + 1
            password_hash = request.passwords.hash(DEMO_PASSWORD)
            batches(
                args.users,
                lambda i: {
                    "username": f"user{first_user + i}",
                    "email": f"user{first_user + i}@example.com",
                    "password_hash": password_hash,
                    "about_me": "",
                    "is_admin": False,
                    "member_since": now,
                    "post_count": 0,
                    "follower_count": 0,
                    "followed_count": 0,
                    "token_generation": 0,
                    "version": 1,
                    "updated_at": now,
                },
                User.__table__,
                session,
                "users",
            )
            user_ids = range(first_user, first_user + args.users)
            if args.users:
                batches(
                    args.posts,
                    lambda i: {
                        "body": " ".join(rng.choices(WORDS, k=12)),
                        "timestamp": now,
                        "author_id": rng.choice(user_ids),
                        "version": 1,
                        "updated_at": now,
                    },
                    Post.__table__,
                    session,
                    "posts",
                )
                pairs = {(u, rng.choice(user_ids)) for u in user_ids for _ in range(args.follows)}
                pairs = sorted((a, b) for a, b in pairs if a != b)
                batches(
                    len(pairs),
                    lambda i: {
                        "follower_id": pairs[i][0],
                        "followed_id": pairs[i][1],
                        "created_at": now,
                        "version": 1,
                        "updated_at": now,
                    },
                    Follow.__table__,
                    session,
                    "follows",
                )
            first_student = (session.execute(select(func.max(Student.id))).scalar() or 0) + 1
            batches(
                args.students,
                lambda i: {
                    "name": f"student {first_student + i}",
                    "version": 1,
                    "updated_at": now,
                },
                Student.__table__,
                session,
                "students",
            )
            first_class = (session.execute(select(func.max(Class.id))).scalar() or 0) + 1
            batches(
                args.classes,
                lambda i: {"name": f"class {first_class + i}", "version": 1, "updated_at": now},
                Class.__table__,
                session,
                "classes",
            )
            if args.classes:
                class_ids = list(range(first_class, first_class + args.classes))
                regs = sorted(
                    {
                        (s, c)
                        for s in range(first_student, first_student + args.students)
                        for c in rng.sample(class_ids, min(args.registrations, len(class_ids)))
                    }
                )
                batches(
                    len(regs),
                    lambda i: {
                        "student_id": regs[i][0],
                        "class_id": regs[i][1],
                        "enrolled_at": now,
                        "version": 1,
                        "updated_at": now,
                    },
                    Registration.__table__,
                    session,
                    "registrations",
                )
            sync_states(session)
            # Core statements do not tell zope.sqlalchemy that the session wrote anything;
            # without this the transaction manager rolls every row back at commit.
            mark_changed(session, request.tm)
    print(
        f"demo users user{first_user}..user{first_user + args.users - 1} "
        f"have the password {DEMO_PASSWORD!r}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
