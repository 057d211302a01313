import assert from "node:assert/strict";
import { test } from "node:test";
import { isOpen, plainItem, standing } from "../src/standing.js";

const sale = { sale_id: "s", serving: 10, admission_rate: 2, sold_out: false };

test("plain items carry strings, numbers and booleans", () => {
  const item = plainItem({ a: { S: "x" }, b: { N: "1.5" }, c: { BOOL: true } });
  assert.deepEqual(item, { a: "x", b: 1.5, c: true });
  assert.equal(plainItem(undefined), null);
});

test("a numbered fan waits with people ahead and a wait", () => {
  const fan = { fan_id: "f", sale_id: "s", status: "waiting", queue_number: 30 };
  const view = standing(fan, sale);
  assert.equal(view.phase, "waiting");
  assert.equal(view.place, 20);
  assert.equal(view.peopleAhead, 19);
  assert.equal(view.waitSeconds, 10);
});

test("a fan with no number yet is joining", () => {
  assert.equal(standing({ fan_id: "f", sale_id: "s" }, sale).phase, "joining");
});

test("an admitted fan gets the purchase URL", () => {
  const fan = { status: "admitted", queue_number: 11, purchase_url: "http://x/p?token=t" };
  assert.deepEqual(standing(fan, sale), {
    phase: "admitted",
    purchaseUrl: "http://x/p?token=t",
  });
});

test("sold out shows for a waiting fan and for a fan not yet in line", () => {
  const soldOut = { ...sale, sold_out: true };
  assert.equal(standing({ status: "waiting", queue_number: 30 }, soldOut).phase, "sold_out");
  assert.equal(standing({ status: "sold_out" }, sale).phase, "sold_out");
  assert.equal(standing(null, soldOut).phase, "sold_out");
});

test("final statuses win over the sale's flag", () => {
  const soldOut = { ...sale, sold_out: true };
  assert.equal(standing({ status: "purchased", order_id: "o" }, soldOut).orderId, "o");
  assert.equal(standing({ status: "expired" }, soldOut).phase, "expired");
});

test("a sale is open from its on-sale time", () => {
  assert.ok(isOpen({ on_sale_at: 100 }, 100));
  assert.ok(!isOpen({ on_sale_at: 100 }, 99.5));
  assert.ok(isOpen({ on_sale_at: 0 }, 1));
});
