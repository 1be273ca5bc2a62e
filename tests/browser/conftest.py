"""Browser fixtures: the app served on a free local port, and headless Debian Chromium.

Playwright cannot download a browser here: it drives /usr/bin/chromium (Debian's package).
Without it the browser tests skip, except under CI=true where they must run.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("ORIENTATION_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests are required in CI but {CHROMIUM} is missing")
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _read_whole(app: Flask) -> Any:
    """The app, each response read whole and closed before werkzeug's server sends it.

    The dev server does not always close a response the browser gave up on (a favicon, an
    image of a page left mid-load), even when told of the dropped connection. The open file's
    ResourceWarning, raised whenever the garbage collector got to it, then failed whichever
    test was running. Read whole, nothing is left open (gunicorn closes them itself).
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        response = app(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            if hasattr(response, "close"):
                response.close()

    return wsgi


@contextmanager
def serving(app: Flask, port: int = 0) -> Iterator[str]:
    """The app served on 127.0.0.1 (`port`, or a free one) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", port, _read_whole(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        _wait_for_connections(app)


def _wait_for_connections(app: Flask, seconds: float = 5.0) -> None:
    """Let requests still running (a map's fetch the page fired last) give their database
    connection back. Disposing the engine meanwhile would leave it open in the discarded pool,
    and its garbage collection, during some later test, fails that test (a ResourceWarning)."""
    engine = app.extensions.get("orientation.engine")
    checked_out = getattr(getattr(engine, "pool", None), "checkedout", None)
    deadline = time.monotonic() + seconds
    while checked_out is not None and checked_out() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture
def phone_page(browser):  # type: ignore[no-untyped-def]
    """A page the size of a common phone (360 x 740), French locale."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 360, "height": 740}, locale="fr-FR", device_scale_factor=2
    )
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def desktop_page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    context.close()
