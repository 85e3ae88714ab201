"""The set-up files agree with each other: pins, Binder, Makefile, CI, README quick start."""

from __future__ import annotations

import importlib
import os
import re
import stat

import yaml

from conftest import REPO


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].split(";", 1)[0].strip()  # an environment marker is not part of the pin
        if "==" in line:
            name, version = line.split("==", 1)
            found[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return found


def requirement_pins() -> dict[str, str]:
    return pins((REPO / "requirements.txt").read_text().splitlines())


def test_environment_yml_parses_and_carries_the_same_pins():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    assert pins(pip_sections[0]) == requirement_pins()


def test_every_requirement_is_pinned_and_the_constraints_agree():
    lines = [
        line
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("==" in line for line in lines), "every runtime requirement must be pinned with =="
    constraints = pins((REPO / "constraints.txt").read_text().splitlines())
    dev = pins((REPO / "requirements-dev.txt").read_text().splitlines())
    for name, version in {**requirement_pins(), **dev}.items():
        assert constraints.get(name) == version, (name, version, constraints.get(name))
    assert "torch" not in constraints, "torch must not become a dependency"
    assert "timm" not in constraints, "timm must not become a dependency"
    assert "opencv-python" not in constraints
    # full tensorflow (GPU, 600 MB more) only where no tensorflow-cpu exists: macOS
    full = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line.startswith("tensorflow==")]
    assert full == ['tensorflow==2.21.0; sys_platform == "darwin"']


def test_binder_uses_the_same_environment_and_a_strict_post_build():
    binder_env = REPO / "binder" / "environment.yml"
    assert binder_env.resolve() == (REPO / "environment.yml").resolve()
    post_build = REPO / "binder" / "postBuild"
    assert os.stat(post_build).st_mode & stat.S_IXUSR, "postBuild must be executable"
    text = post_build.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert "pip install" in text and " -e ." in text


def test_post_build_calls_only_what_exists():
    text = (REPO / "binder" / "postBuild").read_text()
    imports = re.findall(r"from ([\w.]+) import ([\w, ]+);", text)
    assert len(imports) == 3, imports
    for module, names in imports:
        loaded = importlib.import_module(module)
        for name in names.split(","):
            assert callable(getattr(loaded, name.strip())), f"{module}.{name} does not exist"
    # it pre-downloads VGG16's weights and the sample photos, and converts the offline model
    assert "download_weights" in text and "sample_path('cat_dog')" in text and "load_efficientnet_lite0" in text


def test_the_readme_quick_start_is_exactly_the_two_make_commands():
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:bash|sh)?\n(.*?)```", quick_start, flags=re.S)
    lines = [line.strip() for block in commands for line in block.splitlines() if line.strip()]
    assert lines == ["make lab", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make ci" in ci  # a command line, not a comment
    makefile = (REPO / "Makefile").read_text()
    for target in ("lab:", "test:", "test-e2e:", "test-slow:", "test-fuzz:", "test-numeric:", "lint:"):
        assert f"\n{target}" in makefile
    ci_target = re.search(r"^ci: (.*)$", makefile, flags=re.M).group(1).split()
    # CI runs the README's `make test` and, on top, everything it leaves out
    assert ci_target == ["lint", "test", "test-slow", "test-fuzz", "test-numeric", "test-e2e"]
    assert "--nbval " in makefile and "--nbval-lax" not in makefile


def test_macos_gets_tensorflow_and_every_other_system_tensorflow_cpu():
    """TensorFlow publishes no tensorflow-cpu wheel for macOS: the requirements pick by platform."""
    from packaging.requirements import Requirement

    for path in ("requirements.txt", "environment.yml", "binder/environment.yml"):
        lines = [line.strip().lstrip("- ") for line in (REPO / path).read_text().splitlines()]
        chosen = {}
        for platform in ("linux", "win32", "darwin"):
            chosen[platform] = sorted(
                requirement.name
                for line in lines
                if line.startswith("tensorflow")
                for requirement in [Requirement(line)]
                if requirement.marker is None or requirement.marker.evaluate({"sys_platform": platform})
            )
        assert chosen == {"linux": ["tensorflow-cpu"], "win32": ["tensorflow-cpu"], "darwin": ["tensorflow"]}, path
