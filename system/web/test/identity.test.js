import assert from "node:assert/strict";
import { test } from "node:test";
import { FAN_ID_KEY, fanIdentity, moveFanId } from "../src/identity.js";
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
  const first = await fanIdentity(cognito, "pool", "s", storage, fakeLocks());
  const again = await fanIdentity(cognito, "pool", "s", storage, fakeLocks());
  assert.equal(first, again);
  assert.equal(cognito.calls, 1);
  assert.equal(storage.getItem(FAN_ID_KEY), first);
});

test("two tabs asking at once share one identity", async () => {
  const storage = new MemoryStorage();
  const cognito = fakeCognito();
  const locks = fakeLocks();
  const [one, two] = await Promise.all([
    fanIdentity(cognito, "pool", "s", storage, locks),
    fanIdentity(cognito, "pool", "s", storage, locks),
  ]);
  assert.equal(one, two);
  assert.equal(cognito.calls, 1);
});

test("each sale keeps its own identity", async () => {
  const storage = new MemoryStorage();
  const cognito = fakeCognito();
  const first = await fanIdentity(cognito, "pool", "spring", storage, null);
  const second = await fanIdentity(cognito, "pool", "autumn", storage, null);
  assert.notEqual(first, second);
  assert.equal(await fanIdentity(cognito, "pool", "spring", storage, null), first);
  assert.equal(storage.getItem(FAN_ID_KEY), first);
  assert.equal(await fanIdentity(cognito, "pool", "autumn", storage, null), second);
  assert.equal(cognito.calls, 2);
});

test("a last identity from before the per-sale record is reused", async () => {
  const storage = new MemoryStorage();
  storage.setItem(FAN_ID_KEY, "us-east-1:old");
  storage.setItem("boxoffice.identity_pool", "pool");
  const cognito = fakeCognito();
  assert.equal(await fanIdentity(cognito, "pool", "s", storage, null), "us-east-1:old");
  assert.equal(cognito.calls, 0);
});

test("an identity found in another sale's line moves to that sale", async () => {
  const storage = new MemoryStorage();
  const cognito = fakeCognito();
  const first = await fanIdentity(cognito, "pool", "spring", storage, null);
  moveFanId(storage, first, "winter", "spring");
  const fresh = await fanIdentity(cognito, "pool", "spring", storage, null);
  assert.notEqual(fresh, first);
  assert.equal(await fanIdentity(cognito, "pool", "winter", storage, null), first);
});

test("identities from another pool are dropped", async () => {
  const storage = new MemoryStorage();
  const cognito = fakeCognito();
  const old = await fanIdentity(cognito, "old-pool", "s", storage, null);
  const fresh = await fanIdentity(cognito, "new-pool", "s", storage, null);
  assert.notEqual(old, fresh);
  assert.equal(cognito.calls, 2);
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
