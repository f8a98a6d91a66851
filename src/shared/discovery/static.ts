/**
 * The static parts of the discovery documents live in the repo's `.well-known/` folder (shipped in
 * the npm package); `{{BASE_URL}}` in them becomes the running server's base URL.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../version.js";

export const WELL_KNOWN_DIR = join(PACKAGE_ROOT, ".well-known");

const cache = new Map<string, string>();

/** A JSON document from `.well-known/<name>`, with every `{{BASE_URL}}` filled in. */
export function wellKnownJson(name: string, baseUrl: string): Record<string, unknown> {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(join(WELL_KNOWN_DIR, name), "utf8");
    cache.set(name, text);
  }
  return JSON.parse(text.replaceAll("{{BASE_URL}}", baseUrl)) as Record<string, unknown>;
}

/** Discovery documents are public: any origin may read them. */
export const OPEN_CORS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
  "Access-Control-Allow-Headers": "Content-Type",
} as const;
