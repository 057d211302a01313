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

# Step kinds in the crowd's timer heap.
ARRIVE, COUNTDOWN, QUEUE_PAGE, POLL, REFRESH, PURCHASE, BOT_TRY = range(7)

BOT_ATTEMPTS = 3
BOT_RETRY_SECONDS = 2.0
BOT_WAIT_ATTEMPTS = 30  # waits for a URL or token before a bot gives up
PURCHASE_ATTEMPTS = 3
CONDITION_FAILED = "ConditionalCheckFailedException"
# The pages' rules (system/web/src). After a failed call a page backs off,
# doubling from 1 s up to 30 s with half of it jittered, and tries again.
# The countdown page reads the sale again about once a minute and checks its
# clock four times a second.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
SALE_RECHECK_SECONDS = 60.0
COUNTDOWN_TICK_SECONDS = 0.25
# Fans' clocks differ: each fan's clock is off by up to this much either way
# (an assumption of the simulation, not a measured figure).
CLOCK_SKEW_SECONDS = 0.5
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
        "clock_offset",
        "credentials",
        "double_buy",
        "due_at",
        "error",
        "failures",
        "fan_id",
        "finished_at",
        "item_body",
        "join_ms",
        "join_started",
        "joined_at",
        "number_before_refresh",
        "numbered_seen_at",
        "opens_at",
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
        self.join_started: float | None = None
        self.join_ms: float | None = None
        self.opens_at: float | None = None
        self.clock_offset = 0.0
        self.failures = 0
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
    """Open the sale's page: get an identity and credentials, read the sale.

    The page counts down while the sale is not open and moves to the queue
    page when it opens, or at once when it is open already.
    """
    if fan.arrived_at == 0.0:
        fan.arrived_at = time.time()
        crowd.arrived(fan)
        crowd.count(series.ARRIVALS, fan.arrived_at)
    if fan.arrival.behaviour == BOT:
        bot_try(crowd, fan, due)
        return
    if crowd.past_deadline(due):
        finish(crowd, fan, JOIN_FAILED, fan.error)
        return
    if fan.fan_id is None:
        identity = crowd.client.call(
            crowd.client.cognito, "GetId", crowd.get_id_body, name="get_id", due=due
        )
        if not identity.ok:
            _retry_later(crowd, fan, ARRIVE, identity.error)
            return
        fan.fan_id = str(identity.data["IdentityId"])
        fan.item_body = crowd.client.serialize(
            crowd.client.dynamodb,
            "GetItem",
            {"TableName": crowd.plan.targets.queue_table, "Key": _key(fan.fan_id)},
        )
    if not _get_credentials(crowd, fan, time.time()):
        _retry_later(crowd, fan, ARRIVE, fan.error)
        return
    sale = _read_sale(crowd, fan, time.time())
    if not sale.ok:
        _retry_later(crowd, fan, ARRIVE, sale.error)
        return
    fan.failures = 0
    _leave_countdown_or_wait(crowd, fan, sale.data.get("Item", {}), due)


def countdown(crowd: Crowd, fan: Fan, due: float) -> None:
    """Tick on the countdown page: read the sale again, or go to the line."""
    if crowd.past_deadline(due):
        finish(crowd, fan, JOIN_FAILED)
        return
    opens_at = fan.opens_at or 0.0
    if _fan_clock(fan, due) >= opens_at:
        queue_page(crowd, fan, due)
        return
    sale = _read_sale(crowd, fan, due)
    if not sale.ok:
        _retry_later(crowd, fan, COUNTDOWN, sale.error)
        return
    _leave_countdown_or_wait(crowd, fan, sale.data.get("Item", {}), due)


def queue_page(crowd: Crowd, fan: Fan, due: float) -> None:
    """Load the queue page: credentials, the fan's item and the sale, then join.

    A reload runs this again, and a fan whose item exists keeps its place
    without writing anything.
    """
    if crowd.past_deadline(due):
        finish(crowd, fan, UNRESOLVED if fan.joined_at else JOIN_FAILED)
        return
    if fan.joined_at is None:
        fan.join_started = fan.join_started or due
    if not _get_credentials(crowd, fan, due):
        _retry_later(crowd, fan, QUEUE_PAGE, fan.error)
        return
    item_reply, sale_reply = _read_position(crowd, fan, time.time())
    if not (item_reply.ok and sale_reply.ok):
        _retry_later(crowd, fan, QUEUE_PAGE, item_reply.error or sale_reply.error)
        return
    item = item_reply.data.get("Item")
    sale = sale_reply.data.get("Item", {})
    if item:
        fan.failures = 0
        _act_on_position(crowd, fan, item, sale, time.time())
        return
    where = position({}, sale)
    if where.sold_out:
        finish(crowd, fan, SOLD_OUT)
        return
    opens_at = _number(sale.get(schema.ON_SALE_AT))
    if opens_at and _fan_clock(fan, time.time()) < opens_at:
        fan.opens_at = opens_at
        crowd.schedule(_countdown_wake(crowd, fan, time.time()), fan, COUNTDOWN)
        return
    if fan.refreshed:
        fan.place_kept = False  # the item was gone: this write takes a new place
    joined = _put_join_item(crowd, fan, "join", time.time())
    if not (joined.ok or joined.error == CONDITION_FAILED):
        _retry_later(crowd, fan, QUEUE_PAGE, joined.error)
        return
    fan.failures = 0
    if fan.joined_at is None:
        fan.joined_at = joined.finished_at
        fan.join_ms = (joined.finished_at - (fan.join_started or due)) * 1000.0
        crowd.joined(fan)
    if fan.arrival.behaviour == SECOND_TAB:
        # The second tab, opened at the same moment, read no item either and
        # writes too; the conditional write keeps the first item.
        _put_join_item(crowd, fan, "rejoin", time.time())
    # Right after the join the fan has no number yet, so the page polls at
    # the shortest interval.
    crowd.schedule(time.time() + _poll_interval(crowd, 0.0), fan, POLL)


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
    if not (item_reply.ok and sale_reply.ok):
        _retry_later(crowd, fan, POLL, item_reply.error or sale_reply.error)
        return
    fan.failures = 0
    item = item_reply.data.get("Item", {})
    sale = sale_reply.data.get("Item", {})
    _act_on_position(crowd, fan, item, sale, time.time())


def refresh(crowd: Crowd, fan: Fan, due: float) -> None:
    """Reload the queue page; the fan must keep its place."""
    fan.number_before_refresh = fan.queue_number
    fan.refreshed = True
    crowd.client.forget(fan.credentials)
    queue_page(crowd, fan, due)


def purchase(crowd: Crowd, fan: Fan, due: float) -> None:
    """Buy the fan's tickets, fewer if fewer are left, once per token."""
    assert fan.purchase_url is not None and fan.fan_id is not None
    base, token = _split_purchase_url(fan.purchase_url)
    key = secrets.token_hex(8)  # one key per page load, as the purchase page
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
                continue  # the page keeps its key for the smaller order
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
        # No response or a server error: the fan presses Buy again, and the
        # page's key makes a purchase that did go through count once.
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


def _act_on_position(
    crowd: Crowd, fan: Fan, item: dict[str, Any], sale: dict[str, Any], now: float
) -> None:
    where = position(item, sale)
    _note_number(crowd, fan, where.queue_number, now)
    if where.my_turn and where.purchase_url:
        _admitted(crowd, fan, where.purchase_url, now, _admitted_at(item))
        return
    if where.status == schema.PURCHASED:
        finish(crowd, fan, PURCHASED)
        return
    if where.status == schema.EXPIRED:
        finish(crowd, fan, EXPIRED)
        return
    if where.sold_out:
        finish(crowd, fan, SOLD_OUT)
        return
    if where.queue_number is not None and where.people_ahead is not None:
        crowd.sample_position(now, where.queue_number, where.people_ahead)
    if _leaves_now(fan):
        finish(crowd, fan, LEFT_WAITING)
        return
    if (
        fan.arrival.behaviour == REFRESHER
        and not fan.refreshed
        and fan.polls >= fan.arrival.leave_after_polls
    ):
        crowd.schedule(now, fan, REFRESH)
        return
    # Like the queue page: until numbered, poll at the shortest interval.
    wait = where.estimated_wait_seconds if where.queue_number is not None else 0.0
    crowd.schedule(now + _poll_interval(crowd, wait), fan, POLL)


def _admitted(
    crowd: Crowd, fan: Fan, url: str, now: float, admitted_at: float | None
) -> None:
    fan.admitted_seen_at = now
    fan.purchase_url = url
    crowd.admitted(fan, admitted_at)
    if fan.arrival.behaviour == ABANDONER and fan.arrival.variant == NEVER_OPEN:
        finish(crowd, fan, LEFT_AT_WINDOW)
        return
    base, _ = _split_purchase_url(url)
    if crowd.ticketing_url is None:
        crowd.ticketing_url = base  # bots learn where to aim from real URLs
    # Opening the purchase page claims the window; the page then posts the
    # purchase when the fan presses Buy.
    page = crowd.client.http("GET", url, name="page", due=now)
    if page.status in (400, 403, 404, 409):
        finish(crowd, fan, WINDOW_CLOSED, page.error or f"HTTP{page.status}")
        return
    if fan.arrival.behaviour == SECOND_TAB:
        crowd.client.http("GET", url, name="page_second_tab", due=time.time())
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


def _retry_later(crowd: Crowd, fan: Fan, step: int, error: str | None) -> None:
    fan.failures += 1
    fan.error = error
    ceiling = min(BACKOFF_BASE_SECONDS * 2 ** (fan.failures - 1), BACKOFF_MAX_SECONDS)
    delay = ceiling / 2 + crowd.rng.random() * ceiling / 2
    crowd.schedule(time.time() + delay, fan, step)


def _read_sale(crowd: Crowd, fan: Fan, due: float) -> Reply:
    return crowd.client.call(
        crowd.client.dynamodb,
        "GetItem",
        crowd.sale_body,
        name="read_sale",
        due=due,
        credentials=fan.credentials,
    )


def _leave_countdown_or_wait(
    crowd: Crowd, fan: Fan, sale: dict[str, Any], due: float
) -> None:
    """Go to the queue page if the sale is open by the fan's clock, else count."""
    if position({}, sale).sold_out:
        finish(crowd, fan, SOLD_OUT)
        return
    fan.opens_at = _number(sale.get(schema.ON_SALE_AT)) or 0.0
    now = time.time()
    if _fan_clock(fan, now) >= fan.opens_at:
        queue_page(crowd, fan, due)
        return
    crowd.schedule(_countdown_wake(crowd, fan, now), fan, COUNTDOWN)


def _countdown_wake(crowd: Crowd, fan: Fan, now: float) -> float:
    # The page's clock reaches the opening time at this machine's time...
    opens = (fan.opens_at or now) - fan.clock_offset
    # ...and its next tick of the countdown notices it.
    opens += crowd.rng.uniform(0, COUNTDOWN_TICK_SECONDS)
    recheck = now + SALE_RECHECK_SECONDS * crowd.rng.uniform(0.8, 1.2)
    return min(opens, recheck)


def _fan_clock(fan: Fan, now: float) -> float:
    return now + fan.clock_offset


def _number(value: Any) -> float | None:
    if isinstance(value, dict) and "N" in value:
        return float(value["N"])
    return None


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


def _admitted_at(item: dict[str, Any]) -> float | None:
    """Return the admission time the window processor wrote on the item."""
    value = item.get(schema.ADMITTED_AT, {}).get("N")
    return float(value) if value is not None else None
