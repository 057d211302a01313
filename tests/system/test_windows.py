"""The window processor on the embedded stack, fed by pumped work messages.

Each test configures its own sale, pumps numbered fans into the work queue
and watches the queue and windows tables. Where a fan must buy or open its
purchase URL, the test writes what the ticketing service would write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

from system import schema, tokens
from system.embedded import EmbeddedState
from system.funnel import queue_depth
from system.sale import SaleConfig
from system.stack import StackResources
from tests.helpers import wait_for
from tests.system.pump import ProcessorProcess, Pump, PumpedFan, get_items, get_windows

WAIT_SECONDS = 30
SAMPLE_SECONDS = 0.1
# Longer than the visibility timeout the tests give the processor (4 s).
HOLD_SECONDS = 6


def _statuses(items: list[dict[str, Any]]) -> list[Any]:
    return [item.get(schema.STATUS) for item in items]


def _all_final(queue: Any, fans: list[PumpedFan]) -> list[dict[str, Any]] | None:
    items = get_items(queue, fans)
    if all(status in schema.FINAL_STATUSES for status in _statuses(items)):
        return items
    return None


def _admitted(queue: Any, fans: list[PumpedFan], count: int) -> list[Any] | None:
    items = get_items(queue, fans)
    admitted = [item for item in items if item.get(schema.STATUS) == schema.ADMITTED]
    return admitted if len(admitted) >= count else None


def _sale_item(dynamodb: Any, resources: StackResources, sale_id: str) -> Any:
    return dynamodb.Table(resources.sales_table).get_item(
        Key={schema.SALE_ID: sale_id}, ConsistentRead=True
    )["Item"]


def _wait_for_sale(
    dynamodb: Any,
    resources: StackResources,
    sale_id: str,
    check: Callable[[Any], bool],
    message: str,
) -> Any:
    def sale_when_checked() -> Any:
        item = _sale_item(dynamodb, resources, sale_id)
        return item if check(item) else None

    return wait_for(sale_when_checked, timeout=WAIT_SECONDS, message=message)


def _buy(dynamodb: Any, resources: StackResources, window: dict[str, Any]) -> None:
    """Complete a purchase for the window's fan, as the ticketing service would."""
    dynamodb.Table(resources.queue_table).update_item(
        Key={schema.FAN_ID: window[schema.FAN_ID]},
        UpdateExpression="SET #status = :purchased, finished_at = :now",
        ConditionExpression="#status = :admitted",
        ExpressionAttributeNames={"#status": schema.STATUS},
        ExpressionAttributeValues={
            ":purchased": schema.PURCHASED,
            ":admitted": schema.ADMITTED,
            ":now": Decimal(str(time.time())),
        },
    )
    dynamodb.Table(resources.windows_table).update_item(
        Key={schema.SALE_ID: window[schema.SALE_ID], "window_id": window["window_id"]},
        UpdateExpression="SET #status = :free REMOVE fan_id, token_id",
        ConditionExpression="token_id = :token",
        ExpressionAttributeNames={"#status": schema.WINDOW_STATUS},
        ExpressionAttributeValues={
            ":free": schema.WINDOW_FREE,
            ":token": window[schema.TOKEN_ID],
        },
    )


def _claim(dynamodb: Any, resources: StackResources, sale_id: str, fan_id: str) -> None:
    """Mark the fan's window claimed, as opening the purchase URL would."""
    windows = get_windows(dynamodb.Table(resources.windows_table), sale_id)
    (window,) = [w for w in windows if w.get(schema.FAN_ID) == fan_id]
    dynamodb.Table(resources.windows_table).update_item(
        Key={schema.SALE_ID: sale_id, "window_id": window["window_id"]},
        UpdateExpression="SET claimed = :true",
        ConditionExpression="token_id = :token",
        ExpressionAttributeValues={":true": True, ":token": window[schema.TOKEN_ID]},
    )


def _earliness(items: list[dict[str, Any]]) -> list[int]:
    """Return, per admitted fan, how many places ahead of its turn it came in."""
    admitted = sorted(
        (item for item in items if schema.ADMITTED_AT in item),
        key=lambda item: float(item[schema.ADMITTED_AT]),
    )
    by_number = sorted(int(item[schema.QUEUE_NUMBER]) for item in admitted)
    rank = {number: index for index, number in enumerate(by_number)}
    return [
        rank[int(item[schema.QUEUE_NUMBER])] - position
        for position, item in enumerate(admitted)
    ]


def test_admits_in_queue_order(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_stack: EmbeddedState,
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    windows_count = 3
    sale = pump_sale(window_count=windows_count, session_seconds=60)
    fans = pump.fans(sale.sale_id, 12)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    windows_table = pump_dynamodb.Table(pump_resources.windows_table)

    max_admitted = max_busy = 0
    deadline = time.monotonic() + WAIT_SECONDS * 2
    while time.monotonic() < deadline:
        statuses = _statuses(get_items(queue, fans))
        max_admitted = max(max_admitted, statuses.count(schema.ADMITTED))
        if all(status == schema.PURCHASED for status in statuses):
            break
        busy = [
            window
            for window in get_windows(windows_table, sale.sale_id)
            if window[schema.WINDOW_STATUS] == schema.WINDOW_BUSY
        ]
        max_busy = max(max_busy, len(busy))
        for window in busy:
            _buy(pump_dynamodb, pump_resources, window)
        time.sleep(SAMPLE_SECONDS)

    items = get_items(queue, fans)
    assert _statuses(items) == [schema.PURCHASED] * len(fans)
    assert max(_earliness(items)) <= windows_count
    assert 1 <= max_busy <= windows_count
    assert max_admitted <= windows_count
    assert len(get_windows(windows_table, sale.sale_id)) == windows_count

    secret = pump_stack.secret_path.read_text().strip().encode()
    for fan, item in zip(fans, items, strict=True):
        url = urlparse(item[schema.PURCHASE_URL])
        assert url.path == "/purchase"
        claims = tokens.verify(
            secret, parse_qs(url.query)["token"][0], fan_id=fan.fan_id
        )
        assert claims.sale_id == sale.sale_id
        assert claims.window_id == item[schema.WINDOW_ID]

    counters = _wait_for_sale(
        pump_dynamodb,
        pump_resources,
        sale.sale_id,
        lambda item: (
            item[schema.ADMITTED_COUNT] == len(fans)
            and item[schema.WINDOWS_IN_USE] == 0
        ),
        "the admission counters",
    )
    assert counters[schema.SERVING] == len(fans)
    assert counters[schema.ADMISSION_RATE] > 0
    assert counters[schema.HEAD_NUMBERED_AT] == 0
    assert counters[schema.RECLAIMED_WINDOWS] == 0
    admissions = window_processor.metric(
        "boxoffice_admissions_total", sale=sale.sale_id, synthetic="false"
    )
    assert admissions == len(fans)


def test_duplicate_message_admits_once(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    sale = pump_sale(window_count=3, session_seconds=60)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    first = pump.fans(sale.sale_id, 1)
    pump.send(first[0])  # redelivered before the first copy is handled
    second = pump.fans(sale.sale_id, 1)
    fans = first + second
    wait_for(lambda: _admitted(queue, fans, 2), timeout=WAIT_SECONDS, message="2 fans")
    admitted_at = [item[schema.ADMITTED_AT] for item in get_items(queue, fans)]

    pump.send(first[0])  # redelivered after the fan was admitted
    wait_for(
        lambda: (
            window_processor.metric("boxoffice_work_messages_total", result="duplicate")
            >= 2
        ),
        timeout=WAIT_SECONDS,
        message="both duplicates handled",
    )

    windows = get_windows(
        pump_dynamodb.Table(pump_resources.windows_table), sale.sale_id
    )
    busy_fans = sorted(
        window[schema.FAN_ID]
        for window in windows
        if window[schema.WINDOW_STATUS] == schema.WINDOW_BUSY
    )
    assert busy_fans == sorted(fan.fan_id for fan in fans)
    items = get_items(queue, fans)
    assert [item[schema.ADMITTED_AT] for item in items] == admitted_at
    assert _statuses(items) == [schema.ADMITTED, schema.ADMITTED]
    assert (
        window_processor.metric("boxoffice_work_messages_total", result="admitted") == 2
    )


def test_restart_after_sigkill_loses_nothing(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_stack: EmbeddedState,
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    windows_count = 3
    sale = pump_sale(
        window_count=windows_count, session_seconds=3, claim_timeout_seconds=1
    )
    fans = pump.fans(sale.sale_id, 15)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    windows_table = pump_dynamodb.Table(pump_resources.windows_table)

    admissions: dict[str, set[Any]] = {fan.fan_id: set() for fan in fans}
    killed = False
    deadline = time.monotonic() + WAIT_SECONDS * 3
    items = get_items(queue, fans)
    while time.monotonic() < deadline:
        items = get_items(queue, fans)
        for fan, item in zip(fans, items, strict=True):
            if schema.ADMITTED_AT in item:
                admissions[fan.fan_id].add(item[schema.ADMITTED_AT])
        busy_fans = [
            window[schema.FAN_ID]
            for window in get_windows(windows_table, sale.sale_id)
            if window[schema.WINDOW_STATUS] == schema.WINDOW_BUSY
        ]
        assert len(busy_fans) == len(set(busy_fans)), "a fan holds two windows"
        if all(status in schema.FINAL_STATUSES for status in _statuses(items)):
            break
        if not killed and sum(1 for times in admissions.values() if times) >= 4:
            window_processor.kill()
            killed = True
            time.sleep(1)
            window_processor.start()
        time.sleep(SAMPLE_SECONDS)

    assert killed
    assert _statuses(items) == [schema.EXPIRED] * len(fans)
    assert all(len(times) == 1 for times in admissions.values()), admissions
    windows = get_windows(windows_table, sale.sale_id)
    assert len(windows) == windows_count
    assert all(w[schema.WINDOW_STATUS] == schema.WINDOW_FREE for w in windows)
    assert max(_earliness(items)) <= windows_count
    sqs = pump.sqs
    wait_for(
        lambda: queue_depth(sqs, pump_resources.work_queue_url) == 0,
        timeout=WAIT_SECONDS,
        message="an empty work queue",
    )


def test_claim_timeout_and_expiry_free_windows(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    sale = pump_sale(window_count=2, session_seconds=4, claim_timeout_seconds=2)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    fans = pump.fans(sale.sale_id, 3)
    opener = fans[0]
    wait_for(
        lambda: _admitted(queue, [opener], 1), timeout=WAIT_SECONDS, message="1st fan"
    )
    _claim(pump_dynamodb, pump_resources, sale.sale_id, opener.fan_id)

    items = wait_for(
        lambda: _all_final(queue, fans), timeout=WAIT_SECONDS, message="3 final fans"
    )
    opened, left, late = items
    assert _statuses(items) == [schema.EXPIRED] * 3
    assert opened[schema.FINISHED_AT] >= opened[schema.EXPIRES_AT]
    assert left[schema.CLAIM_BY] <= left[schema.FINISHED_AT] < left[schema.EXPIRES_AT]
    assert late[schema.WINDOW_ID] == left[schema.WINDOW_ID]
    assert late[schema.ADMITTED_AT] >= left[schema.FINISHED_AT]
    assert late[schema.FINISHED_AT] < late[schema.EXPIRES_AT]
    assert all(schema.PURCHASE_URL not in item for item in items)

    windows = get_windows(
        pump_dynamodb.Table(pump_resources.windows_table), sale.sale_id
    )
    assert all(w[schema.WINDOW_STATUS] == schema.WINDOW_FREE for w in windows)
    _wait_for_sale(
        pump_dynamodb,
        pump_resources,
        sale.sale_id,
        lambda item: item[schema.RECLAIMED_WINDOWS] == 3,
        "3 reclaimed windows",
    )
    freed = "boxoffice_windows_freed_total"
    assert (
        window_processor.metric(freed, sale=sale.sale_id, reason="claim_timeout") == 2
    )
    assert window_processor.metric(freed, sale=sale.sale_id, reason="expired") == 1


def test_sold_out_frees_windows_and_tells_fans(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    sale = pump_sale(window_count=2, stock=10, session_seconds=60)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    fans = pump.fans(sale.sale_id, 6)
    wait_for(lambda: _admitted(queue, fans, 2), timeout=WAIT_SECONDS, message="2 fans")

    pump_dynamodb.Table(pump_resources.sales_table).update_item(
        Key={schema.SALE_ID: sale.sale_id},
        UpdateExpression="SET tickets_left = :zero",
        ExpressionAttributeValues={":zero": 0},
    )
    fans += pump.fans(sale.sale_id, 1)  # joins after the sell-out
    items = wait_for(
        lambda: _all_final(queue, fans), timeout=WAIT_SECONDS, message="7 final fans"
    )

    assert _statuses(items) == [schema.SOLD_OUT] * len(fans)
    assert all(schema.FINISHED_AT in item for item in items)
    assert all(schema.PURCHASE_URL not in item for item in items)
    assert sum(1 for item in items if schema.ADMITTED_AT in item) == 2
    windows = get_windows(
        pump_dynamodb.Table(pump_resources.windows_table), sale.sale_id
    )
    assert all(w[schema.WINDOW_STATUS] == schema.WINDOW_FREE for w in windows)
    sale_item = _wait_for_sale(
        pump_dynamodb,
        pump_resources,
        sale.sale_id,
        lambda item: item[schema.WINDOWS_IN_USE] == 0,
        "no windows in use",
    )
    assert sale_item[schema.SOLD_OUT_FLAG] is True
    assert sale_item[schema.RECLAIMED_WINDOWS] == 0


def test_waits_for_on_sale_time(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    on_sale_at = time.time() + 4
    sale = pump_sale(window_count=2, session_seconds=60, on_sale_at=on_sale_at)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    fans = pump.fans(sale.sale_id, 3)

    def head_is(fan: PumpedFan) -> Callable[[Any], bool]:
        return lambda item: (
            abs(item[schema.HEAD_NUMBERED_AT] - Decimal(fan.numbered_at))
            < Decimal("0.001")
        )

    _wait_for_sale(
        pump_dynamodb, pump_resources, sale.sale_id, head_is(fans[0]), "the 1st head"
    )
    assert time.time() < on_sale_at, "too slow to see the line before the sale"
    assert _statuses(get_items(queue, fans)) == [schema.WAITING] * 3

    admitted = wait_for(
        lambda: _admitted(queue, fans, 2), timeout=WAIT_SECONDS, message="2 fans"
    )
    assert all(item[schema.ADMITTED_AT] >= Decimal(on_sale_at) for item in admitted)
    _wait_for_sale(
        pump_dynamodb, pump_resources, sale.sale_id, head_is(fans[2]), "the 3rd head"
    )
    assert get_items(queue, fans)[2][schema.STATUS] == schema.WAITING


def test_synthetic_fan_admitted_like_real(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_stack: EmbeddedState,
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    sale = pump_sale(window_count=1, session_seconds=60)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    windows_table = pump_dynamodb.Table(pump_resources.windows_table)
    real = pump.fans(sale.sale_id, 1)
    synthetic = pump.fans(sale.sale_id, 1, synthetic=True)
    wait_for(lambda: _admitted(queue, real, 1), timeout=WAIT_SECONDS, message="fan")
    (window,) = get_windows(windows_table, sale.sale_id)
    _buy(pump_dynamodb, pump_resources, window)

    (item,) = wait_for(
        lambda: _admitted(queue, synthetic, 1), timeout=WAIT_SECONDS, message="probe"
    )
    (window,) = get_windows(windows_table, sale.sale_id)
    assert window[schema.FAN_ID] == synthetic[0].fan_id
    assert window[schema.SYNTHETIC] is True
    url = urlparse(item[schema.PURCHASE_URL])
    secret = pump_stack.secret_path.read_text().strip().encode()
    claims = tokens.verify(
        secret, parse_qs(url.query)["token"][0], fan_id=synthetic[0].fan_id
    )
    assert claims.synthetic is True
    counters = _wait_for_sale(
        pump_dynamodb,
        pump_resources,
        sale.sale_id,
        lambda item: item[schema.SERVING] == 2,
        "serving the probe",
    )
    assert counters[schema.ADMITTED_COUNT] == 1, "a probe counted as a real fan"
    assert float(counters[schema.UPDATED_AT]) > time.time() - WAIT_SECONDS
    admissions = "boxoffice_admissions_total"
    assert window_processor.metric(admissions, sale=sale.sale_id, synthetic="true") == 1
    assert (
        window_processor.metric(admissions, sale=sale.sale_id, synthetic="false") == 1
    )


def test_sigterm_returns_held_messages(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    sale = pump_sale(window_count=1, session_seconds=60, on_sale_at=time.time() + 3600)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    fans = pump.fans(sale.sale_id, 1)
    _wait_for_sale(
        pump_dynamodb,
        pump_resources,
        sale.sale_id,
        lambda item: item[schema.HEAD_NUMBERED_AT] > 0,
        "the head of the line",
    )
    # Longer than the processor's visibility timeout: only extending it keeps
    # the message from being delivered again meanwhile.
    time.sleep(HOLD_SECONDS)

    assert window_processor.terminate() == 0
    assert "Window processor stopped" in window_processor.log()
    attributes = pump.sqs.get_queue_attributes(
        QueueUrl=pump_resources.work_queue_url,
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert _receive_count(pump.sqs, pump_resources, sale.sale_id) == 2

    pump_dynamodb.Table(pump_resources.sales_table).update_item(
        Key={schema.SALE_ID: sale.sale_id},
        UpdateExpression="SET on_sale_at = :now",
        ExpressionAttributeValues={":now": Decimal(str(time.time()))},
    )
    window_processor.start()
    wait_for(lambda: _admitted(queue, fans, 1), timeout=WAIT_SECONDS, message="the fan")


def _receive_count(sqs: Any, resources: StackResources, sale_id: str) -> int:
    """Receive the sale's message, return how often it was received, put it back."""
    messages = sqs.receive_message(
        QueueUrl=resources.work_queue_url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
    ).get("Messages", [])
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=resources.work_queue_url,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=0,
        )
    (count,) = [
        int(message["Attributes"]["ApproximateReceiveCount"])
        for message in messages
        if message["Attributes"]["MessageGroupId"] == sale_id
    ]
    return count


def test_malformed_message_dead_lettered(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_resources: StackResources,
) -> None:
    group = f"test-malformed-{time.time_ns()}"
    pump.sqs.send_message(
        QueueUrl=pump_resources.work_queue_url,
        MessageBody='{"fan_id": 42}',
        MessageGroupId=group,
        MessageDeduplicationId=group,
    )

    wait_for(
        lambda: queue_depth(pump.sqs, pump_resources.work_dead_letter_queue_url) > 0,
        timeout=WAIT_SECONDS,
        message="the message in the dead-letter queue",
    )
    messages = pump.sqs.receive_message(
        QueueUrl=pump_resources.work_dead_letter_queue_url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["MessageGroupId"],
    )["Messages"]
    bodies = [
        message["Body"]
        for message in messages
        if message["Attributes"]["MessageGroupId"] == group
    ]
    assert bodies == ['{"fan_id": 42}']
    assert (
        window_processor.metric("boxoffice_work_messages_total", result="malformed")
        >= 1
    )
    assert window_processor.process is not None
    assert window_processor.process.poll() is None


def test_message_of_deleted_fan_dropped(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    # The sale opens a moment later, so the fan is deleted before its turn, as
    # the synthetic probe deletes a fan that failed half-way.
    sale = pump_sale(window_count=1, session_seconds=60, on_sale_at=time.time() + 3)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    gone, kept = pump.fans(sale.sale_id, 2)
    queue.delete_item(Key={schema.FAN_ID: gone.fan_id})
    dead_letters = queue_depth(pump.sqs, pump_resources.work_dead_letter_queue_url)

    wait_for(lambda: _admitted(queue, [kept], 1), timeout=WAIT_SECONDS, message="kept")

    assert (
        window_processor.metric("boxoffice_work_messages_total", result="fan_gone") == 1
    )
    assert get_items(queue, [gone]) == [{}]
    depth = queue_depth(pump.sqs, pump_resources.work_dead_letter_queue_url)
    assert depth == dead_letters


def test_fan_who_wiped_number_does_not_block(
    window_processor: ProcessorProcess,
    pump: Pump,
    pump_sale: Callable[..., SaleConfig],
    pump_dynamodb: Any,
    pump_resources: StackResources,
) -> None:
    # A fan may put its own item again without the join's condition, which
    # wipes its number. Its message must not hold up the fans behind it.
    sale = pump_sale(window_count=2, session_seconds=60, on_sale_at=time.time() + 3)
    queue = pump_dynamodb.Table(pump_resources.queue_table)
    wiped, *behind = pump.fans(sale.sale_id, 3)
    queue.put_item(
        Item={
            schema.FAN_ID: wiped.fan_id,
            schema.SALE_ID: sale.sale_id,
            schema.CLIENT_TIME: int(time.time() * 1000),
        }
    )

    wait_for(lambda: _admitted(queue, behind, 2), timeout=15, message="fans behind")

    metric = window_processor.metric(
        "boxoffice_work_messages_total", result="not_numbered"
    )
    assert metric == 1
    assert schema.STATUS not in get_items(queue, [wiped])[0]
