import assert from "node:assert/strict";
import { test } from "node:test";
import { FAN_ID_KEY, fanIdentity, forgetFanId } from "../src/identity.js";
import { joinLine } from "../src/line.js";
import { MemoryStorage, sdkError } from "./fakes.js";

function fakeCognito() {
  const cognito = {
    calls: 0,
    send: async () => {
      cognito.calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { IdentityId: `us-east-1:fan-${cognito.calls}` };
    },
  };
  return cognito;
}

// Runs lock holders one after another, as the browser's Web Locks do.
function fakeLocks() {
  let tail = Promise.resolve();
  return {
    request: (name, work) => {
      const run = tail.then(work);
      tail = run.catch(() => {});
      return run;
    },
  };
}

test("the identity is created once and then read from storage", async () => {
  const storage = new MemoryStorage();
  const cognito = fakeCognito();
  const first = await fanIdentity(cognito, "pool", storage, fakeLocks());
  const again = await fanIdentity(cognito, "pool", storage, fakeLocks());
  assert.equal(first, again);
  assert.equal(cognito.calls, 1);
  assert.equal(storage.getItem(FAN_ID_KEY), first);
});

test("two tabs asking at once share one identity", async () => {
  const storage = new MemoryStorage();
  const cognito = fakeCognito();
  const locks = fakeLocks();
  const [one, two] = await Promise.all([
    fanIdentity(cognito, "pool", storage, locks),
    fanIdentity(cognito, "pool", storage, locks),
  ]);
  assert.equal(one, two);
  assert.equal(cognito.calls, 1);
});

test("an identity from another pool is replaced, and can be forgotten", async () => {
  const storage = new MemoryStorage();
  const cognito = fakeCognito();
  const old = await fanIdentity(cognito, "old-pool", storage, null);
  const fresh = await fanIdentity(cognito, "new-pool", storage, null);
  assert.notEqual(old, fresh);
  forgetFanId(storage, fresh);
  assert.equal(storage.getItem(FAN_ID_KEY), null);
});

test("joining writes only the browser's attributes, conditionally", async () => {
  const sent = [];
  const dynamodb = { send: async (command) => sent.push(command.input) };
  const config = { queue_table: "q", sale_id: "s" };
  assert.equal(await joinLine(dynamodb, config, "f", 1234.4), true);
  assert.deepEqual(Object.keys(sent[0].Item).sort(), [
    "client_time",
    "fan_id",
    "sale_id",
    "synthetic",
  ]);
  assert.equal(sent[0].Item.client_time.N, "1234");
  assert.equal(sent[0].ConditionExpression, "attribute_not_exists(fan_id)");
});

test("joining again keeps the place; other errors propagate", async () => {
  const config = { queue_table: "q", sale_id: "s" };
  const taken = {
    send: async () => {
      throw sdkError("ConditionalCheckFailedException");
    },
  };
  assert.equal(await joinLine(taken, config, "f"), false);
  const throttled = {
    send: async () => {
      throw sdkError("ThrottlingException");
    },
  };
  await assert.rejects(joinLine(throttled, config, "f"), { name: "ThrottlingException" });
});
