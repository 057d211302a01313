// Builds dist/: the fans' static pages and their scripts, bundled with the
// AWS SDK. dist/ is what gets uploaded to S3 (with a config.json beside it)
// and what the ticketing service serves on the embedded stack.
import { cp, mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));
const dist = `${here}dist`;

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await esbuild.build({
  absWorkingDir: here,
  entryPoints: ["src/countdown.js", "src/queue.js"],
  bundle: true,
  // ES modules with splitting: both pages share one cached SDK chunk.
  format: "esm",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  outdir: "dist",
  logLevel: "warning",
});
await cp(`${here}static`, dist, { recursive: true });
console.log(`Built the fan pages into ${dist}`);
