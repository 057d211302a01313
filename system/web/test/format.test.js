import assert from "node:assert/strict";
import { test } from "node:test";
import { pageFor } from "../src/config.js";
import { countdownText, waitInWords } from "../src/format.js";

test("waits read as words", () => {
  assert.equal(waitInWords(null), "working it out…");
  assert.equal(waitInWords(30), "less than a minute");
  assert.equal(waitInWords(60), "about 1 minute");
  assert.equal(waitInWords(600), "about 10 minutes");
  assert.equal(waitInWords(3 * 3600 + 600), "about 3 hours 10 min");
});

test("the countdown shows days and a clock", () => {
  assert.equal(countdownText(0), "00:00:00");
  assert.equal(countdownText(-5), "00:00:00");
  assert.equal(countdownText(61.2), "00:01:02");
  assert.equal(countdownText(2 * 86400 + 3723), "2 d 01:02:03");
});

test("links between pages keep the chosen sale", () => {
  assert.equal(pageFor("queue.html", "?sale=a%20b"), "queue.html?sale=a%20b");
  assert.equal(pageFor("./", ""), "./");
});
