// Bundles the browser chat (web/) into dist/web: one ESM script, one stylesheet and index.html.
// Everything the page needs is served by the gateway itself: no CDN, no external font or script.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "web");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: {
    app: join(root, "web", "main.ts"),
    topup: join(root, "web", "topup.ts"),
    style: join(root, "web", "style.css"),
  },
  outdir: out,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});
for (const file of ["index.html", "topup.html", "favicon.svg"])
  copyFileSync(join(root, "web", file), join(out, file));
