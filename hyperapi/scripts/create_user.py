"""hyperapi-create-user: create an account, optionally an administrator.

    hyperapi-create-user development.ini alice alice@example.com --admin
    echo "$PASSWORD" | hyperapi-create-user production.ini bob bob@example.com --password-stdin

The password is asked for at a prompt (twice), or read from standard input; it is never
taken from the command line, where other users of the machine could read it.
"""

from __future__ import annotations

import argparse
import getpass
import sys

import colander
from pyramid.paster import bootstrap, setup_logging
from sqlalchemy.exc import IntegrityError

from ..models import User
from ..models.collections import bump
from ..schemas.users import user_body


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password (again): "):
        raise SystemExit("The passwords differ.")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_uri")
    parser.add_argument("username")
    parser.add_argument("email")
    parser.add_argument("--admin", action="store_true", help="make the user an administrator")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    args = parser.parse_args(argv)
    setup_logging(args.config_uri)
    password = read_password(args.password_stdin)
    try:
        data = user_body().deserialize(
            {"username": args.username, "email": args.email, "password": password}
        )
    except colander.Invalid as exc:
        for name, message in exc.asdict().items():
            print(f"{name}: {message}", file=sys.stderr)
        return 2
    with bootstrap(args.config_uri) as env:
        request = env["request"]
        try:
            with request.tm:
                user = User(
                    username=data["username"],
                    email=data["email"],
                    about_me="",
                    password_hash=request.passwords.hash(data["password"]),
                    is_admin=args.admin,
                )
                request.dbsession.add(user)
                request.dbsession.flush()
                bump(request.dbsession, "users", +1)
                user_id = user.id
        except IntegrityError:
            print("A user with this username or email already exists.", file=sys.stderr)
            return 1
    print(f"created user {user_id} ({data['username']}){' as admin' if args.admin else ''}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
