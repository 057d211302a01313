// Where a fan stands in line and when to ask again. The Python twin is
// system/position.py: keep the constants and formulas of both the same.

export const MIN_POLL_SECONDS = 2;
export const MAX_POLL_SECONDS = 60;
// A fan polls about ten times over its estimated wait: ten minutes out once
// a minute, half a minute out every three seconds.
export const POLL_FRACTION_OF_WAIT = 0.1;
// Each interval is drawn from base × (1 ± POLL_JITTER_RATIO), so fans who
// joined in the same second spread their polls.
export const POLL_JITTER_RATIO = 0.2;
// The interval while no wait can be estimated (no admission rate yet).
export const UNKNOWN_WAIT_POLL_SECONDS = 10;

// Retries after a failed call: doubling from the base, up to the maximum.
export const BACKOFF_BASE_SECONDS = 1;
export const BACKOFF_MAX_SECONDS = 30;

/**
 * Return the admissions still needed before this fan's turn: the fan's queue
 * number minus the number being served, own admission included, never
 * negative. 1 means the fan is next.
 */
export function peopleAhead(queueNumber, serving) {
  return Math.max(queueNumber - serving, 0);
}

/** Return the estimated wait in seconds, or null while no fan is admitted. */
export function estimatedWaitSeconds(ahead, admissionRate) {
  if (!(admissionRate > 0)) return null;
  return ahead / admissionRate;
}

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

/**
 * Return seconds until the next poll: a tenth of the estimated wait (or the
 * unknown-wait interval), jittered by ±20 %, all within the bounds.
 */
export function nextPollSeconds(waitSeconds, random = Math.random) {
  const base = clamp(
    waitSeconds === null ? UNKNOWN_WAIT_POLL_SECONDS : waitSeconds * POLL_FRACTION_OF_WAIT,
    MIN_POLL_SECONDS,
    MAX_POLL_SECONDS,
  );
  const low = clamp(base * (1 - POLL_JITTER_RATIO), MIN_POLL_SECONDS, MAX_POLL_SECONDS);
  const high = clamp(base * (1 + POLL_JITTER_RATIO), MIN_POLL_SECONDS, MAX_POLL_SECONDS);
  return low + random() * (high - low);
}

/** Return the pause after the n-th failure in a row: doubling, half jittered. */
export function backoffSeconds(failures, random = Math.random) {
  const ceiling = Math.min(
    BACKOFF_BASE_SECONDS * 2 ** Math.max(failures - 1, 0),
    BACKOFF_MAX_SECONDS,
  );
  return ceiling / 2 + (random() * ceiling) / 2;
}
