"""A minimal AWS JSON-protocol client over one keep-alive HTTP connection.

A boto3 client spent about 1.0 ms of CPU per PutItem on the 2-core machine
of docs/benchmarks.md, so a few boto3 threads fill a core before MiniStack
does. This client sends the same JSON bodies with a fixed, unsigned
``Authorization`` header for about 0.2 ms of CPU per call. MiniStack routes
a request by its ``X-Amz-Target`` header and checks signatures only when
started with ``AUTH=true`` (MiniStack 1.5.33), so this client works against
the embedded stack and never against AWS.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 30
# (X-Amz-Target prefix, content type, signing name) of each service used here.
SERVICES = {
    "dynamodb": ("DynamoDB_20120810", "application/x-amz-json-1.0", "dynamodb"),
    "cognito-identity": (
        "AWSCognitoIdentityService",
        "application/x-amz-json-1.1",
        "cognito-identity",
    ),
    "sqs": ("AmazonSQS", "application/x-amz-json-1.0", "sqs"),
}


class AwsJsonError(RuntimeError):
    """An emulator call returned an error status or failed to connect."""

    def __init__(self, operation: str, status: int, error_type: str, message: str):
        super().__init__(
            f"{operation} failed with HTTP {status} {error_type}: {message}"
        )
        self.status = status
        self.error_type = error_type


class AwsJsonClient:
    """Calls one AWS service of an emulator through a single connection.

    Not thread-safe: give each thread its own client.
    """

    def __init__(self, endpoint_url: str, service: str, region: str = "us-east-1"):
        parts = urlsplit(endpoint_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(
                f"Endpoint URL {endpoint_url!r} needs a host and a port, "
                "such as http://127.0.0.1:4566."
            )
        self._host = parts.hostname
        self._port = parts.port
        prefix, content_type, signing_name = SERVICES[service]
        self._prefix = prefix
        self._headers = {
            "Content-Type": content_type,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=test/20260101/{region}/"
                f"{signing_name}/aws4_request, SignedHeaders=host, Signature=0"
            ),
        }
        self._connection: http.client.HTTPConnection | None = None

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its decoded JSON response.

        Raises ``AwsJsonError`` on an error status. A connection the server
        closed is opened again once, as a keep-alive client would.
        """
        body = json.dumps(payload).encode()
        headers = dict(self._headers)
        headers["X-Amz-Target"] = f"{self._prefix}.{operation}"
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request("POST", "/", body, headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise AwsJsonError(
                        operation, 0, type(exc).__name__, str(exc)
                    ) from exc
                continue
            if response.status >= 400:
                raise _error(operation, response.status, data)
            decoded: dict[str, Any] = json.loads(data) if data else {}
            return decoded
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection; the next call opens a new one."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self._host, self._port, timeout=TIMEOUT_SECONDS
            )
        return self._connection


def _error(operation: str, status: int, data: bytes) -> AwsJsonError:
    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error_type = str(body.get("__type", "")).rpartition("#")[2] or "UnknownError"
    message = str(body.get("message") or body.get("Message") or data[:200])
    return AwsJsonError(operation, status, error_type, message)
