"""/api/v1/docs renders the OpenAPI document in a real browser, offline, under its CSP.

Headless Chromium loads the page from a real server on 127.0.0.1, runs Swagger UI from the
assets installed with the package, fetches the document, and the rendered DOM is checked
for every operation. The browser enforces the page's Content-Security-Policy, so this also
shows that the policy lets Swagger UI run; a control run with a policy that forbids scripts
shows that it would catch one that did not.

Chromium is the Debian package (``make test`` installs it on a root Debian machine). Without
it these tests skip, and fail when ``HYPERAPI_REQUIRE_BACKENDS`` is set, as in CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess

import pytest
from webtest import TestApp
from webtest.http import StopableWSGIServer

from hyperapi import main
from hyperapi.tweens.negotiation import PAGE_CSP
from tests.conftest import TEST_SETTINGS, unavailable

pytestmark = pytest.mark.slow

#: Flags that keep Chromium from reaching for Google's services (the network is closed)
#: and let it run as root in a container.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Virtual time runs as fast as the page allows, so Swagger UI's client-side rendering
    # is finished before --dump-dom prints the DOM.
    "--virtual-time-budget=15000",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    unavailable("Chromium is not installed (apt-get install chromium; make test does it as root)")


class Recorder:
    """WSGI middleware: remembers the paths asked for, and can replace the page's CSP."""

    def __init__(self, app):
        self.app = app
        self.paths: list[str] = []
        self.csp: str | None = None

    def __call__(self, environ, start_response):
        self.paths.append(environ["PATH_INFO"])

        def start(status, headers, exc_info=None):
            if self.csp is not None:
                headers = [(k, v) for k, v in headers if k.lower() != "content-security-policy"]
                headers.append(("Content-Security-Policy", self.csp))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


@pytest.fixture(scope="module")
def docs_app(sqlite_url):
    app = main({}, **{**TEST_SETTINGS, "sqlalchemy.url": sqlite_url})
    yield app
    app.registry.database.dispose()


@pytest.fixture(scope="module")
def server(docs_app):
    recorder = Recorder(docs_app)
    httpd = StopableWSGIServer.create(recorder, host="127.0.0.1", port=0)
    try:
        yield f"http://127.0.0.1:{httpd.effective_port}", recorder
    finally:
        httpd.shutdown()


def render(chromium: str, url: str, profile) -> str:
    """The DOM of ``url`` after its scripts ran, from a fresh profile; bounded in time."""
    process = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=90)
    finally:
        # Chromium's helper processes share its process group: none outlives the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == 0, f"chromium exited with {process.returncode}"
    return out.decode("utf-8", errors="replace")


def operation_anchor(tag: str, operation_id: str) -> str:
    # Swagger UI's id for an operation's block, with CSS-escaped dots.
    return 'id="operations-{}-{}"'.format(tag, operation_id.replace(".", "\\."))


def test_swagger_ui_renders_every_operation_offline_under_the_pages_csp(
    chromium, server, docs_app, tmp_path
):
    base, recorder = server
    client = TestApp(docs_app)
    page = client.get("/api/v1/docs", headers={"Accept": "text/html"})
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    document = client.get("/api/v1/openapi.json").json

    dom = render(chromium, base + "/api/v1/docs", tmp_path / "profile")

    # The browser fetched the document and Swagger UI's assets from this server only.
    assert "/api/v1/openapi.json" in recorder.paths
    assert any(path.endswith("swagger-ui-bundle.js") for path in recorder.paths)
    missing = [
        (path, method)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation_anchor(operation["tags"][0], operation["operationId"]) not in dom
    ]
    assert not missing, f"operations not rendered: {missing}"
    for path in document["paths"]:
        assert f'data-path="{path}"' in dom, path


def test_the_browser_enforces_the_csp_a_policy_forbidding_scripts_renders_nothing(
    chromium, server, tmp_path
):
    base, recorder = server
    recorder.csp = "default-src 'self'; script-src 'none'"
    try:
        dom = render(chromium, base + "/api/v1/docs", tmp_path / "profile")
    finally:
        recorder.csp = None
    assert 'id="swagger-ui"' in dom
    assert "opblock" not in dom
