// `npm run devnet`: builds only when a source is newer than the build (a build is ~20 s here).
import { execSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const SOURCES = ["src", "gateway", "provider", "tools", "web", ".well-known"];
const FILES = ["package.json", "tsconfig.json", "scripts/build-web.mjs"];
const OUTPUTS = ["dist/src/cli.js", "dist/web/app.js"];

const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

/** The newest modification time under a directory. */
function newest(dir) {
  let t = mtime(dir);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : mtime(p));
  }
  return t;
}

const built = Math.min(...OUTPUTS.map(mtime));
const changed = Math.max(...SOURCES.map((d) => (mtime(d) < 0 ? -1 : newest(d))), ...FILES.map(mtime));
if (built < 0 || changed > built) execSync("npm run build --silent", { stdio: "inherit" });
