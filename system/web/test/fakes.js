// Test doubles: an in-memory localStorage, a clock whose sleeps return at
// once, and SDK-shaped errors.

export class MemoryStorage {
  constructor() {
    this.values = new Map();
  }
  getItem(key) {
    return this.values.has(key) ? this.values.get(key) : null;
  }
  setItem(key, value) {
    this.values.set(key, String(value));
  }
  removeItem(key) {
    this.values.delete(key);
  }
}

export function fakeClock(start = 1_000_000) {
  const clock = {
    ms: start,
    sleeps: [],
    now: () => clock.ms,
    random: () => 0.5,
    sleep: async (ms) => {
      clock.sleeps.push(ms);
      clock.ms += ms;
    },
  };
  return clock;
}

export function sdkError(name, status = 400) {
  const error = new Error(name);
  error.name = name;
  error.$metadata = { httpStatusCode: status };
  return error;
}
