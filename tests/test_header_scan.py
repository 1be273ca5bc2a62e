"""A scan of the running demo with a real HTTP client: security headers on every page.

`orientation demo` seeds a SQLite database, `orientation serve` (gunicorn) serves it on a free
port, and `requests` crawls every same-site link as a visitor, a coordinator and a CPTS admin.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

REQUIRED = {
    "Content-Security-Policy": "script-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
MAX_PAGES = 150


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "link": "href", "script": "src", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.links.append(value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The demo served by gunicorn; yields its base URL and the printed logins by role."""
    folder = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {
        **os.environ,
        "ORIENTATION_INSTANCE_PATH": str(folder),
        "ORIENTATION_DATABASE_URL": f"sqlite:///{folder / 'demo.sqlite3'}",
        "ORIENTATION_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [str(Path(sys.executable).parent / "orientation")]
    seeded = subprocess.run(
        [*command, "demo"], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    logins = {}
    for line in seeded.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and "@" in parts[1] and parts[0] not in logins:
            logins[parts[0]] = f"{parts[1]} {parts[2]}"
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(f"{base}/sante", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail("orientation serve did not answer within 20 s")
        yield base, logins
    finally:
        server.terminate()
        server.wait(timeout=10)


def _login(http: requests.Session, base: str, login: str) -> None:
    email, password = login.split(" ", 1)
    page = http.get(f"{base}/connexion", timeout=5).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    response = http.post(
        f"{base}/connexion",
        data={"csrf_token": token.group(1), "email": email, "password": password},
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]


def _crawl(http: requests.Session, base: str, start: list[str]) -> dict[str, requests.Response]:
    seen: dict[str, requests.Response] = {}
    queue = list(start)
    while queue and len(seen) < MAX_PAGES:
        url = urljoin(base, queue.pop(0)).split("#")[0]
        if urlsplit(url).netloc != urlsplit(base).netloc or url in seen:
            continue
        if "deconnexion" in url:
            continue
        response = http.get(url, timeout=10, allow_redirects=False)
        seen[url] = response
        if response.headers.get("Content-Type", "").startswith("text/html"):
            parser = _Links()
            parser.feed(response.text)
            queue.extend(parser.links)
    return seen


@pytest.mark.parametrize("role", ["visitor", "coordinator", "cpts_admin"])
def test_every_page_of_the_running_demo_carries_the_security_headers(
    demo: tuple[str, dict[str, str]], role: str
) -> None:
    base, logins = demo
    http = requests.Session()
    if role != "visitor":
        _login(http, base, logins[role])
    pages = _crawl(http, base, ["/", "/connexion", "/page-qui-n-existe-pas", "/espace/", "/admin/",
                                "/admin/audit", "/espace/registre", "/espace/droits"])  # fmt: skip
    assert len(pages) >= 8
    problems = []
    for url, response in pages.items():
        assert response.status_code < 500, url
        for header, expected in REQUIRED.items():
            if expected not in response.headers.get(header, ""):
                problems.append(f"{url}: {header}={response.headers.get(header)!r}")
        if response.headers.get("Content-Type", "").startswith("text/html"):
            if "no-store" not in response.headers.get("Cache-Control", ""):
                problems.append(f"{url}: HTML without Cache-Control: no-store")
            if "Strict-Transport-Security" in response.headers:
                problems.append(f"{url}: HSTS over plain HTTP")
    assert not problems, "\n".join(problems)
    if role == "cpts_admin":
        assert any("/admin/audit" in url for url in pages)
