// What went wrong on a call, in words a fan understands, and the retry loop
// that backs off after each failure and says so.
import { backoffSeconds } from "./position.js";

const THROTTLE_NAMES = new Set([
  "ThrottlingException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "TooManyRequestsException",
  "LimitExceededException",
]);

/** Classify an error as "busy" (throttled or overloaded) or "unreachable". */
export function troubleKind(error) {
  const status = error?.$metadata?.httpStatusCode;
  if (THROTTLE_NAMES.has(error?.name) || status === 429 || status === 503) {
    return "busy";
  }
  return "unreachable";
}

/** Return the sentence the page shows while it waits to retry. */
export function troubleMessage(error, delaySeconds) {
  const wait = `Trying again in ${Math.max(Math.round(delaySeconds), 1)} s.`;
  if (troubleKind(error) === "busy") {
    return `The line is very busy right now. ${wait} Your place is kept.`;
  }
  return `We can't reach the line right now. ${wait} Your place is kept.`;
}

/**
 * Run `attempt` until it succeeds, backing off after each failure.
 *
 * `onTrouble(error, delaySeconds, failures)` is called before each pause, and
 * `onTrouble(null)` once the attempt succeeds after a failure.
 */
export async function withRetry(attempt, { onTrouble, sleep, random = Math.random }) {
  for (let failures = 1; ; failures += 1) {
    try {
      const result = await attempt();
      if (failures > 1) onTrouble(null);
      return result;
    } catch (error) {
      const delay = backoffSeconds(failures, random);
      onTrouble(error, delay, failures);
      await sleep(delay * 1000);
    }
  }
}

/** Pause for `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
