"""Fail fast: production refuses to start without strong secrets from the environment."""

from __future__ import annotations

import pytest

from hyperapi.settings import MIN_SECRET_LENGTH, ConfigurationError, parse

STRONG = "s" * MIN_SECRET_LENGTH
PRODUCTION = {
    "hyperapi.environment": "production",
    "sqlalchemy.url": "postgresql+psycopg://db/hyperapi",
}
GOOD_ENVIRONMENT = {
    "HYPERAPI_SECRET": STRONG,
    "HYPERAPI_AUTH_TOKEN_SECRETS": f"{'n' * MIN_SECRET_LENGTH} {'o' * MIN_SECRET_LENGTH}",
}


def test_production_starts_with_strong_secrets_from_the_environment():
    settings = parse(PRODUCTION, GOOD_ENVIRONMENT)
    # Newest first, as listed: the first signs, all verify.
    assert settings["hyperapi.auth.token_secrets"] == ["n" * 32, "o" * 32]


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"HYPERAPI_AUTH_TOKEN_SECRETS": STRONG}, "HYPERAPI_SECRET"),
        ({**GOOD_ENVIRONMENT, "HYPERAPI_SECRET": "short"}, "HYPERAPI_SECRET"),
        ({"HYPERAPI_SECRET": STRONG}, "HYPERAPI_AUTH_TOKEN_SECRETS"),
        ({**GOOD_ENVIRONMENT, "HYPERAPI_AUTH_TOKEN_SECRETS": ""}, "HYPERAPI_AUTH_TOKEN_SECRETS"),
        (
            {**GOOD_ENVIRONMENT, "HYPERAPI_AUTH_TOKEN_SECRETS": f"{STRONG} retired-but-short"},
            "HYPERAPI_AUTH_TOKEN_SECRETS",
        ),
    ],
    ids=["no-secret", "short-secret", "no-token-secret", "empty-token-secrets", "short-old-one"],
)
def test_production_refuses_to_start_without_strong_secrets(environment, message):
    with pytest.raises(ConfigurationError, match=message) as refused:
        parse(PRODUCTION, environment)
    # The message names the variable, never a value that might be (part of) a secret.
    assert "retired-but-short" not in str(refused.value)


def test_development_starts_without_secrets():
    settings = parse({"hyperapi.environment": "development"}, {})
    assert settings["hyperapi.auth.token_secrets"] == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("hyperapi.auth.token_expires", "0"), ("hyperapi.auth.verification_cache_ttl", "-1")],
)
def test_unusable_auth_lifetimes_refuse_to_start(name, value):
    with pytest.raises(ConfigurationError, match=name):
        parse({name: value}, {})
