// The "not on sale yet" page: counts down to the sale's opening and then
// sends the fan to the queue page, which takes the fan's place in line.
import { pageFor } from "./config.js";
import { connect } from "./fan.js";
import { countdownText } from "./format.js";
import { readSale } from "./line.js";
import { isOpen } from "./standing.js";
import { sleep, withRetry } from "./trouble.js";
import { pageView } from "./view.js";

// While counting, read the sale again now and then in case it was moved.
const SALE_RECHECK_SECONDS = 60;
const TICK_MS = 250;

const view = pageView(document.querySelector("main"));

async function countTo(opensAtSeconds, recheckAtMs) {
  view.set("opens-at", new Date(opensAtSeconds * 1000).toLocaleString());
  for (;;) {
    const now = Date.now();
    const left = opensAtSeconds - now / 1000;
    view.set("clock", countdownText(left));
    if (left <= 0 || now >= recheckAtMs) return;
    await sleep(TICK_MS);
  }
}

async function main() {
  view.show("loading");
  const { config, dynamodb } = await connect(view);
  const retry = { onTrouble: view.trouble, sleep };
  for (;;) {
    const sale = await withRetry(() => readSale(dynamodb, config), retry);
    if (!sale) return view.show("no_sale");
    if (sale.sold_out) return view.show("sold_out");
    if (isOpen(sale, Date.now() / 1000)) {
      view.show("opening");
      return location.replace(pageFor("queue.html", location.search));
    }
    view.show("counting");
    await countTo(sale.on_sale_at, Date.now() + SALE_RECHECK_SECONDS * (0.8 + 0.4 * Math.random()) * 1000);
    if (sale.on_sale_at <= Date.now() / 1000) {
      // The fan's clock says the sale is open: go straight to the line; the
      // queue page sends the fan back here if the sale was moved.
      view.show("opening");
      return location.replace(pageFor("queue.html", location.search));
    }
  }
}

main();
