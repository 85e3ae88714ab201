"""The class-discrimination notebook in a real browser: JupyterLab + Debian's Chromium.

Headless kernel tests cannot see what the front end renders. This test starts
JupyterLab on 127.0.0.1 with its own token, opens notebook 05 in Chromium
(Playwright, ``executable_path=/usr/bin/chromium``: Playwright cannot download
browsers here), runs every cell, checks that no error output appears, then
moves the class slider and the alpha slider with the keyboard and checks that
the rendered picture changes. Screenshots of each state are saved as test
artifacts in ``artifacts/e2e/``; the server is shut down even on failure.

Run with ``make test-e2e`` (needs ``apt-get install chromium``).
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "05_class_discrimination.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts" / "e2e"

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of the notebook (so autosave never touches the repo)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `apt-get install chromium` (see README).")
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    # Render every cell (JupyterLab 4 otherwise only puts the cells in view into the page).
    settings = root / "settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    port, token = _free_port(), secrets.token_hex(16)
    log = open(root / "jupyter.log", "w")  # noqa: SIM115 - open while the server runs, closed in teardown
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={root / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start; log: {root / 'jupyter.log'}")
            time.sleep(0.5)
        yield base, token
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _difference(a: bytes, b: bytes) -> float:
    """Mean absolute pixel difference (0-255) of two screenshots of the same element."""
    pa, pb = _pixels(a), _pixels(b)
    h, w = min(pa.shape[0], pb.shape[0]), min(pa.shape[1], pb.shape[1])
    return float(np.abs(pa[:h, :w] - pb[:h, :w]).mean())


def _kernel_states(base: str, token: str) -> list[str]:
    with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5) as response:
        return [kernel["execution_state"] for kernel in json.load(response)]


def _wait_for_kernel(base: str, token: str, want_busy: bool, timeout: float) -> bool:
    """Poll the server's REST API until the kernel is busy (or has been idle for 5 s in a row)."""
    deadline, idle_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        states = _kernel_states(base, token)
        busy = any(state != "idle" for state in states)
        if want_busy and busy:
            return True
        if not want_busy and states and not busy:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 5:
                return True
        elif not want_busy:
            idle_since = None
        time.sleep(0.25)
    return False


def _accept_dialogs(page) -> None:
    """JupyterLab may ask which kernel to use: take the one it proposes."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        dialog.locator("button.jp-mod-accept").first.click()
        page.wait_for_timeout(500)


def _shot(element, name: str) -> bytes:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return element.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_widgets_respond_in_a_real_browser(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    shots = ", ".join(str(ARTIFACTS / f"{n}.png") for n in ("before", "after_class", "after_alpha"))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            assert _wait_for_kernel(base, token, want_busy=False, timeout=120), "the kernel did not start"
            _accept_dialogs(page)

            # Run > Run All Cells, and make sure it really started
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()
            _accept_dialogs(page)
            if not _wait_for_kernel(base, token, want_busy=True, timeout=60):
                _shot(page, "not_started")
                pytest.fail(f"Run All Cells did not start the kernel; see {ARTIFACTS / 'not_started.png'}")
            if not _wait_for_kernel(base, token, want_busy=False, timeout=300):
                _shot(page, "timeout")
                pytest.fail(f"the notebook did not finish within 5 minutes; see {ARTIFACTS / 'timeout.png'}")

            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            ).all_inner_texts()
            assert not errors, f"error output in the browser: {errors[:2]}"
            assert page.locator(".jp-OutputArea-output:has-text('Traceback')").count() == 0

            explorer = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-image)").last
            try:
                explorer.wait_for(state="attached", timeout=60_000)
            except Exception:
                _shot(page, "no_widget")
                raise AssertionError(
                    f"the explorer widget was not rendered; see {ARTIFACTS / 'no_widget.png'}"
                ) from None
            explorer.scroll_into_view_if_needed()
            picture = explorer.locator("img.widget-image, .widget-image img, .widget-image").first
            picture.wait_for(state="visible", timeout=60_000)
            before = _shot(picture, "before")

            class_slider = explorer.locator(".widget-slider:has-text('Class rank') .noUi-handle").first
            class_slider.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(1500)
            after_class = _shot(picture, "after_class")
            assert _difference(before, after_class) > 2.0, f"the class slider did not change the picture; see {shots}"

            alpha_slider = explorer.locator(".widget-slider:has-text('Alpha') .noUi-handle").first
            alpha_slider.focus()
            for _ in range(6):
                page.keyboard.press("ArrowRight")
            page.wait_for_timeout(1500)
            after_alpha = _shot(picture, "after_alpha")
            assert _difference(after_class, after_alpha) > 2.0, (
                f"the alpha slider did not change the picture; see {shots}"
            )
        finally:
            browser.close()
