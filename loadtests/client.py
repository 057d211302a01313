"""The one AWS and HTTP client of each Locust process.

Botocore is set up once per process: it resolves the endpoints and
serializes the request bodies from the service models. Each request is
signed with SigV4 using the fan's own Cognito credentials (``sigv4``) and
goes out over pooled gevent connections, one bounded pool per origin. A boto3
client call costs about 0.7 CPU seconds per 1,000 calls inside Locust,
against about 0.19 for the same request sent raw (measured on the 2-core
machine of docs/benchmarks.md), so the high-level client is never called per
request.

Import this module only after gevent has patched the standard library, which
Locust does when it starts.

Latency is measured from when a request was due, not when it was sent: a fan
whose poll waits for a free connection is kept waiting by the stack, and the
percentiles show it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Collection
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import botocore.session
from botocore.credentials import ReadOnlyCredentials
from botocore.serialize import create_serializer
from geventhttpclient import HTTPClient

from loadtests.plan import Targets
from loadtests.sigv4 import Signer

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
NETWORK_TIMEOUT_SECONDS = 30.0
# Like the AWS SDKs' standard retry mode: three attempts in all, with full
# jitter, on throttling, server errors and broken connections.
MAX_ATTEMPTS = 3
RETRY_BASE_SECONDS = 0.1
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
    }
)
# Status of a request that got no HTTP response at all.
NO_RESPONSE = 0
CONNECTION_ERROR = "connection_error"


class Reply(NamedTuple):
    """A response: HTTP status, parsed JSON body and error code."""

    status: int
    data: Any
    error: str | None  # AWS error type, the service's "error" field, or None
    finished_at: float  # epoch seconds

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class RequestFailure(Exception):
    """A response Locust counts as failed: unexpected status or error code."""


class Origin(NamedTuple):
    """Scheme, host and port of a URL, the key of one connection pool."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname or "", port)

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


class AwsService(NamedTuple):
    """One AWS service's endpoint, serializer and signing name."""

    url: str
    origin: Origin
    path: str
    signing_name: str
    model: Any
    serializer: Any
    signer: Signer


class StackClient:
    """Build, sign and send the fans' requests; report each one to Locust."""

    def __init__(
        self,
        targets: Targets,
        connections: int,
        fire: Any,
        rng: random.Random | None = None,
    ) -> None:
        self.targets = targets
        self.connections = connections
        self._fire = fire  # Locust's environment.events.request.fire
        self._rng = rng or random.Random()
        self._pools: dict[Origin, HTTPClient] = {}
        session = botocore.session.get_session()
        self.dynamodb = _service(session, "dynamodb", targets)
        self.cognito = _service(session, "cognito-identity", targets)

    def serialize(self, service: AwsService, operation: str, params: Any) -> bytes:
        """Return the JSON body botocore builds for ``operation``."""
        request = service.serializer.serialize_to_request(
            params, service.model.operation_model(operation)
        )
        body: bytes = request["body"]
        return body

    def call(
        self,
        service: AwsService,
        operation: str,
        body: bytes,
        *,
        name: str,
        due: float,
        credentials: ReadOnlyCredentials | None = None,
        expect_errors: Collection[str] = (),
    ) -> Reply:
        """Send one AWS JSON-protocol request, with retries, and return the reply.

        ``expect_errors`` are error codes expected here, such as
        ConditionalCheckFailedException for a second join. Locust counts them
        as successes.
        """
        target = service.model.metadata["targetPrefix"] + "." + operation
        version = service.model.metadata["jsonVersion"]
        attempt_due = due
        for attempt in range(1, MAX_ATTEMPTS + 1):
            headers = {
                "Host": service.origin.netloc,
                "X-Amz-Target": target,
                "Content-Type": f"application/x-amz-json-{version}",
            }
            if credentials is not None:
                headers = service.signer.sign(
                    body, headers, credentials, path=service.path
                )
            reply = self._send(service.origin, "POST", service.path, body, headers)
            reply = reply._replace(error=_aws_error(reply))
            retry = attempt < MAX_ATTEMPTS and _retryable(reply)
            self._report("aws", name, attempt_due, reply, expect_errors, retrying=retry)
            if not retry:
                return reply
            backoff = self._rng.uniform(0, RETRY_BASE_SECONDS * 2**attempt)
            time.sleep(backoff)
            attempt_due = time.time()
        raise AssertionError("unreachable")  # pragma: no cover

    def http(
        self,
        method: str,
        url: str,
        *,
        name: str,
        due: float,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        expect_statuses: Collection[int] = (),
    ) -> Reply:
        """Send one request to the ticketing service and return the reply.

        Statuses in ``expect_statuses`` count as successes besides 2xx, such
        as the 403 that rejects a bot or the 409 that tells a late buyer the
        sale sold out.
        """
        origin = Origin.of(url)
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        body = b"" if json_body is None else json.dumps(json_body).encode()
        sent_headers = {"Host": origin.netloc, **(headers or {})}
        if json_body is not None:
            sent_headers["Content-Type"] = "application/json"
        reply = self._send(origin, method, path, body, sent_headers)
        if reply.status and reply.error is None and isinstance(reply.data, dict):
            error = reply.data.get("error")
            reply = reply._replace(error=str(error) if error else None)
        self._report("http", name, due, reply, (), expect_statuses=expect_statuses)
        return reply

    def forget(self, credentials: ReadOnlyCredentials | None) -> None:
        """Drop what was cached for a fan's credentials once it is done."""
        if credentials is not None:
            self.dynamodb.signer.forget(credentials.secret_key)

    def close(self) -> None:
        """Close every pooled connection."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _send(
        self, origin: Origin, method: str, path: str, body: bytes, headers: Any
    ) -> Reply:
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pool(origin)
        try:
            with pool.request(method, path, body=body, headers=headers) as response:
                status = response.status_code
                raw = response.read()
        except (OSError, ValueError) as exc:
            # Refused, reset, timed out or closed early (geventhttpclient's
            # HTTPConnectionClosed is an OSError too).
            logger.debug("Request to %s failed: %s", origin.netloc, exc)
            return Reply(NO_RESPONSE, None, CONNECTION_ERROR, time.time())
        finished = time.time()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None  # an HTML page, or a truncated body
        return Reply(status, data, None, finished)

    def _pool(self, origin: Origin) -> HTTPClient:
        pool = HTTPClient(
            origin.host,
            port=origin.port,
            ssl=origin.scheme == "https",
            concurrency=self.connections,
            connection_timeout=CONNECT_TIMEOUT_SECONDS,
            network_timeout=NETWORK_TIMEOUT_SECONDS,
        )
        self._pools[origin] = pool
        return pool

    def _report(
        self,
        request_type: str,
        name: str,
        due: float,
        reply: Reply,
        expect_errors: Collection[str],
        *,
        retrying: bool = False,
        expect_statuses: Collection[int] = (),
    ) -> None:
        exception: Exception | None = None
        if reply.status == NO_RESPONSE:
            exception = RequestFailure(CONNECTION_ERROR)
        elif not (
            reply.ok or reply.status in expect_statuses or reply.error in expect_errors
        ):
            detail = f" {reply.error}" if reply.error else ""
            exception = RequestFailure(f"HTTP {reply.status}{detail}")
        if retrying and exception is not None:
            exception = RequestFailure(f"{exception} (retried)")
        self._fire(
            request_type=request_type,
            name=name,
            response_time=(reply.finished_at - due) * 1000.0,
            response_length=0,
            exception=exception,
            context=None,
        )


def _service(session: Any, name: str, targets: Targets) -> AwsService:
    # Creating the client resolves the endpoint from botocore's rules for the
    # region, or takes the emulator's URL; it is never used to send.
    client = session.create_client(
        name,
        region_name=targets.region,
        endpoint_url=targets.endpoint_url,
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    )
    model = client.meta.service_model
    url = client.meta.endpoint_url.rstrip("/") + "/"
    return AwsService(
        url=url,
        origin=Origin.of(url),
        path=urlsplit(url).path or "/",
        signing_name=model.signing_name,
        model=model,
        serializer=create_serializer(model.metadata["protocol"]),
        signer=Signer(model.signing_name, targets.region),
    )


def _aws_error(reply: Reply) -> str | None:
    if reply.status == NO_RESPONSE:
        return CONNECTION_ERROR
    if reply.ok or not isinstance(reply.data, dict):
        return None if reply.ok else f"HTTP{reply.status}"
    kind = str(reply.data.get("__type", f"HTTP{reply.status}"))
    return kind.rsplit("#", 1)[-1]


def _retryable(reply: Reply) -> bool:
    return (
        reply.status == NO_RESPONSE
        or reply.status >= 500
        or reply.error in THROTTLING_CODES
    )


def credentials_from(response: dict[str, Any]) -> ReadOnlyCredentials:
    """Return signing credentials from a GetCredentialsForIdentity reply."""
    values = response["Credentials"]
    return ReadOnlyCredentials(
        values["AccessKeyId"], values["SecretKey"], values["SessionToken"]
    )
