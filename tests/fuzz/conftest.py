"""Fuzz tests: register their marker and keep Hypothesis' files out of the working tree."""

import tempfile
from pathlib import Path


def pytest_configure(config):
    # --strict-markers refuses unregistered markers.
    config.addinivalue_line("markers", "fuzz: Hypothesis fuzz tests of untrusted-input readers (seconds, not minutes)")
    # Hypothesis caches constants under ./.hypothesis even with database=None; the examples are derandomized,
    # so nothing there is worth keeping in the checkout.
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "hypothesis-gradcam-fuzz")
