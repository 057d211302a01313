"""Fans: light state machines that speak to the stack as the browser does.

A fan gets a Cognito identity (GetId, GetCredentialsForIdentity) and joins
with a conditional PutItem on its own queue item. It polls its item and the
sale's counters at jittered intervals that grow with its estimated wait.
When its turn comes it opens its purchase URL, claims the window and buys.
Between two steps a fan is only an entry in its crowd's timer heap, and no
greenlet waits for it.

Each step function takes the crowd, the fan and the time the step was due,
and either schedules the fan's next step or finishes the fan with an outcome.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from botocore.credentials import ReadOnlyCredentials

from loadtests import series
from loadtests.arrivals import GUESS_URL, LEAVE_WAITING, NEVER_OPEN, Arrival
from loadtests.client import Reply, credentials_from
from loadtests.plan import ABANDONER, BOT, REFRESHER, SECOND_TAB
from system import schema
from system.position import next_poll_seconds, position

if TYPE_CHECKING:
    from loadtests.crowd import Crowd

# Outcomes: how a fan's visit ended.
PURCHASED = "purchased"
SOLD_OUT = "sold_out"  # told sold out, while waiting or at the window
LEFT_WAITING = "left_waiting"  # an abandoner who stopped polling
LEFT_AT_WINDOW = "left_at_window"  # an abandoner who never opened its URL
WINDOW_CLOSED = "window_closed"  # admitted, but the purchase was turned down
EXPIRED = "expired"  # the stack marked the fan expired
JOIN_FAILED = "join_failed"
PURCHASE_FAILED = "purchase_failed"
UNRESOLVED = "unresolved"  # still waiting when the run ended
BOT_DENIED = "bot_denied"
BOT_TICKET = "bot_ticket"
BOT_IDLE = "bot_idle"  # found no URL to guess at or token to replay
# Outcomes that mean the fan was told where it stands.
RESOLVED = frozenset({PURCHASED, SOLD_OUT, WINDOW_CLOSED, EXPIRED})

# Step kinds in the crowd's timer heap.
ARRIVE, POLL, REFRESH, PURCHASE, BOT_TRY = range(5)

BOT_ATTEMPTS = 3
BOT_RETRY_SECONDS = 2.0
BOT_WAIT_ATTEMPTS = 30  # waits for a URL or token before a bot gives up
PURCHASE_ATTEMPTS = 3
# Statuses that reject a bot, as they should.
BOT_EXPECTED_STATUSES = (400, 401, 403, 404, 409, 422)
TOKEN_ISSUER = "boxoffice-windows"


class Fan:
    """One fan's state between steps; slots keep a waiting fan small."""

    __slots__ = (
        "admitted_seen_at",
        "arrival",
        "arrived_at",
        "bot_tries",
        "bought",
        "buy_ms",
        "credentials",
        "double_buy",
        "due_at",
        "error",
        "fan_id",
        "finished_at",
        "item_body",
        "join_ms",
        "joined_at",
        "number_before_refresh",
        "numbered_seen_at",
        "outcome",
        "place_kept",
        "poll_requests",
        "polls",
        "purchase_url",
        "quantity",
        "queue_number",
        "refreshed",
    )

    def __init__(self, arrival: Arrival, due_at: float) -> None:
        self.arrival = arrival
        self.due_at = due_at
        self.arrived_at = 0.0
        self.fan_id: str | None = None
        self.credentials: ReadOnlyCredentials | None = None
        self.item_body: bytes | None = None
        self.joined_at: float | None = None
        self.join_ms: float | None = None
        self.queue_number: int | None = None
        self.number_before_refresh: int | None = None
        self.numbered_seen_at: float | None = None
        self.admitted_seen_at: float | None = None
        self.finished_at: float | None = None
        self.purchase_url: str | None = None
        self.quantity = arrival.tickets
        self.bought = 0
        self.buy_ms: float | None = None
        self.polls = 0
        self.poll_requests = 0
        self.bot_tries = 0
        self.refreshed = False
        self.place_kept: bool | None = None
        self.double_buy = False
        self.outcome: str | None = None
        self.error: str | None = None

    @property
    def waiting(self) -> bool:
        """Whether the fan has joined and is waiting for its turn."""
        return (
            self.joined_at is not None
            and self.admitted_seen_at is None
            and self.outcome is None
        )

    def record(self) -> dict[str, Any]:
        """Return what the measures need about this fan, as JSON data."""
        return {
            "arrival_id": self.arrival.arrival_id,
            "behaviour": self.arrival.behaviour,
            "variant": self.arrival.variant,
            "fan_id": self.fan_id,
            "due_at": self.due_at,
            "arrived_at": self.arrived_at,
            "joined_at": self.joined_at,
            "join_ms": self.join_ms,
            "queue_number": self.queue_number,
            "numbered_seen_at": self.numbered_seen_at,
            "admitted_seen_at": self.admitted_seen_at,
            "finished_at": self.finished_at,
            "tickets": self.arrival.tickets,
            "bought": self.bought,
            "buy_ms": self.buy_ms,
            "polls": self.polls,
            "poll_requests": self.poll_requests,
            "place_kept": self.place_kept,
            "double_buy": self.double_buy,
            "outcome": self.outcome,
            "error": self.error,
        }


def arrive(crowd: Crowd, fan: Fan, due: float) -> None:
    """Get an identity and credentials, join the line, and plan the first poll."""
    fan.arrived_at = time.time()
    crowd.count(series.ARRIVALS, fan.arrived_at)
    if fan.arrival.behaviour == BOT:
        bot_try(crowd, fan, due)
        return
    identity = crowd.client.call(
        crowd.client.cognito,
        "GetId",
        crowd.get_id_body,
        name="get_id",
        due=due,
    )
    if not identity.ok:
        finish(crowd, fan, JOIN_FAILED, identity.error)
        return
    fan.fan_id = str(identity.data["IdentityId"])
    if not _get_credentials(crowd, fan, identity.finished_at):
        finish(crowd, fan, JOIN_FAILED, fan.error)
        return
    joined = _put_join_item(crowd, fan, "join", time.time())
    if not (joined.ok or joined.error == "ConditionalCheckFailedException"):
        finish(crowd, fan, JOIN_FAILED, joined.error)
        return
    fan.joined_at = joined.finished_at
    fan.join_ms = (joined.finished_at - due) * 1000.0
    crowd.joined(fan)
    fan.item_body = crowd.client.serialize(
        crowd.client.dynamodb,
        "GetItem",
        {"TableName": crowd.plan.targets.queue_table, "Key": _key(fan.fan_id)},
    )
    if fan.arrival.behaviour == SECOND_TAB:
        # The second tab of the same browser joins again with the same
        # identity; the conditional write keeps the first item.
        _put_join_item(crowd, fan, "rejoin", time.time())
    crowd.schedule(fan.joined_at + _first_poll_delay(crowd), fan, POLL)


def poll(crowd: Crowd, fan: Fan, due: float) -> None:
    """Read the fan's item and the sale's counters, and act on the position."""
    if crowd.past_deadline(due):
        finish(crowd, fan, UNRESOLVED)
        return
    tabs = 2 if fan.arrival.behaviour == SECOND_TAB else 1
    replies: tuple[Reply, Reply] | None = None
    start = due
    for _ in range(tabs):
        replies = _read_position(crowd, fan, start)
        start = time.time()
    assert replies is not None
    item_reply, sale_reply = replies
    fan.polls += 1
    now = time.time()
    if not (item_reply.ok and sale_reply.ok):
        fan.error = item_reply.error or sale_reply.error
        crowd.schedule(now + _poll_interval(crowd, None), fan, POLL)
        return
    item = item_reply.data.get("Item", {})
    sale = sale_reply.data.get("Item", {})
    where = position(item, sale)
    _note_number(crowd, fan, where.queue_number, now)
    if where.my_turn and where.purchase_url:
        _admitted(crowd, fan, where.purchase_url, now)
        return
    if where.sold_out:
        finish(crowd, fan, SOLD_OUT)
        return
    if where.status in (schema.EXPIRED, schema.PURCHASED):
        finish(crowd, fan, EXPIRED if where.status == schema.EXPIRED else PURCHASED)
        return
    if where.queue_number is not None and where.people_ahead is not None:
        crowd.sample_position(now, where.queue_number, where.people_ahead)
    if _leaves_now(fan):
        finish(crowd, fan, LEFT_WAITING)
        return
    if (
        fan.arrival.behaviour == REFRESHER
        and fan.polls == fan.arrival.leave_after_polls
    ):
        crowd.schedule(now, fan, REFRESH)
        return
    wait = where.estimated_wait_seconds
    crowd.schedule(now + _poll_interval(crowd, wait), fan, POLL)


def refresh(crowd: Crowd, fan: Fan, due: float) -> None:
    """Reload the page: new credentials for the same identity, join again, poll."""
    fan.number_before_refresh = fan.queue_number
    fan.refreshed = True
    crowd.client.forget(fan.credentials)
    if _get_credentials(crowd, fan, due):
        rejoined = _put_join_item(crowd, fan, "rejoin", time.time())
        if rejoined.ok:
            fan.place_kept = False  # the item was gone: a second place in line
    poll(crowd, fan, time.time())


def purchase(crowd: Crowd, fan: Fan, due: float) -> None:
    """Buy the fan's tickets, fewer if fewer are left, once per token."""
    assert fan.purchase_url is not None and fan.fan_id is not None
    base, token = _split_purchase_url(fan.purchase_url)
    key = secrets.token_hex(8)
    failures = 0
    # Bounded: each pass either ends the visit, lowers the quantity (at most
    # four tickets) or counts a failure (at most PURCHASE_ATTEMPTS).
    while True:
        reply = crowd.client.http(
            "POST",
            base + "/api/purchase",
            name="buy",
            due=due,
            json_body={"token": token, "fan_id": fan.fan_id, "quantity": fan.quantity},
            headers={"Idempotency-Key": key},
            expect_statuses=(409,),
        )
        fan.buy_ms = (reply.finished_at - due) * 1000.0
        due = time.time()
        if reply.ok:
            _bought(crowd, fan, int(reply.data.get("quantity", fan.quantity)), token)
            return
        if reply.error == "not_enough_tickets":
            left = reply.data.get("tickets_left")
            fan.quantity = min(fan.quantity - 1, fan.quantity if left is None else left)
            if fan.quantity >= 1:
                key = secrets.token_hex(8)  # a smaller order is a new request
                continue
        if reply.status == 409:
            finish(crowd, fan, SOLD_OUT, reply.error)
            return
        if 400 <= reply.status < 500:
            finish(crowd, fan, WINDOW_CLOSED, reply.error)
            return
        failures += 1
        if failures >= PURCHASE_ATTEMPTS:
            finish(crowd, fan, PURCHASE_FAILED, reply.error)
            return
        # No response or a server error: retry with the same key, so a
        # purchase that did go through is returned instead of made twice.
        time.sleep(crowd.rng.uniform(0.1, 0.5))
        due = time.time()


def bot_try(crowd: Crowd, fan: Fan, due: float) -> None:
    """Try to buy without queueing: a guessed URL or another fan's used token."""
    if crowd.past_deadline(due):
        finish(crowd, fan, BOT_DENIED if fan.bot_tries else BOT_IDLE)
        return
    if fan.fan_id is None:
        identity = crowd.client.call(
            crowd.client.cognito, "GetId", crowd.get_id_body, name="get_id", due=due
        )
        if not identity.ok:
            crowd.schedule(time.time() + BOT_RETRY_SECONDS, fan, BOT_TRY)
            return
        fan.fan_id = str(identity.data["IdentityId"])
        due = time.time()
    attempt = _bot_attempt(crowd, fan)
    if attempt is None:
        fan.polls += 1  # counts waits for something to attack
        if fan.polls >= BOT_WAIT_ATTEMPTS:
            finish(crowd, fan, BOT_IDLE)
        else:
            crowd.schedule(time.time() + BOT_RETRY_SECONDS, fan, BOT_TRY)
        return
    base, token, presented_fan = attempt
    crowd.client.http(
        "GET",
        f"{base}/purchase?token={token}",
        name="bot_page",
        due=due,
        expect_statuses=BOT_EXPECTED_STATUSES,
    )
    reply = crowd.client.http(
        "POST",
        base + "/api/purchase",
        name="bot_buy",
        due=time.time(),
        json_body={"token": token, "fan_id": presented_fan, "quantity": 4},
        headers={"Idempotency-Key": secrets.token_hex(8)},
        expect_statuses=BOT_EXPECTED_STATUSES,
    )
    fan.bot_tries += 1
    fan.error = reply.error
    if reply.ok:
        fan.bought += int(reply.data.get("quantity", 0))
        finish(crowd, fan, BOT_TICKET)
        return
    if fan.bot_tries >= BOT_ATTEMPTS:
        finish(crowd, fan, BOT_DENIED)
        return
    crowd.schedule(time.time() + crowd.rng.uniform(0.5, 1.5), fan, BOT_TRY)


def finish(crowd: Crowd, fan: Fan, outcome: str, error: str | None = None) -> None:
    """End the fan's visit with ``outcome``."""
    if fan.outcome is not None:
        return
    was_waiting = fan.waiting
    fan.outcome = outcome
    if error:
        fan.error = error
    fan.finished_at = time.time()
    crowd.client.forget(fan.credentials)
    fan.credentials = None
    crowd.finished(fan, was_waiting)


def _admitted(crowd: Crowd, fan: Fan, url: str, now: float) -> None:
    fan.admitted_seen_at = now
    fan.purchase_url = url
    crowd.admitted(fan)
    if fan.arrival.behaviour == ABANDONER and fan.arrival.variant == NEVER_OPEN:
        finish(crowd, fan, LEFT_AT_WINDOW)
        return
    base, token = _split_purchase_url(url)
    if crowd.ticketing_url is None:
        crowd.ticketing_url = base  # bots learn where to aim from real URLs
    page = crowd.client.http("GET", url, name="page", due=now)
    if page.status in (403, 404, 409):
        finish(crowd, fan, WINDOW_CLOSED, page.error or f"HTTP{page.status}")
        return
    crowd.client.http(
        "POST",
        base + "/api/claim",
        name="claim",
        due=time.time(),
        json_body={"token": token, "fan_id": fan.fan_id},
    )
    think = crowd.plan.checkout_seconds * crowd.rng.uniform(0.5, 1.5)
    crowd.schedule(time.time() + think, fan, PURCHASE)


def _bought(crowd: Crowd, fan: Fan, quantity: int, token: str) -> None:
    fan.bought = quantity
    assert fan.fan_id is not None
    crowd.used_tokens.append((token, fan.fan_id))
    if fan.arrival.behaviour == SECOND_TAB:
        # The other tab presses buy too, with its own idempotency key.
        base, _ = _split_purchase_url(fan.purchase_url or "")
        again = crowd.client.http(
            "POST",
            base + "/api/purchase",
            name="buy_second_tab",
            due=time.time(),
            json_body={"token": token, "fan_id": fan.fan_id, "quantity": quantity},
            headers={"Idempotency-Key": secrets.token_hex(8)},
            expect_statuses=(403, 409),
        )
        fan.double_buy = again.ok
    finish(crowd, fan, PURCHASED)


def _bot_attempt(crowd: Crowd, fan: Fan) -> tuple[str, str, str] | None:
    assert fan.fan_id is not None
    if fan.arrival.variant != GUESS_URL and crowd.used_tokens:
        token, owner = crowd.rng.choice(list(crowd.used_tokens))
        # Present it as itself, then as the fan it was issued to.
        presented = fan.fan_id if fan.bot_tries % 2 == 0 else owner
        base = crowd.ticketing_url
        if base is None:
            return None
        return base, token, presented
    if crowd.ticketing_url is None:
        return None
    return crowd.ticketing_url, _forged_token(crowd, fan.fan_id), fan.fan_id


def _forged_token(crowd: Crowd, fan_id: str) -> str:
    """Return a token shaped like a real one but signed with a guessed key."""

    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = part({"alg": "HS256", "typ": "JWT"})
    payload = part(
        {
            "iss": TOKEN_ISSUER,
            "jti": secrets.token_urlsafe(16),
            "sub": fan_id,
            "sale": crowd.plan.sale_id,
            "win": f"w{crowd.rng.randrange(crowd.plan.windows):03d}",
            "iat": int(time.time()),
            "exp": int(time.time()) + 120,
        }
    )
    signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    return f"{header}.{payload}.{signature.decode()}"


def _get_credentials(crowd: Crowd, fan: Fan, due: float) -> bool:
    assert fan.fan_id is not None
    reply = crowd.client.call(
        crowd.client.cognito,
        "GetCredentialsForIdentity",
        crowd.client.serialize(
            crowd.client.cognito,
            "GetCredentialsForIdentity",
            {"IdentityId": fan.fan_id},
        ),
        name="get_credentials",
        due=due,
    )
    if not reply.ok:
        fan.error = reply.error
        return False
    fan.credentials = credentials_from(reply.data)
    return True


def _put_join_item(crowd: Crowd, fan: Fan, name: str, due: float) -> Reply:
    assert fan.fan_id is not None
    body = crowd.client.serialize(
        crowd.client.dynamodb,
        "PutItem",
        {
            "TableName": crowd.plan.targets.queue_table,
            "Item": {
                schema.FAN_ID: {"S": fan.fan_id},
                schema.SALE_ID: {"S": crowd.plan.sale_id},
                schema.CLIENT_TIME: {"N": str(int(time.time() * 1000))},
                schema.SYNTHETIC: {"BOOL": False},
            },
            "ConditionExpression": "attribute_not_exists(fan_id)",
        },
    )
    expected = ("ConditionalCheckFailedException",) if name == "rejoin" else ()
    return crowd.client.call(
        crowd.client.dynamodb,
        "PutItem",
        body,
        name=name,
        due=due,
        credentials=fan.credentials,
        expect_errors=expected,
    )


def _read_position(crowd: Crowd, fan: Fan, due: float) -> tuple[Reply, Reply]:
    assert fan.item_body is not None
    item = crowd.client.call(
        crowd.client.dynamodb,
        "GetItem",
        fan.item_body,
        name="poll_fan",
        due=due,
        credentials=fan.credentials,
    )
    sale = crowd.client.call(
        crowd.client.dynamodb,
        "GetItem",
        crowd.sale_body,
        name="poll_sale",
        due=time.time(),
        credentials=fan.credentials,
    )
    fan.poll_requests += 2
    crowd.count(series.POLL_REQUESTS, sale.finished_at, 2)
    return item, sale


def _note_number(crowd: Crowd, fan: Fan, number: int | None, now: float) -> None:
    if number is None:
        return
    if fan.numbered_seen_at is None:
        fan.numbered_seen_at = now
        crowd.count(series.NUMBERED, now)
    if fan.refreshed and fan.place_kept is None:
        before = fan.number_before_refresh
        fan.place_kept = before is None or number == before
    fan.queue_number = number


def _leaves_now(fan: Fan) -> bool:
    return (
        fan.arrival.behaviour == ABANDONER
        and fan.arrival.variant == LEAVE_WAITING
        and fan.polls >= fan.arrival.leave_after_polls
    )


def _first_poll_delay(crowd: Crowd) -> float:
    # The queue page reads its item right after joining, at the shortest
    # interval, so the fan sees its number as soon as it has one.
    return _poll_interval(crowd, 0.0)


def _poll_interval(crowd: Crowd, estimated_wait: float | None) -> float:
    plan = crowd.plan
    if plan.fixed_poll_seconds is not None:
        return plan.fixed_poll_seconds
    return next_poll_seconds(
        estimated_wait, plan.poll_min_seconds, plan.poll_max_seconds, crowd.rng
    )


def _split_purchase_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    token = parse_qs(parts.query).get("token", [""])[0]
    return f"{parts.scheme}://{parts.netloc}", token


def _key(fan_id: str) -> dict[str, Any]:
    return {schema.FAN_ID: {"S": fan_id}}
