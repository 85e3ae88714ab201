"""`make lab` serves JupyterLab on the notebooks (checked through its /api endpoint)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import REPO


@pytest.mark.slow
def test_make_lab_serves_jupyterlab_on_the_notebooks():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(8)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"
    if os.geteuid() == 0:
        args += " --allow-root"
    server = subprocess.Popen(
        ["make", "-s", "lab", f"LAB_ARGS={args}"],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api?token={token}", timeout=2) as r:
                    version = json.load(r)["version"]
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "JupyterLab did not start"
                time.sleep(0.5)
        assert version.split(".")[0] == "2"  # jupyter_server's REST API answers
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5) as r:
            names = {item["name"] for item in json.load(r)["content"]}
        assert any(name.startswith("01_") for name in names), names  # served from notebooks/
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
