"""The pages' scripts pass their own unit tests (node's test runner)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from system.web.serve import WEB_DIR

NODE_TIMEOUT_SECONDS = 120


def test_page_scripts_pass_their_unit_tests() -> None:
    node = shutil.which("node")
    installed = (WEB_DIR / "node_modules").is_dir()
    if node is None or not installed:
        if os.environ.get("CI"):
            pytest.fail("CI must have node and system/web/node_modules (make install).")
        pytest.skip("node or system/web/node_modules is missing: run `make install`.")
    result = subprocess.run(
        [node, "--test", "test/"],
        cwd=WEB_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
