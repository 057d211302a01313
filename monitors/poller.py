"""Poll the funnel's numbers from the stack into the monitor's gauges."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from monitors.metrics import FunnelMetrics
from system import schema
from system.clients import make_client
from system.funnel import FunnelSnapshot, read_snapshot
from system.settings import Settings
from system.stack import StackResources

logger = logging.getLogger(__name__)

# Label values of boxoffice_dead_letter_messages.
FORWARDER_DEAD_LETTERS = "forwarder"
WORK_DEAD_LETTERS = "work"


class FunnelPoller:
    """Read each sale's counters and the queues, and set the funnel gauges.

    With no ``sale_ids``, every sale in the sales table is polled.
    """

    def __init__(
        self,
        settings: Settings,
        resources: StackResources,
        metrics: FunnelMetrics,
        sale_ids: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.metrics = metrics
        self.sale_ids = tuple(sale_ids)
        self._labelled: set[str] = set()

    def poll(self) -> list[FunnelSnapshot]:
        """Read the numbers once and update the gauges; log and count errors."""
        try:
            snapshots = [
                read_snapshot(self.settings, self.resources, sale_id)
                for sale_id in self.sale_ids or self._list_sales()
            ]
        except (BotoCoreError, ClientError) as exc:
            logger.warning("Could not read the funnel's numbers: %s", exc)
            self.metrics.polls.labels("error").inc()
            return []
        self._publish(snapshots)
        self.metrics.polls.labels("success").inc()
        self.metrics.last_poll.set(time.time())
        return snapshots

    def _list_sales(self) -> list[str]:
        dynamodb = make_client(self.settings, "dynamodb")
        sale_ids: list[str] = []
        kwargs = {
            "TableName": self.resources.sales_table,
            "ProjectionExpression": "#sale",
            "ExpressionAttributeNames": {"#sale": schema.SALE_ID},
        }
        while True:
            page = dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                sale_id = item[schema.SALE_ID]["S"]
                if sale_id != schema.FORWARDER_STATS_KEY:
                    sale_ids.append(sale_id)
            if "LastEvaluatedKey" not in page:
                return sorted(sale_ids)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _publish(self, snapshots: list[FunnelSnapshot]) -> None:
        metrics = self.metrics
        for snapshot in snapshots:
            sale = snapshot.sale_id
            metrics.oldest_message_age.labels(sale).set(
                snapshot.oldest_message_age_seconds
            )
            metrics.fans_waiting.labels(sale).set(snapshot.fans_waiting)
            metrics.windows_in_use.labels(sale).set(snapshot.windows_in_use)
            metrics.tickets_left.labels(sale).set(snapshot.tickets_left)
            metrics.fans_numbered.set(snapshot.numbered, sale=sale)
        if snapshots:
            # The queues and the forwarder's counters are the same in each.
            first = snapshots[0]
            metrics.work_queue_messages.set(first.work_queue_depth)
            dead_letters = metrics.dead_letter_messages
            dead_letters.labels(FORWARDER_DEAD_LETTERS).set(first.dead_letter_depth)
            dead_letters.labels(WORK_DEAD_LETTERS).set(first.work_dead_letter_depth)
            metrics.forwarder_errors.set(first.forwarder_bad_records)
        current = {snapshot.sale_id for snapshot in snapshots}
        for removed_sale in self._labelled - current:
            for gauge in (
                metrics.oldest_message_age,
                metrics.fans_waiting,
                metrics.windows_in_use,
                metrics.tickets_left,
            ):
                gauge.remove(removed_sale)
        self._labelled = current
