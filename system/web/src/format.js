// Numbers and durations as the pages show them.

/** Return a wait in words: "less than a minute", "about 5 minutes", ... */
export function waitInWords(seconds) {
  if (seconds === null || seconds === undefined) return "working it out…";
  if (seconds < 60) return "less than a minute";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} minute${minutes === 1 ? "" : "s"}`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  const hourText = `${hours} hour${hours === 1 ? "" : "s"}`;
  return rest ? `about ${hourText} ${rest} min` : `about ${hourText}`;
}

/** Return a countdown as "2 d 03:04:05" or "03:04:05". */
export function countdownText(seconds) {
  const whole = Math.max(Math.ceil(seconds), 0);
  const days = Math.floor(whole / 86400);
  const clock = [
    Math.floor((whole % 86400) / 3600),
    Math.floor((whole % 3600) / 60),
    whole % 60,
  ]
    .map((part) => String(part).padStart(2, "0"))
    .join(":");
  return days ? `${days} d ${clock}` : clock;
}

/** Return a count with thousands separators. */
export function count(value) {
  return Number(value).toLocaleString("en");
}
