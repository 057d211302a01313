// A page's visible state: one section per phase, a trouble banner, and
// fields filled by id. The phase is also on the root's data-phase attribute.
import { troubleMessage } from "./trouble.js";

/** Return the view of the page whose phases live under `root`. */
export function pageView(root) {
  const sections = root.querySelectorAll("[data-show]");
  const banner = root.querySelector("#trouble");
  return {
    show(phase) {
      root.dataset.phase = phase;
      for (const section of sections) {
        section.hidden = !section.dataset.show.split(" ").includes(phase);
      }
    },
    set(id, text) {
      const element = root.querySelector(`#${id}`);
      if (element) element.textContent = text;
    },
    trouble(error, delaySeconds) {
      if (!error) {
        banner.hidden = true;
        banner.textContent = "";
        return;
      }
      // The console keeps the detail; the page says what the fan needs.
      console.warn("Retrying after:", error?.name, error?.message);
      banner.textContent = troubleMessage(error, delaySeconds);
      banner.hidden = false;
    },
  };
}
