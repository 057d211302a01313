"""Names of the tables' attributes, the fan statuses and the work message.

Every package reads and writes the stack's data through these names. The
forwarder Lambda imports this module too, so it contains constants only.
"""

from __future__ import annotations

import re
from typing import Final

# Queue table: one item per fan, keyed by the fan's Cognito identity id.
FAN_ID: Final = "fan_id"
# Attributes a browser writes when it joins. Nothing else a client writes is
# read downstream: the forwarder overwrites or removes the server-owned ones.
SALE_ID: Final = "sale_id"
CLIENT_TIME: Final = "client_time"  # the browser's clock at join, epoch ms
SYNTHETIC: Final = "synthetic"  # true for canary and test fans
BROWSER_ATTRIBUTES: Final = (FAN_ID, SALE_ID, CLIENT_TIME, SYNTHETIC)

# Set by the forwarder.
QUEUE_NUMBER: Final = "queue_number"
STATUS: Final = "status"
NUMBERED_AT: Final = "numbered_at"  # epoch seconds
STREAM_SEQUENCE: Final = "stream_sequence"  # the INSERT record that numbered the fan

# Set by the window assignment processor and the ticketing service.
WINDOW_ID: Final = "window_id"
PURCHASE_URL: Final = "purchase_url"
ADMITTED_AT: Final = "admitted_at"  # epoch seconds
CLAIM_BY: Final = "claim_by"  # epoch seconds: open the purchase URL before this
EXPIRES_AT: Final = "expires_at"  # epoch seconds: the window closes then
ORDER_ID: Final = "order_id"
FINISHED_AT: Final = "finished_at"  # epoch seconds: purchased, expired or sold out

SERVER_ATTRIBUTES: Final = (
    QUEUE_NUMBER,
    STATUS,
    NUMBERED_AT,
    STREAM_SEQUENCE,
    WINDOW_ID,
    PURCHASE_URL,
    ADMITTED_AT,
    CLAIM_BY,
    EXPIRES_AT,
    ORDER_ID,
    FINISHED_AT,
)

# Fan statuses, in funnel order. A fan without a status has joined but is not
# numbered yet.
WAITING: Final = "waiting"
ADMITTED: Final = "admitted"
PURCHASED: Final = "purchased"
EXPIRED: Final = "expired"  # let the window run out, or never opened the URL
SOLD_OUT: Final = "sold_out"
FINAL_STATUSES: Final = (PURCHASED, EXPIRED, SOLD_OUT)

# A sale id: 1 to 64 printable ASCII characters, no space and no '#', so it
# is safe in a message group id, a deduplication id and a metric label.
SALE_ID_PATTERN: Final = re.compile(r"[\x21\x22\x24-\x7e]{1,64}")

# Sales table: one item per sale, keyed by sale id. It contains the sale's
# configuration and the counters that fans poll.
STOCK: Final = "stock"  # tickets on sale in all
WINDOW_COUNT: Final = "window_count"
SESSION_SECONDS: Final = "session_seconds"
CLAIM_TIMEOUT_SECONDS: Final = "claim_timeout_seconds"
ON_SALE_AT: Final = "on_sale_at"  # epoch seconds
MAX_TICKETS_PER_ORDER: Final = "max_tickets_per_order"
NEXT_NUMBER: Final = "next_number"  # the highest queue number handed out
SERVING: Final = "serving"  # the highest queue number admitted so far
ADMITTED_COUNT: Final = "admitted_count"
ADMISSION_RATE: Final = "admission_rate"  # fans admitted per second, recent
TICKETS_LEFT: Final = "tickets_left"
SOLD_OUT_FLAG: Final = "sold_out"
UPDATED_AT: Final = "updated_at"  # epoch seconds
# When the fan at the head of the line was numbered, epoch seconds, or 0 when
# the line is empty. The window processor keeps the head message in flight and
# publishes this, so "now - head_numbered_at" is the oldest work message's age.
HEAD_NUMBERED_AT: Final = "head_numbered_at"
WINDOWS_IN_USE: Final = "windows_in_use"
RECLAIMED_WINDOWS: Final = "reclaimed_windows"  # taken back from fans who left
SOLD_COUNT: Final = "sold_count"  # tickets sold to real fans

# The forwarder's own counters live in the sales table under this key, so a
# bad record with no valid sale id is still counted.
FORWARDER_STATS_KEY: Final = "#forwarder"
BAD_RECORDS: Final = "bad_records"
FORWARDED: Final = "forwarded"

# Windows table: key (sale_id, window_id).
WINDOW_STATUS: Final = "status"
WINDOW_FREE: Final = "free"
WINDOW_BUSY: Final = "busy"
TOKEN_ID: Final = "token_id"
CLAIMED: Final = "claimed"  # the fan opened the purchase URL

# Orders table: key order_id, which is the purchase token's id (jti), so one
# token can make at most one order.
QUANTITY: Final = "quantity"
CREATED_AT: Final = "created_at"
IDEMPOTENCY_KEY: Final = "idempotency_key"

# Config table: one item per setting, key ``name``, value in ``value``.
CONFIG_NAME: Final = "name"
CONFIG_VALUE: Final = "value"

# Work queue message body (JSON). The message group is the sale id, so a FIFO
# queue hands fans to the windows in queue-number order.
MESSAGE_FIELDS: Final = (FAN_ID, SALE_ID, QUEUE_NUMBER, SYNTHETIC, NUMBERED_AT)

# Set by the ticketing service. A window it frees gets FREED_AT and
# FREED_REASON, and loses the attributes of the fan session it served.
CLAIMED_AT: Final = "claimed_at"  # epoch seconds: the fan opened the purchase URL
FREED_AT: Final = "freed_at"  # epoch seconds
FREED_REASON: Final = "freed_reason"
FREED_BY_PURCHASE: Final = "purchase"
FREED_BY_SOLD_OUT: Final = "sold_out"
WINDOW_SESSION_ATTRIBUTES: Final = (
    FAN_ID,
    TOKEN_ID,
    CLAIMED,
    CLAIMED_AT,
    QUEUE_NUMBER,
    SYNTHETIC,
    PURCHASE_URL,
    ADMITTED_AT,
    CLAIM_BY,
    EXPIRES_AT,
)
# Orders table: an order of a synthetic fan is a dry run that took no stock.
DRY_RUN: Final = "dry_run"
