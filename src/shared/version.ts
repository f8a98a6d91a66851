import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (where package.json is): ../.. from src/shared under vitest, ../../.. from dist/. */
function findPackage(): { root: string; version: string } {
  for (const rel of ["../../package.json", "../../../package.json"]) {
    try {
      const url = new URL(rel, import.meta.url);
      const pkg = JSON.parse(readFileSync(url, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "owlrun-mcp" && pkg.version)
        return { root: dirname(fileURLToPath(url)), version: pkg.version };
    } catch {
      // try the next location
    }
  }
  return { root: process.cwd(), version: "0.0.0" };
}

const pkg = findPackage();

export const VERSION = pkg.version;
/** Files shipped next to dist/ (the `.well-known/` documents, `manifest/`) are read from here. */
export const PACKAGE_ROOT = pkg.root;

/**
 * The git commit of the running build: OWLRUN_COMMIT, else dist/build-info.json (written by
 * `npm run build`; from sources it is the last build's), else "unknown".
 */
function findCommit(): string {
  if (process.env.OWLRUN_COMMIT) return process.env.OWLRUN_COMMIT;
  try {
    const info = JSON.parse(readFileSync(join(pkg.root, "dist", "build-info.json"), "utf8")) as {
      commit?: unknown;
    };
    if (typeof info.commit === "string" && info.commit) return info.commit;
  } catch {
    // not built
  }
  return "unknown";
}

export const COMMIT = findCommit();
