"""Package the forwarder with its dependencies for the AWS Lambda Python runtime.

The dependencies are installed once per requirement set into a cache folder
with pip's cross-platform options, so the same zip comes out on any machine
and runs on Lambda's python3.12 x86_64 runtime. boto3 is not bundled: the
runtime provides it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from system.deploy.errors import DeployError
from system.package import build_forwarder_zip

logger = logging.getLogger(__name__)

LAMBDA_PLATFORM = "manylinux2014_x86_64"
LAMBDA_PYTHON_VERSION = "3.12"
LAMBDA_IMPLEMENTATION = "cp"
# The same Powertools release the project pins, so tests and Lambda agree.
LAMBDA_REQUIREMENTS = (f"aws-lambda-powertools=={version('aws-lambda-powertools')}",)
BUILD_INFO_FILE = "boxoffice_build.json"
PIP_TIMEOUT_SECONDS = 600
# Installed by pip into the target but useless in a Lambda package.
SKIPPED_TOP_LEVEL = ("bin", "__pycache__")


def cache_root() -> Path:
    """Return the cache folder: ``BOXOFFICE_CACHE_DIR`` or the user's cache."""
    configured = os.environ.get("BOXOFFICE_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "boxoffice"


def dependencies_key(requirements: tuple[str, ...] = LAMBDA_REQUIREMENTS) -> str:
    """Return a short hash of what decides the installed dependencies."""
    spec = {
        "requirements": sorted(requirements),
        "platform": LAMBDA_PLATFORM,
        "python_version": LAMBDA_PYTHON_VERSION,
        "implementation": LAMBDA_IMPLEMENTATION,
    }
    encoded = json.dumps(spec, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def dependencies_dir(
    requirements: tuple[str, ...] = LAMBDA_REQUIREMENTS, root: Path | None = None
) -> Path:
    """Return a folder with ``requirements`` installed for the Lambda runtime.

    The folder is reused while the requirements and target platform stay the
    same. Raises ``DeployError`` when pip fails.
    """
    folder = (root or cache_root()) / "lambda-deps" / dependencies_key(requirements)
    if folder.is_dir():
        logger.debug("Reusing Lambda dependencies in %s", folder)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        _pip_install(requirements, staging)
        for name in SKIPPED_TOP_LEVEL:
            shutil.rmtree(staging / name, ignore_errors=True)
        # A rename is atomic, so a concurrent build finds all or nothing.
        try:
            staging.rename(folder)
        except OSError:
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Installed %s for the Lambda runtime in %s", requirements, folder)
    return folder


def build_package(
    build: int | None = None,
    commit: str | None = None,
    *,
    requirements: tuple[str, ...] = LAMBDA_REQUIREMENTS,
    root: Path | None = None,
) -> bytes:
    """Return the forwarder's zip with its dependencies and the build's number.

    The build number and commit go into ``boxoffice_build.json`` at the root
    of the zip, so each build's package, and so its Lambda version, differs.
    """
    dependencies = dependencies_dir(requirements, root)
    with tempfile.TemporaryDirectory(prefix="boxoffice-build-") as info_dir:
        info = {"build": build, "commit": commit}
        (Path(info_dir) / BUILD_INFO_FILE).write_text(json.dumps(info, sort_keys=True))
        return build_forwarder_zip(extra_dirs=(dependencies, Path(info_dir)))


def _pip_install(requirements: tuple[str, ...], target: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        LAMBDA_PLATFORM,
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--implementation",
        LAMBDA_IMPLEMENTATION,
        "--only-binary=:all:",
        *requirements,
    ]
    try:
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_SECONDS,
        )
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip()[-2000:]
        raise DeployError(
            f"pip could not install {', '.join(requirements)} for the Lambda "
            f"runtime ({LAMBDA_PLATFORM}, Python {LAMBDA_PYTHON_VERSION}): "
            f"{detail} Check access to the package index and retry."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise DeployError(
            f"pip did not finish installing {', '.join(requirements)} within "
            f"{PIP_TIMEOUT_SECONDS} s. Check access to the package index and retry."
        ) from exc
