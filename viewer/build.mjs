// SPDX-License-Identifier: Apache-2.0
// Bundles the viewer into the folder the hub serves at / (hub/http/static/viewer/).
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.env.VIEWER_OUT || join(here, "..", "hub", "http", "static", "viewer");

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "iife",
  target: ["es2020"],
  outfile: join(out, "viewer.js"),
  loader: { ".png": "file", ".svg": "file" },
  logLevel: "info",
});
await copyFile(join(here, "src", "index.html"), join(out, "index.html"));
console.log(`viewer built into ${out}`);
