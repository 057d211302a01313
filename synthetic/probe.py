"""The probe: push one synthetic fan through the funnel and time each stage.

The fan joins as a browser does, or is injected further down in pump mode.
Then the probe polls its item until the forwarder numbers it and a window
admits it with a purchase URL, and buys: the ticketing service validates
the purchase as a dry run. Each stage has a deadline, and so has the whole
probe. Whatever the outcome, the probe then removes what its fan wrote.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from synthetic import footprint as records
from synthetic import inject
from synthetic.config import ProbeConfig
from synthetic.errors import StageFailedError, StageTimedOutError
from synthetic.result import (
    ADMISSION,
    FAILED,
    FORWARD,
    JOIN,
    PASSED,
    PURCHASE,
    STAGES,
    TIMED_OUT,
    ProbeResult,
    StageResult,
)
from synthetic.sale import ensure_sale
from system import schema
from system.clients import make_session
from system.errors import BoxOfficeError
from system.fan import Fan, FanView, split_purchase_url, unsigned_cognito
from system.settings import Settings
from system.stack import StackResources

logger = logging.getLogger(__name__)

# Short timeouts and few retries, so one slow call cannot carry a stage far
# past its deadline: a stage ends at most about one call's time late.
CALL_CONNECT_TIMEOUT_SECONDS = 3
CALL_READ_TIMEOUT_SECONDS = 5
CALL_MAX_ATTEMPTS = 2
HTTP_TIMEOUT_SECONDS = 5.0


@dataclass
class _Run:
    """The state of one probe run, shared by its stages and its cleanup."""

    fan: Fan
    footprint: records.Footprint
    probe_id: str
    view: FanView | None = None
    injected_number: int | None = None  # pump mode at admission


class Probe:
    """Run synthetic fans through one stack's funnel, one per ``run`` call.

    One probe may run from several threads at once: each run has its own
    fan, identity and records, and shares only thread-safe clients.
    """

    def __init__(
        self,
        settings: Settings,
        resources: StackResources,
        config: ProbeConfig | None = None,
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.config = config or ProbeConfig()
        self._boto_config = Config(
            retries={"max_attempts": CALL_MAX_ATTEMPTS, "mode": "standard"},
            connect_timeout=CALL_CONNECT_TIMEOUT_SECONDS,
            read_timeout=CALL_READ_TIMEOUT_SECONDS,
        )
        session = make_session(settings)
        self._dynamodb = session.client(
            "dynamodb", endpoint_url=settings.endpoint_url, config=self._boto_config
        )
        self._sqs = session.client(
            "sqs", endpoint_url=settings.endpoint_url, config=self._boto_config
        )
        self._http = httpx.Client(timeout=HTTP_TIMEOUT_SECONDS)
        self._cognito = unsigned_cognito(settings, self._boto_config)
        self.cleaner = records.Cleaner(self._dynamodb, resources)

    def run(self) -> ProbeResult:
        """Push one synthetic fan through the funnel and return what happened."""
        config = self.config
        run = _Run(
            fan=self._new_fan(),
            footprint=records.Footprint(sale_id=config.sale_id),
            probe_id=uuid.uuid4().hex[:12],
        )
        result = ProbeResult(
            probe_id=run.probe_id,
            sale_id=config.sale_id,
            inject_at=config.inject_at,
            started_at=time.time(),
        )
        started = time.monotonic()
        total_deadline = started + config.total_deadline_seconds
        try:
            self._run_stages(run, result, total_deadline)
        finally:
            result.cleanup_errors = self.cleaner.clean_up(run.footprint)
            result.cleanup_errors += self.cleaner.sweep()
            result.fan_id = run.footprint.fan_id
            result.order_id = run.footprint.order_id
            result.duration_seconds = time.monotonic() - started
        _log(result)
        return result

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def _new_fan(self) -> Fan:
        return Fan(
            self.settings,
            self.resources,
            http=self._http,
            cognito=self._cognito,
            boto_config=self._boto_config,
        )

    def _run_stages(
        self, run: _Run, result: ProbeResult, total_deadline: float
    ) -> None:
        first = STAGES.index(self.config.inject_at)
        handlers: dict[str, Callable[[_Run, float], None]] = {
            JOIN: self._join,
            FORWARD: self._wait_numbered,
            ADMISSION: self._wait_admitted,
            PURCHASE: self._purchase,
        }
        failed: StageResult | None = None
        for index, stage in enumerate(STAGES):
            stage_result = StageResult(stage)
            result.stages.append(stage_result)
            if failed is not None:
                stage_result.reason = f"not reached: stage {failed.stage} failed"
            elif index < first:
                stage_result.reason = f"skipped: injected at {self.config.inject_at}"
            else:
                self._time_stage(stage_result, total_deadline, run, handlers[stage])
            if stage_result.outcome in (FAILED, TIMED_OUT):
                failed = stage_result

    def _time_stage(
        self,
        stage_result: StageResult,
        total_deadline: float,
        run: _Run,
        handler: Callable[[_Run, float], None],
    ) -> None:
        started = time.monotonic()
        deadline = min(
            started + self.config.deadline_seconds(stage_result.stage), total_deadline
        )
        try:
            handler(run, deadline)
            if time.monotonic() > deadline:
                raise StageTimedOutError(
                    f"the stage passed, but only after its deadline of "
                    f"{self._deadline_text(stage_result.stage)}"
                )
            stage_result.outcome = PASSED
        except StageTimedOutError as exc:
            stage_result.outcome = TIMED_OUT
            stage_result.reason = str(exc)
        except (StageFailedError, BoxOfficeError) as exc:
            stage_result.outcome = FAILED
            stage_result.reason = str(exc)
        except (BotoCoreError, ClientError, httpx.HTTPError) as exc:
            stage_result.outcome = FAILED
            stage_result.reason = f"{type(exc).__name__}: {exc}"
        finally:
            stage_result.duration_seconds = time.monotonic() - started

    def _deadline_text(self, stage: str) -> str:
        return (
            f"{self.config.deadline_seconds(stage):g} s (total "
            f"{self.config.total_deadline_seconds:g} s)"
        )

    def _join(self, run: _Run, deadline: float) -> None:
        ensure_sale(self._dynamodb, self.resources, self.config.sale_id)
        try:
            joined = run.fan.join(self.config.sale_id, synthetic=True)
        finally:
            run.footprint.fan_id = run.fan.fan_id
        if not joined:
            raise StageFailedError(
                f"the join write for new identity {run.fan.fan_id} failed its "
                "condition: an item with that fan id already exists"
            )

    def _inject(self, run: _Run) -> None:
        """Write the synthetic fan into the funnel past the join, for pump mode."""
        sale_id = self.config.sale_id
        ensure_sale(self._dynamodb, self.resources, sale_id)
        fan_id = inject.new_fan_id(self.settings.region)
        run.footprint.fan_id = fan_id
        if self.config.inject_at == FORWARD:
            inject.write_join_item(self._dynamodb, self.resources, sale_id, fan_id)
        else:
            run.injected_number = inject.send_work_message(
                self._dynamodb, self._sqs, self.resources, sale_id, fan_id
            )
        run.fan.track(fan_id, sale_id, synthetic=True, dynamodb=self._dynamodb)

    def _wait_numbered(self, run: _Run, deadline: float) -> None:
        if self.config.inject_at == FORWARD:
            self._inject(run)
        self._wait(
            run,
            deadline,
            lambda view: view.queue_number is not None,
            lambda view: (
                "the forwarder did not number the fan: its item has no queue number"
            ),
        )

    def _wait_admitted(self, run: _Run, deadline: float) -> None:
        if self.config.inject_at == ADMISSION:
            self._inject(run)
        view = self._wait(
            run,
            deadline,
            lambda view: _check_number(view, run) and view.purchase_url is not None,
            _describe_wait,
        )
        run.footprint.window_id = _text(view.fan.get(schema.WINDOW_ID))
        url = view.purchase_url
        if url is not None:
            run.footprint.token_id = records.token_id_of(split_purchase_url(url)[1])

    def _purchase(self, run: _Run, deadline: float) -> None:
        view = run.view
        assert view is not None  # the admission stage passed
        run.fan.claim(view)
        purchase = run.fan.buy(
            self.config.quantity, view=view, idempotency_key=f"probe-{run.probe_id}"
        )
        run.footprint.order_id = purchase.order_id
        if not purchase.dry_run or not purchase.synthetic:
            raise StageFailedError(
                f"the ticketing service treated the synthetic fan as real: order "
                f"{purchase.order_id} has dry_run={purchase.dry_run} and "
                f"synthetic={purchase.synthetic}; stock may have been taken"
            )
        after = run.fan.poll()
        if after.status != schema.PURCHASED:
            raise StageFailedError(
                f"the purchase was accepted, but the fan's status is "
                f"{after.status!r}, not {schema.PURCHASED!r}"
            )
        if self.cleaner.window_held(run.footprint):
            raise StageFailedError(
                f"the purchase was accepted, but window {run.footprint.window_id} is "
                "still held: the ticketing service did not free it"
            )

    def _wait(
        self,
        run: _Run,
        deadline: float,
        done: Callable[[FanView], bool],
        describe: Callable[[FanView], str],
    ) -> FanView:
        """Poll the fan until ``done``; fail on a dead end or at the deadline."""
        last_error: Exception | None = None
        while True:
            try:
                view = run.fan.poll()
            except (BotoCoreError, ClientError) as exc:
                last_error = exc
            else:
                last_error = None
                run.view = view
                if done(view):
                    return view
                _check_dead_end(view)
            if time.monotonic() >= deadline:
                raise StageTimedOutError(
                    _timeout_reason(run.view, describe, last_error)
                )
            pause = min(self.config.poll_interval_seconds, deadline - time.monotonic())
            time.sleep(max(pause, 0.0))


def _check_number(view: FanView, run: _Run) -> bool:
    # The forwarder leaves a synthetic fan written already numbered alone. A
    # forwarder that predates that rule renumbers it under the probe, so the
    # probe reports that instead of a window fault.
    injected = run.injected_number
    if injected is not None and view.queue_number not in (None, injected):
        raise StageFailedError(
            f"the forwarder renumbered the injected fan ({injected} -> "
            f"{view.queue_number}); deploy a forwarder that skips synthetic fans "
            "injected already numbered, or disable its event source mapping"
        )
    return True


def _check_dead_end(view: FanView) -> None:
    if not view.fan:
        raise StageFailedError("the fan's item disappeared from the queue table")
    if view.status in schema.FINAL_STATUSES:
        raise StageFailedError(
            f"the fan ended as {view.status!r} before it reached a purchase"
        )


def _timeout_reason(
    view: FanView | None,
    describe: Callable[[FanView], str],
    last_error: Exception | None,
) -> str:
    text = describe(view) if view is not None else "the fan's item could not be read"
    if last_error is not None:
        text += f"; last read failed: {last_error}"
    return text


def _describe_wait(view: FanView) -> str:
    sale = view.sale
    return (
        f"no window admitted the fan: status {view.status!r}, queue number "
        f"{view.queue_number}, {view.position.people_ahead} ahead, serving "
        f"{sale.get(schema.SERVING, 0)}, windows in use "
        f"{sale.get(schema.WINDOWS_IN_USE, 0)} of {sale.get(schema.WINDOW_COUNT, '?')}"
    )


def _text(value: object) -> str | None:
    return str(value) if value else None


def _log(result: ProbeResult) -> None:
    if result.healthy:
        logger.info("Probe %s: %s", result.probe_id, result.summary())
    else:
        logger.warning("Probe %s: %s", result.probe_id, result.summary())
