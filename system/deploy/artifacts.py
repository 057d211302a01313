"""The code bucket: each build's forwarder package and environment template.

Keys are content hashes, so an upload of the same bytes is a no-op in effect
and a stored build always finds the exact package and template it was
published with.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from botocore.exceptions import ClientError

from system.package import code_digest

logger = logging.getLogger(__name__)


def package_key(package: bytes) -> str:
    """Return the S3 key of a forwarder package."""
    return f"forwarder/{code_digest(package)}.zip"


def template_key(template_body: str) -> str:
    """Return the S3 key of an environment template."""
    digest = hashlib.sha256(template_body.encode()).hexdigest()[:16]
    return f"templates/{digest}.yaml"


def put_artifact(s3: Any, region: str, bucket: str, key: str, body: bytes) -> None:
    """Upload ``body`` to ``bucket``/``key``, creating the bucket if it is missing."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise
        _create_bucket(s3, region, bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    logger.info("Uploaded s3://%s/%s (%d bytes)", bucket, key, len(body))


def get_text(s3: Any, bucket: str, key: str) -> str:
    """Return a stored template's text."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return str(body.decode())


def _create_bucket(s3: Any, region: str, bucket: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    # us-east-1 rejects a location constraint naming itself.
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    logger.info("Created code bucket %s", bucket)
