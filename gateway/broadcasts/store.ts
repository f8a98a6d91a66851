/**
 * Operator broadcasts (Owlrun's `GET /v1/broadcasts`): announcements with an optional expiry,
 * kept in `<data>/broadcasts.sqlite` so `owlrun-mcp gateway broadcast …` can publish and expire
 * them from a shell while the gateway runs. The admin token that guards the HTTP admin route is
 * a random file in the data dir (0600), made on first use. With `--database-url` both live in
 * PostgreSQL instead (pg.ts), so every gateway process shows the same broadcasts and takes one token.
 */
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as z from "zod";
import { SqliteStore } from "../../src/shared/sqlite.js";

export const BROADCAST_LEVELS = ["info", "warning", "critical"] as const;

export const BroadcastSchema = z
  .object({
    id: z.string(),
    message: z.string(),
    level: z.enum(BROADCAST_LEVELS),
    created_at: z.string().meta({ description: "ISO 8601" }),
    expires_at: z.string().nullable().meta({ description: "ISO 8601; null: until expired by hand" }),
  })
  .meta({ id: "Broadcast" });
export type Broadcast = z.infer<typeof BroadcastSchema>;

/** What an operator publishes (HTTP body and CLI flags alike). */
export const PublishBroadcastSchema = z.object({
  message: z.string().trim().min(1).max(2000),
  level: z.enum(BROADCAST_LEVELS).default("info"),
  expires_at: z.iso.datetime({ offset: true }).optional(),
  expires_in_seconds: z
    .number()
    .int()
    .positive()
    .max(366 * 86_400)
    .optional(),
});
export type PublishBroadcast = z.input<typeof PublishBroadcastSchema>;

export interface BroadcastRow {
  id: string;
  message: string;
  level: Broadcast["level"];
  created_at: number;
  expires_at: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS broadcasts (
  id TEXT PRIMARY KEY,
  message TEXT NOT NULL,
  level TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS broadcasts_expiry ON broadcasts (expires_at);
`;

export const view = (r: BroadcastRow): Broadcast => ({
  id: r.id,
  message: r.message,
  level: r.level,
  created_at: new Date(r.created_at).toISOString(),
  expires_at: r.expires_at === null ? null : new Date(r.expires_at).toISOString(),
});

export class BroadcastError extends Error {}

/** The row an operator's input makes (validated: expiry in the future, one way to give it). */
export function broadcastRow(input: PublishBroadcast, now: number): BroadcastRow {
  const b = PublishBroadcastSchema.parse(input);
  if (b.expires_at && b.expires_in_seconds)
    throw new BroadcastError("give expires_at or expires_in_seconds, not both");
  const expires = b.expires_at
    ? Date.parse(b.expires_at)
    : b.expires_in_seconds
      ? now + b.expires_in_seconds * 1000
      : null;
  if (expires !== null && expires <= now) throw new BroadcastError("expires_at is in the past");
  return { id: randomUUID(), message: b.message, level: b.level, created_at: now, expires_at: expires };
}

/** Operator broadcasts; each method one atomic step. */
export interface BroadcastStore {
  publish(input: PublishBroadcast, now?: number): Promise<Broadcast>;
  /** Ends a broadcast now; false when there is no such live broadcast. */
  expire(id: string, now?: number): Promise<boolean>;
  /** Live broadcasts, newest first. */
  active(now?: number): Promise<Broadcast[]>;
  /** Every broadcast, live or not, newest first (the operator's list). */
  all(limit?: number): Promise<Broadcast[]>;
  close(): void;
}

export class SqliteBroadcastStore extends SqliteStore implements BroadcastStore {
  static open(dataDir: string): SqliteBroadcastStore {
    return new SqliteBroadcastStore(join(dataDir, "broadcasts.sqlite"), SCHEMA);
  }

  async publish(input: PublishBroadcast, now = Date.now()): Promise<Broadcast> {
    const row = broadcastRow(input, now);
    this.prepared(
      "INSERT INTO broadcasts (id, message, level, created_at, expires_at) VALUES (@id, @message, @level, @created_at, @expires_at)",
    ).run(row);
    return view(row);
  }

  async expire(id: string, now = Date.now()): Promise<boolean> {
    return (
      this.prepared(
        "UPDATE broadcasts SET expires_at = ? WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)",
      ).run(now, id, now).changes === 1
    );
  }

  async active(now = Date.now()): Promise<Broadcast[]> {
    return (
      this.prepared(
        "SELECT * FROM broadcasts WHERE expires_at IS NULL OR expires_at > ? ORDER BY created_at DESC, id LIMIT 100",
      ).all(now) as BroadcastRow[]
    ).map(view);
  }

  async all(limit = 100): Promise<Broadcast[]> {
    return (
      this.prepared("SELECT * FROM broadcasts ORDER BY created_at DESC, id LIMIT ?").all(
        limit,
      ) as BroadcastRow[]
    ).map(view);
  }
}

/** The admin token of a gateway data dir, made (0600) on first use. */
export function adminToken(dataDir: string): string {
  const path = join(dataDir, "admin-token");
  if (!existsSync(path)) {
    try {
      writeFileSync(path, `owlr_admin_${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  chmodSync(path, 0o600);
  return readFileSync(path, "utf8").trim();
}

/** Constant-time comparison of a presented token with the admin token. */
export function isAdminToken(presented: string | undefined, token: string): boolean {
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
