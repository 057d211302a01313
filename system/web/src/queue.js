// The queue page: finds or takes the fan's place, then shows it until the
// fan's turn comes and sends the fan to the purchase page.
import { pageFor } from "./config.js";
import { connect } from "./fan.js";
import { count, waitInWords } from "./format.js";
import { moveFanId } from "./identity.js";
import { joinLine, readFan, readSale } from "./line.js";
import { sleep } from "./trouble.js";
import { pageView } from "./view.js";
import { watchLine } from "./watcher.js";

const view = pageView(document.querySelector("main"));
const clock = { now: Date.now, random: Math.random, sleep };

function render(state) {
  view.show(state.phase);
  if (state.phase === "waiting") {
    view.set("place", count(state.place));
    view.set("queue-number", count(state.queueNumber));
    view.set("people-ahead", count(state.peopleAhead));
    view.set("serving", count(state.serving));
    view.set("wait", waitInWords(state.waitSeconds));
  } else if (state.phase === "admitted") {
    document.querySelector("#purchase-link").href = state.purchaseUrl;
  } else if (state.phase === "purchased") {
    view.set("order-id", state.orderId ?? "");
  }
}

function navigate(target) {
  if (target === "countdown") location.replace(pageFor("./", location.search));
  else location.assign(target);
}

async function main() {
  view.show("loading");
  for (;;) {
    const { config, fanId, dynamodb } = await connect(view);
    document.querySelector("main").dataset.fanId = fanId;
    const result = await watchLine({
      line: {
        readFan: () => readFan(dynamodb, config, fanId),
        readSale: () => readSale(dynamodb, config),
        join: () => joinLine(dynamodb, config, fanId),
      },
      render,
      onTrouble: view.trouble,
      navigate,
      clock,
    });
    if (result.outcome !== "other_sale") return;
    // One identity holds one place, and this one is in another sale's line.
    moveFanId(localStorage, fanId, result.otherSaleId, config.sale_id);
  }
}

main();
