import assert from "node:assert/strict";
import { test } from "node:test";
import { troubleKind, troubleMessage, withRetry } from "../src/trouble.js";
import { watchLine } from "../src/watcher.js";
import { fakeClock, sdkError } from "./fakes.js";

// A line that plays back one fan item per poll; the sale is open.
function scriptedLine(fans, sale = { sale_id: "s", serving: 0, admission_rate: 1 }) {
  const line = {
    joins: 0,
    reads: 0,
    readFan: async () => fans[Math.min(line.reads++, fans.length - 1)],
    readSale: async () => sale,
    join: async () => {
      line.joins += 1;
      return true;
    },
  };
  return line;
}

function watch(line, clock, extra = {}) {
  const seen = { phases: [], troubles: [], navigated: [] };
  const outcome = watchLine({
    line,
    clock,
    render: (view) => seen.phases.push(view.phase),
    onTrouble: (error, delay) => seen.troubles.push(error && troubleMessage(error, delay)),
    navigate: (target) => seen.navigated.push(target),
    ...extra,
  });
  return outcome.then((result) => ({ ...seen, ...result }));
}

test("a new fan joins once, waits, and is sent to the purchase URL", async () => {
  const waiting = { sale_id: "s", status: "waiting", queue_number: 3 };
  const line = scriptedLine([
    null,
    { sale_id: "s" },
    waiting,
    { ...waiting, status: "admitted", purchase_url: "http://t/purchase?token=x" },
  ]);
  const seen = await watch(line, fakeClock());
  assert.equal(seen.outcome, "admitted");
  assert.equal(line.joins, 1);
  assert.deepEqual(seen.phases, ["joining", "joining", "waiting", "admitted"]);
  assert.deepEqual(seen.navigated, ["http://t/purchase?token=x"]);
});

test("a fan already in line keeps the place and does not join again", async () => {
  const line = scriptedLine([{ sale_id: "s", status: "purchased", order_id: "o1" }]);
  const seen = await watch(line, fakeClock());
  assert.equal(seen.outcome, "purchased");
  assert.equal(line.joins, 0);
});

test("before the sale opens the fan goes back to the countdown", async () => {
  const clock = fakeClock(1_000_000);
  const line = scriptedLine([null], { sale_id: "s", on_sale_at: 2_000 });
  const seen = await watch(line, clock);
  assert.equal(seen.outcome, "not_open");
  assert.deepEqual(seen.navigated, ["countdown"]);
  assert.equal(line.joins, 0);
});

test("a late fan sees sold out and takes no place", async () => {
  const line = scriptedLine([null], { sale_id: "s", sold_out: true });
  const seen = await watch(line, fakeClock());
  assert.equal(seen.outcome, "sold_out");
  assert.equal(line.joins, 0);
});

test("an identity in another sale's line is reported", async () => {
  const line = scriptedLine([{ sale_id: "other", status: "waiting", queue_number: 1 }]);
  const seen = await watch(line, fakeClock());
  assert.equal(seen.outcome, "other_sale");
  assert.equal(seen.otherSaleId, "other");
});

test("polls come at the adaptive interval, jittered", async () => {
  const far = { sale_id: "s", status: "waiting", queue_number: 1000 };
  const line = scriptedLine([far, far, { sale_id: "s", status: "expired" }]);
  const clock = fakeClock();
  clock.random = () => 1; // the longest jitter
  await watch(line, clock);
  // 1000 ahead at 1 fan/s is a long wait: the interval is at its maximum.
  assert.deepEqual(clock.sleeps, [60_000, 60_000]);
});

test("throttling backs off, says so, and clears once a poll succeeds", async () => {
  const line = scriptedLine([{ sale_id: "s", status: "waiting", queue_number: 2 }]);
  let failures = 2;
  line.readFan = async () => {
    if (failures-- > 0) throw sdkError("ProvisionedThroughputExceededException");
    return { sale_id: "s", status: "expired" };
  };
  const clock = fakeClock();
  const seen = await watch(line, clock);
  assert.equal(seen.outcome, "expired");
  assert.equal(seen.troubles.length, 3);
  assert.match(seen.troubles[0], /very busy.*Trying again in 1 s/);
  assert.match(seen.troubles[1], /Trying again in 2 s/);
  assert.equal(seen.troubles[2], null);
  assert.deepEqual(clock.sleeps, [750, 1500]);
});

test("errors are told apart: throttled or unreachable", () => {
  assert.equal(troubleKind(sdkError("ThrottlingException")), "busy");
  assert.equal(troubleKind(sdkError("InternalServerError", 503)), "busy");
  assert.equal(troubleKind(new TypeError("Failed to fetch")), "unreachable");
  assert.match(troubleMessage(new TypeError("x"), 4.4), /can't reach.*in 4 s/);
});

test("withRetry returns the first success", async () => {
  let calls = 0;
  const clock = fakeClock();
  const result = await withRetry(
    async () => {
      calls += 1;
      if (calls < 3) throw new TypeError("Failed to fetch");
      return "ok";
    },
    { onTrouble: () => {}, sleep: clock.sleep, random: () => 1 },
  );
  assert.equal(result, "ok");
  assert.deepEqual(clock.sleeps, [1000, 2000]);
});
