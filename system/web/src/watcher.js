// The queue page's loop: join once, then poll the fan's item and the sale's
// counters until the fan is admitted or the sale ends for the fan.
import { isOpen, standing } from "./standing.js";
import { nextPollSeconds } from "./position.js";
import { withRetry } from "./trouble.js";

const FINAL_PHASES = new Set(["purchased", "expired", "sold_out"]);

/**
 * Watch the fan's place in line and return how the watch ended.
 *
 * `line` has readFan(), readSale() and join(). `render(standing)` draws the
 * page, and `onTrouble` reports retries. The result's `outcome` is
 * "admitted" (after calling `navigate` with the purchase URL), "not_open"
 * (after navigating to the countdown), a final phase, "no_sale", or
 * "other_sale" when this identity is in the line of the sale `otherSaleId`.
 */
export async function watchLine({ line, render, onTrouble, navigate, clock }) {
  const retry = { onTrouble, sleep: clock.sleep, random: clock.random };
  let joined = false;
  for (;;) {
    const [fan, sale] = await withRetry(
      () => Promise.all([line.readFan(), line.readSale()]),
      retry,
    );
    if (!sale) {
      render({ phase: "no_sale" });
      return { outcome: "no_sale" };
    }
    if (fan && fan.sale_id !== sale.sale_id) {
      return { outcome: "other_sale", otherSaleId: fan.sale_id };
    }
    if (!fan && !joined) {
      if (!isOpen(sale, clock.now() / 1000)) {
        navigate("countdown");
        return { outcome: "not_open" };
      }
      if (sale.sold_out) {
        render({ phase: "sold_out" });
        return { outcome: "sold_out" };
      }
      await withRetry(() => line.join(), retry);
      joined = true;
    }
    // Right after the join a read may not see the item yet, and the
    // forwarder numbers the fan a moment later.
    let view = standing(fan, sale);
    if (view.phase === "not_joined") view = { phase: "joining" };
    render(view);
    if (view.phase === "admitted") {
      navigate(view.purchaseUrl);
      return { outcome: "admitted" };
    }
    if (FINAL_PHASES.has(view.phase)) return { outcome: view.phase };
    // Until numbered, poll at the minimum interval, because the forwarder
    // numbers a fan shortly after the join.
    const wait = view.phase === "waiting" ? view.waitSeconds : 0;
    await clock.sleep(nextPollSeconds(wait, clock.random) * 1000);
  }
}
