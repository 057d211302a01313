"""Build the forwarder's Lambda deployment package."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# The forwarder imports only these modules of the project; boto3 and
# Powertools come from the Lambda runtime or are added by `boxoffice deploy`.
FORWARDER_SOURCES = (
    "system/__init__.py",
    "system/errors.py",
    "system/schema.py",
    "system/forwarder/__init__.py",
    "system/forwarder/batch.py",
    "system/forwarder/config.py",
    "system/forwarder/handler.py",
    "system/forwarder/messages.py",
    "system/forwarder/numbering.py",
    "system/forwarder/records.py",
)
# A fixed timestamp makes the zip, and so its hash, depend on content alone.
ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)


def build_forwarder_zip(extra_dirs: tuple[Path, ...] = ()) -> bytes:
    """Return the forwarder's code as a zip that the Lambda Python runtime loads.

    ``extra_dirs`` are site-packages-like folders whose contents are added at
    the zip's root, for dependencies the runtime lacks.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in FORWARDER_SOURCES:
            path = PACKAGE_ROOT / relative
            if path.exists():
                _add(archive, relative, path.read_bytes())
        for folder in extra_dirs:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    _add(
                        archive, path.relative_to(folder).as_posix(), path.read_bytes()
                    )
    return buffer.getvalue()


def code_digest(zip_bytes: bytes) -> str:
    """Return a short content hash, used in the S3 key of a package."""
    return hashlib.sha256(zip_bytes).hexdigest()[:16]


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)
