"""Property-based fuzzing with schemathesis, driven by the API's own OpenAPI document.

Schemathesis reads ``/api/v1/openapi.json`` from the WSGI application and generates
requests for every operation: schema-valid ones (positive) and schema-invalid ones
(negative: wrong types, missing or extra fields, bad parameters and headers), then a stateful
run that chains operations through the document's links (create, then read, change, delete
what was created). Every response must pass schemathesis' checks:

- no 5xx (``not_a_server_error``);
- the status code, Content-Type, headers and body are the ones the document declares for
  that operation (``*_conformance``);
- a request the schema forbids is not accepted (``negative_data_rejection``) and an
  operation that needs credentials refuses a request without them (``ignored_auth``).

``positive_data_acceptance`` (every schema-valid request gets a 2xx) is left out on
purpose: the document cannot say everything a request must satisfy (a cursor must be one
the server signed, a sort key may not be named twice, a registration's student must exist,
a username must be free), so a schema-valid request may rightly get a 400, 404 or 409.

The requests run as an admin with HTTP Basic (a token could be revoked by the fuzzer's own
``DELETE /api/v1/tokens``), against a few rows of every kind so that generated ids find
something. When the fuzzer changes or deletes the admin's own account, the account is put
back before the next request.

Running it: the CI run is bounded (``HYPERAPI_FUZZ_EXAMPLES`` examples per operation and
mode, at least 1,000 requests in all, a few seconds per backend); the seed is printed, and
``HYPERAPI_FUZZ_SEED`` replays a run. A longer run on demand::

    HYPERAPI_FUZZ_EXAMPLES=500 pytest tests/functional/test_fuzz.py
"""

from __future__ import annotations

import os
import random
from collections import Counter

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from hyperapi.models import User
from tests.conftest import Accounts, empty_database

DEFAULT_EXAMPLES = 12
EXAMPLES = int(os.environ.get("HYPERAPI_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
#: Stateful scenarios: each a chain of up to STEPS linked requests.
SCENARIOS = max(EXAMPLES, 10)
STEPS = 10
#: The issue's bar for a CI run; a run with fewer examples asked for is not held to it.
MIN_REQUESTS = 1000 if EXAMPLES >= DEFAULT_EXAMPLES else 0
SEED = int(os.environ.get("HYPERAPI_FUZZ_SEED") or random.SystemRandom().randrange(2**32))

CONFIG = {
    "checks": {
        "positive_data_acceptance": {"enabled": False},
        # RFC 9110 §13.2.1: preconditions are evaluated before the request content is
        # processed, so a stale If-Match gets its 412 whatever the body holds.
        "negative_data_rejection": {
            "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 412, 413, 415, 428, 429]
        },
    }
}


def fuzz_settings(examples: int, **more) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        # No example database: runs are reproduced by their seed, and nothing is written
        # into the working tree.
        database=None,
        suppress_health_check=list(HealthCheck),
        **more,
    )


class Fuzzer:
    """Sends generated cases as the admin, counts answers, keeps the admin account usable."""

    def __init__(self, app, testapp):
        self.app = app
        self.testapp = testapp
        self.statuses: Counter[int] = Counter()
        self.seed_rows()

    def seed_rows(self) -> None:
        """The admin, two users, and a few rows of every kind for small ids to find."""
        accounts = Accounts(self.app, self.testapp)
        admin = accounts.create("root", admin=True)
        alice, bob = accounts.create("alice"), accounts.create("bob")
        post = self.testapp.post_json
        for author in (alice, bob):
            for n in range(2):
                post("/api/v1/posts", {"body": f"post {n}"}, headers=author["auth"])
        self.testapp.put(
            f"/api/v1/users/{alice['id']}/followed/{bob['id']}", headers=alice["auth"]
        )
        for n in range(3):
            student = post("/api/v1/students", {"name": f"s{n}"}, headers=admin["auth"])
            klass = post("/api/v1/classes", {"name": f"c{n}"}, headers=admin["auth"])
            body = {"student": student.json["id"], "class": klass.json["id"]}
            post("/api/v1/registrations", body, headers=admin["auth"])
        self.auth = admin["auth"]
        self.admin_path = f"/api/v1/users/{admin['id']}"
        table = User.__table__
        with self.app.registry.database.engine.connect() as connection:
            query = sa.select(table).where(table.c.id == admin["id"])
            self.admin_row = dict(connection.execute(query).mappings().one())

    def reset(self) -> None:
        """Start a stateful scenario from the same rows, so that Hypothesis can replay it."""
        empty_database(self.app.registry.database.write_engine)
        self.seed_rows()

    def call(self, case):
        response = case.call(headers=self.auth)
        self.statuses[response.status_code] += 1
        changed = case.method.upper() in ("PUT", "PATCH", "DELETE") and response.status_code < 300
        if changed and case.formatted_path.rstrip("/") == self.admin_path:
            self.restore_admin()
        return response

    def check(self, case, response) -> None:
        case.validate_response(response, headers=self.auth)

    def restore_admin(self) -> None:
        """Undo the fuzzer's change of the account it authenticates as (new password, gone)."""
        table = User.__table__
        row = self.admin_row
        with self.app.registry.database.write_engine.begin() as connection:
            exists = connection.execute(
                sa.select(table.c.id).where(table.c.id == row["id"])
            ).first()
            if exists:
                keep = ("username", "password_hash", "is_admin", "token_generation")
                connection.execute(
                    sa.update(table)
                    .where(table.c.id == row["id"])
                    .values({name: row[name] for name in keep})
                )
            else:
                connection.execute(sa.insert(table).values(row))

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def successes(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def summary(self) -> str:
        return (
            f"seed {SEED}, {self.total} requests, statuses {dict(sorted(self.statuses.items()))}"
        )


@pytest.fixture
def fuzzer(app, testapp) -> Fuzzer:
    return Fuzzer(app, testapp)


@pytest.fixture
def schema(app, fuzzer):
    return schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG)
    )


@pytest.fixture
def announce(request, capsys, record_property):
    """Print to the terminal even when the test passes: the seed first, then what was seen."""
    record_property("schemathesis_seed", SEED)

    def say(text: str) -> None:
        with capsys.disabled():
            print(f"\n[{request.node.name}] {text}")

    say(f"schemathesis seed: HYPERAPI_FUZZ_SEED={SEED}")
    return say


def negatable(operation) -> bool:
    """Whether anything the operation takes can be made schema-invalid.

    A header or path segment that may be any string cannot, and Hypothesis would spend a
    second proving it (Unsatisfiable).
    """
    if len(operation.body):
        return True
    parameters = [*operation.path_parameters, *operation.query, *operation.headers]
    for parameter in parameters:
        schema = parameter.definition.get("schema", {})
        if schema.get("type") != "string" or set(schema) - {"type", "description"}:
            return True
    return False


def run_operation(fuzzer: Fuzzer, operation, mode: GenerationMode) -> None:
    @hypothesis.seed(SEED)
    @fuzz_settings(EXAMPLES)
    @hypothesis.given(case=operation.as_strategy(mode))
    def fuzz(case):
        fuzzer.check(case, fuzzer.call(case))

    try:
        fuzz()
    except Unsatisfiable:
        # An operation with no parameter, header or body has nothing to make invalid.
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request"


def test_generated_requests_get_no_server_error_and_conform_to_the_document(
    schema, fuzzer, announce
):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50  # every route and method of the document
    for operation in operations:
        run_operation(fuzzer, operation, GenerationMode.POSITIVE)
        if negatable(operation):
            run_operation(fuzzer, operation, GenerationMode.NEGATIVE)
    assert fuzzer.total >= MIN_REQUESTS, fuzzer.summary()
    assert not [status for status in fuzzer.statuses if status >= 500], fuzzer.summary()
    # The admin stayed signed in, so generated requests reached the resources themselves.
    assert fuzzer.successes() >= fuzzer.total // 20, fuzzer.summary()
    fuzzer.testapp.get(fuzzer.admin_path, headers=fuzzer.auth, status=200)
    announce(fuzzer.summary())


def test_stateful_sequences_following_the_documents_links_conform_too(schema, fuzzer, announce):
    machine_class = schema.as_state_machine()

    class Machine(machine_class):
        def setup(self):
            fuzzer.reset()

        def get_call_kwargs(self, case):
            return {"headers": fuzzer.auth}

        def call(self, case, **kwargs):
            return fuzzer.call(case)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            fuzzer.check(case, response)

    hypothesis.seed(SEED)(Machine)
    Machine.run(settings=fuzz_settings(SCENARIOS, stateful_step_count=STEPS))
    assert fuzzer.total >= SCENARIOS, fuzzer.summary()
    assert fuzzer.successes() > 0, fuzzer.summary()
    announce(fuzzer.summary())
