import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BACKOFF_MAX_SECONDS,
  MAX_POLL_SECONDS,
  MIN_POLL_SECONDS,
  UNKNOWN_WAIT_POLL_SECONDS,
  backoffSeconds,
  estimatedWaitSeconds,
  nextPollSeconds,
  peopleAhead,
} from "../src/position.js";

const lowest = () => 0;
const highest = () => 1;

test("people ahead is the queue number minus the number served", () => {
  assert.equal(peopleAhead(120, 100), 20);
  assert.equal(peopleAhead(5, 9), 0);
});

test("the wait is people ahead over the admission rate", () => {
  assert.equal(estimatedWaitSeconds(30, 2), 15);
  assert.equal(estimatedWaitSeconds(0, 2), 0);
  assert.equal(estimatedWaitSeconds(30, 0), null);
});

test("the poll interval is a tenth of the wait, jittered by a fifth", () => {
  assert.equal(nextPollSeconds(300, lowest), 24);
  assert.equal(nextPollSeconds(300, highest), 36);
  assert.equal(nextPollSeconds(300, () => 0.5), 30);
});

test("the poll interval stays within its bounds, jitter included", () => {
  assert.equal(nextPollSeconds(0, lowest), MIN_POLL_SECONDS);
  assert.equal(nextPollSeconds(0, highest), MIN_POLL_SECONDS * 1.2);
  assert.equal(nextPollSeconds(36_000, highest), MAX_POLL_SECONDS);
  assert.equal(nextPollSeconds(36_000, lowest), MAX_POLL_SECONDS * 0.8);
});

test("an unknown wait polls at its own interval", () => {
  assert.equal(nextPollSeconds(null, () => 0.5), UNKNOWN_WAIT_POLL_SECONDS);
});

test("backoff doubles per failure and stops at its ceiling", () => {
  const top = (failures) => backoffSeconds(failures, highest);
  assert.equal(top(1), 1);
  assert.equal(top(2), 2);
  assert.equal(top(3), 4);
  assert.equal(top(20), BACKOFF_MAX_SECONDS);
  assert.equal(backoffSeconds(3, lowest), 2);
});
