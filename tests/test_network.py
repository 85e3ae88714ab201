"""The download probe against local servers that misbehave like real networks do.

Every server listens on 127.0.0.1 only, runs in a daemon thread and is shut down
by its fixture; no test touches the outside network.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from helpers import ModelUnavailableError, load_model
from helpers.models import choose_model, vgg16
from helpers.network import download_problem, reachable

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """urllib honours *_proxy variables: the probe must talk to our servers directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def silent_server():
    """Accepts TCP connections (the kernel's backlog does) and never answers: a filtering proxy."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/vgg16.h5"
    finally:
        server.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/file.h5":
            assert self.headers["Range"] == "bytes=0-0"  # the probe asks for one byte only
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-0/553467096")
            self.send_header("Content-Length", "1")
            self.end_headers()
            self.wfile.write(b"\x89")
        elif self.path == "/moved.h5":  # a redirect within the host: followed
            self._redirect("/file.h5")
        elif self.path == "/portal.h5":  # a captive portal sends everything to its login page
            self._redirect("http://login.portal.example/?continue=vgg16")
        else:
            self.send_error(404)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _timed(function, *args, **kwargs):
    start = time.monotonic()
    result = function(*args, **kwargs)
    return result, time.monotonic() - start


def test_a_server_that_never_answers_is_not_a_download(silent_server):
    """A TCP connection succeeds here, so the old probe said "can be downloaded"."""
    problem, seconds = _timed(download_problem, silent_server, timeout=1.0)
    assert problem == "timed out after 1 s"
    assert 0.9 < seconds < 1.5
    assert not reachable(silent_server, timeout=0.5)


def test_a_file_that_answers_its_first_byte_can_be_downloaded(http_server):
    problem, seconds = _timed(download_problem, f"{http_server}/file.h5", timeout=3.0)
    assert problem is None and seconds < 1.0
    assert download_problem(f"{http_server}/moved.h5", timeout=3.0) is None


def test_http_errors_and_captive_portals_are_not_downloads(http_server):
    assert download_problem(f"{http_server}/missing.h5", timeout=3.0) == "HTTP 404 Not Found"
    problem, seconds = _timed(download_problem, f"{http_server}/portal.h5", timeout=3.0)
    assert problem == "redirected to login.portal.example (a captive portal or a proxy's login page?)"
    assert seconds < 1.0


def test_a_refused_connection_says_so():
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    problem = download_problem(f"http://127.0.0.1:{port}/file.h5", timeout=3.0)
    assert problem.startswith("cannot connect to 127.0.0.1") and "refused" in problem


def test_dns_failures_are_bounded(monkeypatch):
    """getaddrinfo ignores socket timeouts; a lookup that hangs must not hang the probe."""
    release = threading.Event()

    def hanging_lookup(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    try:
        problem, seconds = _timed(download_problem, "https://weights.example/vgg16.h5", timeout=0.5)
    finally:
        release.set()  # let the abandoned probe thread end
    assert problem == "timed out after 0.5 s" and seconds < 1.0

    def failing_lookup(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", failing_lookup)
    assert download_problem("https://weights.example/vgg16.h5", timeout=3.0) == "cannot look up weights.example"


@pytest.fixture
def vgg16_behind(monkeypatch, tmp_path):
    """VGG16's weights uncached, their URL pointed at a local server."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("GRADCAM_MODEL", raising=False)
    monkeypatch.delenv(vgg16.WEIGHTS_ENV, raising=False)

    def point_at(url: str) -> None:
        monkeypatch.setattr(vgg16, "WEIGHTS_URL", url)

    return point_at


def test_auto_does_not_pick_vgg16_behind_a_silent_proxy(vgg16_behind, silent_server):
    vgg16_behind(silent_server)
    (name, reason), seconds = _timed(choose_model)
    assert name == "efficientnet_lite0"
    assert reason == "VGG16's weights are not cached and cannot be downloaded here (timed out after 3 s)"
    assert seconds < 4.0


def test_explicit_vgg16_behind_a_silent_proxy_fails_fast_naming_the_offline_model(vgg16_behind, silent_server):
    vgg16_behind(silent_server)
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError, match=r"timed out after 3 s\..*load_model\('efficientnet_lite0'\)"):
        load_model("vgg16")
    assert time.monotonic() - start < 4.0


def test_auto_picks_vgg16_when_its_weights_answer(vgg16_behind, http_server):
    vgg16_behind(f"{http_server}/file.h5")
    assert choose_model() == ("vgg16", "its ImageNet weights can be downloaded")
