"""A third-party scheme (tests.plugins.apikey) is enabled by settings alone."""

from __future__ import annotations

import pytest
from webtest import TestApp

from hyperapi.settings import ConfigurationError

ALICE_KEY = "alice-api-key-0123456789abcdef"
BOB_KEY = "bob-api-key-fedcba9876543210"
PLUGIN = {
    "hyperapi.auth.policies": "tests.plugins.apikey.ApiKeyScheme bearer basic",
    "tests.apikey.keys": f"alice={ALICE_KEY} bob={BOB_KEY}",
}


@pytest.fixture(scope="module")
def plugin_app(app_factory):
    return app_factory(**PLUGIN)


@pytest.fixture
def client(plugin_app, testapp):
    # testapp (on the default app, same database) empties the tables after the test.
    return TestApp(plugin_app, extra_environ={"HTTP_HOST": "api.example.com"})


def test_a_plugin_scheme_named_in_settings_authenticates_requests(client, alice, bob):
    response = client.get(f"/api/v1/users/{alice['id']}", headers={"X-API-Key": ALICE_KEY})
    assert response.status_int == 200
    # email is only in the user's own representation: the key identified alice.
    assert response.json["email"] == "alice@example.com"
    other = client.get(f"/api/v1/users/{alice['id']}", headers={"X-API-Key": BOB_KEY})
    assert "email" not in other.json


def test_the_plugin_scheme_is_authorized_like_any_other(client, alice, bob):
    response = client.patch_json(
        f"/api/v1/users/{alice['id']}",
        {"about_me": "not bob's to change"},
        headers={"X-API-Key": BOB_KEY},
        status=403,
    )
    assert response.json["type"] == "/api/v1/problems/forbidden"


def test_a_wrong_api_key_is_401_with_every_enabled_schemes_challenge(client, alice):
    response = client.get("/api/v1/users", headers={"X-API-Key": "guessed"}, status=401)
    assert response.json["detail"] == "Authentication failed: the API key is not valid."
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('ApiKey header="X-API-Key", Bearer realm="hyperapi"')
    assert 'Basic realm="hyperapi"' in challenge


def test_the_other_schemes_still_work_beside_the_plugin(client, alice):
    assert client.get("/api/v1/users", headers=alice["auth"]).status_int == 200


def test_responses_vary_on_the_plugin_header_as_well_as_authorization(client, alice):
    response = client.get("/api/v1/users", headers={"X-API-Key": ALICE_KEY})
    assert {"Authorization", "X-API-Key"} <= set(
        response.headers["Vary"].replace(" ", "").split(",")
    )


def test_plugin_credentials_can_be_exchanged_for_a_bearer_token(client, alice):
    issued = client.post("/api/v1/tokens", headers={"X-API-Key": ALICE_KEY})
    token = {"Authorization": "Bearer " + issued.json["token"]}
    assert client.get(f"/api/v1/users/{alice['id']}", headers=token).json["username"] == "alice"


def test_the_default_application_does_not_know_the_plugin_header(testapp, alice):
    response = testapp.get("/api/v1/users", headers={"X-API-Key": ALICE_KEY}, status=401)
    assert "ApiKey" not in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ("bearer no.such.module.Scheme", "neither a built-in"),
        ("kerberos basic", "neither a built-in"),
        ("collections.OrderedDict basic", "is not an IAuthenticationScheme"),
        ("basic basic", "names a scheme twice"),
        ("", "enables no scheme"),
    ],
)
def test_an_unusable_scheme_setting_refuses_to_start(app_factory, policies, message):
    with pytest.raises(ConfigurationError, match=message):
        app_factory(**{"hyperapi.auth.policies": policies})


def test_login_policies_must_name_enabled_schemes(app_factory):
    with pytest.raises(ConfigurationError, match="not enabled"):
        app_factory(**{"hyperapi.auth.login_policies": "apikey"})


def test_a_plugins_own_bad_setting_refuses_to_start(app_factory):
    with pytest.raises(ConfigurationError, match="username=key"):
        app_factory(**{**PLUGIN, "tests.apikey.keys": "no-equals-sign"})
