// The stack's settings for the page: region, endpoint, identity pool, table
// names and the default sale. Served as config.json beside the pages.

const REQUIRED = ["region", "identity_pool_id", "queue_table", "sales_table", "sale_id"];

/** Fetch config.json; a `sale` query parameter picks another sale. */
export async function loadConfig(fetchImpl, search) {
  const response = await fetchImpl("config.json", { cache: "no-store" });
  if (!response.ok) {
    const error = new Error(`config.json answered HTTP ${response.status}`);
    error.$metadata = { httpStatusCode: response.status };
    throw error;
  }
  const config = await response.json();
  const missing = REQUIRED.filter((name) => !config[name]);
  if (missing.length) {
    throw new Error(`config.json lacks ${missing.join(", ")}`);
  }
  const sale = new URLSearchParams(search).get("sale");
  return { ...config, sale_id: sale || config.sale_id };
}

/** Return a page's address that keeps the chosen sale in its query. */
export function pageFor(page, search) {
  const sale = new URLSearchParams(search).get("sale");
  return sale ? `${page}?sale=${encodeURIComponent(sale)}` : page;
}
