// The fan's standing, worked out from the fan's item and the sale's counters.
// Attribute names and statuses follow system/schema.py.
import { estimatedWaitSeconds, peopleAhead } from "./position.js";

/** Turn a DynamoDB item (attribute value maps) into a plain object. */
export function plainItem(item) {
  if (!item) return null;
  const plain = {};
  for (const [name, value] of Object.entries(item)) {
    if ("S" in value) plain[name] = value.S;
    else if ("N" in value) plain[name] = Number(value.N);
    else if ("BOOL" in value) plain[name] = value.BOOL;
    else if ("NULL" in value) plain[name] = null;
  }
  return plain;
}

/** Return whether the sale takes fans now, by the sale's on-sale time. */
export function isOpen(sale, nowSeconds) {
  return !sale.on_sale_at || sale.on_sale_at <= nowSeconds;
}

/**
 * Describe the fan's place in the funnel.
 *
 * `phase` is one of: not_joined, joining (no number yet), waiting, admitted,
 * purchased, expired, sold_out. The numbers are set while waiting.
 */
export function standing(fan, sale) {
  if (!fan) return { phase: sale?.sold_out ? "sold_out" : "not_joined" };
  const status = fan.status;
  if (status === "admitted" && fan.purchase_url) {
    return { phase: "admitted", purchaseUrl: fan.purchase_url };
  }
  if (status === "purchased") return { phase: "purchased", orderId: fan.order_id };
  if (status === "expired") return { phase: "expired" };
  if (status === "sold_out" || sale?.sold_out) return { phase: "sold_out" };
  if (fan.queue_number === undefined || !sale) return { phase: "joining" };
  // The place counts this fan's own admission, so place 1 is next in line.
  const place = peopleAhead(fan.queue_number, sale.serving ?? 0);
  return {
    phase: "waiting",
    queueNumber: fan.queue_number,
    serving: sale.serving ?? 0,
    place,
    peopleAhead: Math.max(place - 1, 0),
    waitSeconds: estimatedWaitSeconds(place, sale.admission_rate ?? 0),
  };
}
