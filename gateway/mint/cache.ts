/**
 * NUT-19 cached responses: a wallet that lost the answer to a swap, mint or melt sends the same
 * request again and gets the same signatures instead of "already spent". Entries live in the mint's
 * SQLite file, written in the same transaction that spends the inputs or issues the quote, so a
 * crash can never leave work done without its answer kept; other processes on the file see them.
 * (PgMintStore keeps them in `mint_cached_responses` the same way.)
 */
import { createHash } from "node:crypto";
import type { Db } from "../../src/shared/sqlite.js";

/** How long answers are kept (seconds), advertised in /v1/info. */
export const CACHE_TTL_SECONDS = 3600;

export const CACHED_ENDPOINTS = [
  { method: "POST", path: "/v1/swap" },
  { method: "POST", path: "/v1/mint/bolt11" },
  { method: "POST", path: "/v1/melt/bolt11" },
] as const;

export type CachedPath = (typeof CACHED_ENDPOINTS)[number]["path"];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS cached_responses (
  key TEXT PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS cached_responses_created ON cached_responses (created_at);
`;

const now = () => Math.floor(Date.now() / 1000);

/**
 * The key of a request: its method, path and validated body (zod output, so field order and hex
 * case are canonical). Knowing a key's request means holding its inputs (or the quote id and
 * outputs), and the answer only helps whoever holds the blinding factors: nothing leaks that NUT-09
 * restore would not give anyway.
 */
export function cacheKey(path: CachedPath, body: unknown): string {
  return createHash("sha256").update(`POST ${path}\n`).update(JSON.stringify(body)).digest("hex");
}

export class ResponseCache {
  private readonly select;
  private readonly insert;
  private readonly pruneOld;
  private readonly remove;

  constructor(
    db: Db,
    readonly ttlSeconds = CACHE_TTL_SECONDS,
  ) {
    db.exec(SCHEMA);
    this.select = db.prepare("SELECT body FROM cached_responses WHERE key = ? AND created_at >= ?");
    this.insert = db.prepare(
      "INSERT OR REPLACE INTO cached_responses (key, body, created_at) VALUES (?, ?, ?)",
    );
    this.pruneOld = db.prepare("DELETE FROM cached_responses WHERE created_at < ?");
    this.remove = db.prepare("DELETE FROM cached_responses WHERE key = ?");
  }

  get<T>(key: string): T | undefined {
    const row = this.select.get(key, now() - this.ttlSeconds) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as T) : undefined;
  }

  /** Keeps an answer; call inside the transaction that did the work. Drops expired entries. */
  put(key: string, body: unknown): void {
    const t = now();
    this.pruneOld.run(t - this.ttlSeconds);
    this.insert.run(key, JSON.stringify(body), t);
  }

  delete(key: string): void {
    this.remove.run(key);
  }

  prune(): void {
    this.pruneOld.run(now() - this.ttlSeconds);
  }
}

/** The NUT-06 `19` entry: what is cached and for how long. */
export function cacheInfo(ttlSeconds = CACHE_TTL_SECONDS): {
  ttl: number;
  cached_endpoints: { method: string; path: string }[];
} {
  return { ttl: ttlSeconds, cached_endpoints: CACHED_ENDPOINTS.map((e) => ({ ...e })) };
}
