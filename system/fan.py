"""A fan in plain Python: join the line as a browser does, poll it and buy.

The probe, the tests and the demos use this client. It takes the browser's
path through the funnel. It gets a Cognito identity and writes one
conditional join item with that identity's credentials. It polls its own item
and the sale's counters, and calls the ticketing service's HTTP API once the
item carries a purchase URL.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore import UNSIGNED
from botocore.config import Config

from system import schema
from system.clients import CONNECT_TIMEOUT_SECONDS, RETRY_ATTEMPTS, make_session
from system.errors import FanStateError, TicketingError, TicketingRejectedError
from system.position import Position, position
from system.settings import Settings
from system.stack import StackResources

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 10
# Cognito credentials last an hour; renew them this long before they expire.
CREDENTIALS_RENEW_SECONDS = 300
JOIN_CONDITION = f"attribute_not_exists({schema.FAN_ID})"

_deserializer = TypeDeserializer()
_serializer = TypeSerializer()


@dataclass(frozen=True)
class FanView:
    """One poll: the fan's own item, the sale's counters and the position."""

    fan: dict[str, Any]
    sale: dict[str, Any]
    position: Position

    @property
    def status(self) -> str | None:
        """The fan's status, or ``None`` until the forwarder numbers it."""
        value = self.fan.get(schema.STATUS)
        return str(value) if value is not None else None

    @property
    def purchase_url(self) -> str | None:
        value = self.fan.get(schema.PURCHASE_URL)
        return str(value) if value else None

    @property
    def queue_number(self) -> int | None:
        value = self.fan.get(schema.QUEUE_NUMBER)
        return int(value) if value is not None else None


@dataclass(frozen=True)
class Purchase:
    """The ticketing service's response to an accepted purchase."""

    order_id: str
    quantity: int
    tickets_left: int
    synthetic: bool
    dry_run: bool


class Fan:
    """One fan: a Cognito identity, its queue item and its purchase.

    ``settings`` gives the endpoint and region; the fan's own DynamoDB client
    is signed with the identity's credentials, as a browser's would be.
    ``boto_config`` sets that client's timeouts and retries; ``http`` and
    ``cognito`` may be shared between fans.
    """

    def __init__(
        self,
        settings: Settings,
        resources: StackResources,
        *,
        http: httpx.Client | None = None,
        cognito: Any = None,
        boto_config: Config | None = None,
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.fan_id: str | None = None
        self.sale_id: str | None = None
        self.synthetic = False
        self._boto_config = boto_config or _config()
        self._cognito = cognito or unsigned_cognito(settings, self._boto_config)
        self._http = http or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS)
        self._owns_http = http is None
        self._dynamodb: Any = None
        self._credentials_expire_at = 0.0

    def join(self, sale_id: str, *, synthetic: bool = False) -> bool:
        """Get an identity and write the join item; return whether it was new.

        A second join of the same identity (a refresh, a second tab) fails the
        write's condition and keeps the place: it returns ``False``.
        """
        if self.fan_id is None:
            response = self._cognito.get_id(
                IdentityPoolId=self.resources.identity_pool_id
            )
            self.fan_id = str(response["IdentityId"])
        self.sale_id = sale_id
        self.synthetic = synthetic
        item = {
            schema.FAN_ID: self.fan_id,
            schema.SALE_ID: sale_id,
            schema.CLIENT_TIME: int(time.time() * 1000),
            schema.SYNTHETIC: synthetic,
        }
        dynamodb = self._fan_dynamodb()
        try:
            dynamodb.put_item(
                TableName=self.resources.queue_table,
                Item=_serialize(item),
                ConditionExpression=JOIN_CONDITION,
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            logger.debug("Fan %s already in line; keeping its place", self.fan_id)
            return False
        logger.debug("Fan %s joined sale %s", self.fan_id, sale_id)
        return True

    def track(
        self, fan_id: str, sale_id: str, *, synthetic: bool, dynamodb: Any
    ) -> None:
        """Follow a fan whose item was written some other way, with ``dynamodb``.

        A test that injects a fan past the join has no Cognito identity for
        it, so the fan's reads go through the given client instead.
        """
        self.fan_id = fan_id
        self.sale_id = sale_id
        self.synthetic = synthetic
        self._dynamodb = dynamodb
        self._credentials_expire_at = float("inf")

    def rejoin(self) -> bool:
        """Join again with the same identity, as a reload or a second tab does."""
        if self.sale_id is None:
            raise FanStateError("This fan has not joined a sale; call join() first.")
        return self.join(self.sale_id, synthetic=self.synthetic)

    def poll(self) -> FanView:
        """Read the fan's item and the sale's counters; compute the position."""
        fan_id, sale_id = self._joined()
        dynamodb = self._fan_dynamodb()
        fan = _get(dynamodb, self.resources.queue_table, {schema.FAN_ID: fan_id})
        sale = _get(dynamodb, self.resources.sales_table, {schema.SALE_ID: sale_id})
        return FanView(fan=fan, sale=sale, position=position(fan, sale))

    def claim(self, view: FanView | None = None) -> dict[str, Any]:
        """Open the purchase URL: tell the ticketing service the fan is here."""
        base, token = self._purchase_target(view)
        response = self._post(f"{base}/api/claim", {"token": token})
        body: dict[str, Any] = response.json()
        return body

    def buy(
        self,
        quantity: int = 1,
        *,
        view: FanView | None = None,
        idempotency_key: str | None = None,
    ) -> Purchase:
        """Buy ``quantity`` tickets with the purchase URL's token.

        Raises ``TicketingRejectedError`` when the service rejects it (HTTP 4xx:
        invalid token, window closed, sold out) and ``TicketingError`` when it
        cannot be reached or fails.
        """
        base, token = self._purchase_target(view)
        response = self._post(
            f"{base}/api/purchase",
            {"token": token, "quantity": quantity},
            headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
        )
        body = response.json()
        return Purchase(
            order_id=str(body["order_id"]),
            quantity=int(body["quantity"]),
            tickets_left=int(body["tickets_left"]),
            synthetic=bool(body.get("synthetic", False)),
            dry_run=bool(body.get("dry_run", False)),
        )

    def close(self) -> None:
        """Close the HTTP client when this fan created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Fan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _joined(self) -> tuple[str, str]:
        if self.fan_id is None or self.sale_id is None:
            raise FanStateError("This fan has not joined a sale; call join() first.")
        return self.fan_id, self.sale_id

    def _purchase_target(self, view: FanView | None) -> tuple[str, str]:
        view = view or self.poll()
        url = view.purchase_url
        if url is None:
            raise FanStateError(
                f"Fan {self.fan_id} has no purchase URL yet (status "
                f"{view.status!r}); poll until a window admits it."
            )
        return split_purchase_url(url)

    def _post(
        self,
        url: str,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        fan_id, _ = self._joined()
        try:
            response = self._http.post(
                url, json={**body, "fan_id": fan_id}, headers=headers
            )
        except httpx.HTTPError as exc:
            raise TicketingError(f"POST {_path(url)} failed: {exc!r}") from exc
        if 400 <= response.status_code < 500:
            error, message = _error_of(response)
            raise TicketingRejectedError(response.status_code, error, message)
        if response.status_code != 200:
            raise TicketingError(
                f"POST {_path(url)} returned HTTP {response.status_code}: "
                f"{response.text[:200]!r}"
            )
        return response

    def _fan_dynamodb(self) -> Any:
        """Return a DynamoDB client signed with the identity's credentials."""
        if self._dynamodb is not None and time.time() < self._credentials_expire_at:
            return self._dynamodb
        fan_id = self.fan_id
        if fan_id is None:
            raise FanStateError("This fan has no identity yet; call join() first.")
        response = self._cognito.get_credentials_for_identity(IdentityId=fan_id)
        credentials = response["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.settings.region,
        )
        self._dynamodb = session.client(
            "dynamodb",
            endpoint_url=self.settings.endpoint_url,
            config=self._boto_config,
        )
        expiration = credentials.get("Expiration")
        expires_at = expiration.timestamp() if expiration else time.time() + 3600
        self._credentials_expire_at = expires_at - CREDENTIALS_RENEW_SECONDS
        return self._dynamodb


def split_purchase_url(url: str) -> tuple[str, str]:
    """Return the ticketing service's base URL and the token of a purchase URL."""
    parts = urlsplit(url)
    tokens = parse_qs(parts.query).get("token")
    if not tokens:
        raise FanStateError(f"Purchase URL {_path(url)!r} carries no token.")
    return f"{parts.scheme}://{parts.netloc}", tokens[0]


def unsigned_cognito(settings: Settings, config: Config | None = None) -> Any:
    """Return a Cognito Identity client that signs nothing, as a browser's.

    GetId and GetCredentialsForIdentity of an unauthenticated identity need
    no AWS keys, and one such client may serve many fans.
    """
    config = config or _config()
    config = config.merge(Config(signature_version=UNSIGNED))
    return make_session(settings).client(
        "cognito-identity", endpoint_url=settings.endpoint_url, config=config
    )


def _config() -> Config:
    return Config(
        retries={"max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


def _get(dynamodb: Any, table: str, key: dict[str, str]) -> dict[str, Any]:
    response = dynamodb.get_item(
        TableName=table, Key=_serialize(key), ConsistentRead=True
    )
    return {
        name: _plain(_deserializer.deserialize(value))
        for name, value in response.get("Item", {}).items()
    }


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "unknown", response.text[:200]
    if not isinstance(body, dict):
        return "unknown", str(body)[:200]
    return str(body.get("error", "unknown")), str(body.get("message", ""))


def _path(url: str) -> str:
    # The query string carries the token, which is never logged or shown.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
