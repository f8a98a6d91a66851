/**
 * Routing's SQLite store, `<dataDir>/routing.sqlite`: provider keys (sha256 only, never the key),
 * node registrations, per-node usage disputes and daily job counts. Every writing method is one
 * `BEGIN IMMEDIATE` transaction, so a shell command (`gateway provider-key`) can add a key while a
 * gateway runs on the same file. A node id belongs to the key that first registered it: earnings are
 * booked to node ids, so another key must never take one over.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Db, immediate, openDatabase } from "../../src/shared/sqlite.js";
import { PROVIDER_KEY_PREFIX, type RegisterBody } from "./protocol.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS provider_keys (
  key_hash TEXT PRIMARY KEY, created_at INTEGER NOT NULL, source TEXT NOT NULL, revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS nodes (
  node_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, models TEXT NOT NULL, lightning_address TEXT,
  redeem_threshold_sats INTEGER, region TEXT, version TEXT, registration TEXT NOT NULL,
  first_registered_at INTEGER NOT NULL, registered_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_key ON nodes (key_hash, registered_at);
CREATE TABLE IF NOT EXISTS disputes (
  node_id TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at INTEGER NOT NULL, last_note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS node_days (
  node_id TEXT NOT NULL, day TEXT NOT NULL, jobs INTEGER NOT NULL, tokens INTEGER NOT NULL,
  PRIMARY KEY (node_id, day));
`;

export const hashProviderKey = (key: string): string => createHash("sha256").update(key).digest("hex");

/** UTC day, the unit of `jobs_today` / `tokens_today`. */
export const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export interface NodeRow {
  node_id: string;
  key_hash: string;
  /** JSON string[] */
  models: string;
  lightning_address: string | null;
  redeem_threshold_sats: number | null;
  region: string | null;
  version: string | null;
  /** the registration body as JSON (without the key) */
  registration?: string | null;
  first_registered_at: number;
  registered_at: number;
}

export interface DisputeRow {
  node_id: string;
  count: number;
  last_at: number;
  last_note: string;
}

export class RoutingStore {
  private readonly db: Db;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // WAL + busy timeout: the provider-key command may write while a gateway runs on the file.
    this.db = openDatabase(join(dataDir, "routing.sqlite"), SCHEMA);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private tx<T>(fn: () => T): T {
    return immediate(this.db, fn);
  }

  // ---- keys -------------------------------------------------------------------------------------

  /** A new provider key; only its hash is stored, the caller hands the key out once. */
  createKey(source = "api"): string {
    const key = `${PROVIDER_KEY_PREFIX}${randomBytes(24).toString("base64url")}`;
    this.tx(() =>
      this.db
        .prepare("INSERT INTO provider_keys (key_hash, created_at, source) VALUES (?, ?, ?)")
        .run(hashProviderKey(key), Date.now(), source),
    );
    return key;
  }

  /** The key's hash when the key is known and not revoked. */
  keyHash(key: string): string | undefined {
    if (!key.startsWith(PROVIDER_KEY_PREFIX) || key.length > 256) return undefined;
    const hash = hashProviderKey(key);
    const row = this.db
      .prepare("SELECT 1 FROM provider_keys WHERE key_hash = ? AND revoked_at IS NULL")
      .get(hash);
    return row ? hash : undefined;
  }

  /** Revokes a key; true when it was valid. */
  revokeKey(key: string): boolean {
    return this.tx(
      () =>
        this.db
          .prepare("UPDATE provider_keys SET revoked_at = ? WHERE key_hash = ? AND revoked_at IS NULL")
          .run(Date.now(), hashProviderKey(key)).changes === 1,
    );
  }

  // ---- nodes ------------------------------------------------------------------------------------

  /** Records a registration; false when the node id already belongs to another key. */
  register(keyHash: string, body: RegisterBody): boolean {
    return this.tx(() => {
      const owner = this.db.prepare("SELECT key_hash FROM nodes WHERE node_id = ?").get(body.node_id) as
        { key_hash: string } | undefined;
      if (owner && owner.key_hash !== keyHash) return false;
      const now = Date.now();
      this.db
        .prepare(
          `INSERT INTO nodes (node_id, key_hash, models, lightning_address, redeem_threshold_sats, region,
             version, registration, first_registered_at, registered_at)
           VALUES (@node_id, @key_hash, @models, @la, @threshold, @region, @version, @reg, @now, @now)
           ON CONFLICT(node_id) DO UPDATE SET models = @models, lightning_address = @la,
             redeem_threshold_sats = @threshold, region = @region, version = @version,
             registration = @reg, registered_at = @now`,
        )
        .run({
          node_id: body.node_id,
          key_hash: keyHash,
          models: JSON.stringify(body.models),
          la: body.lightning_address ?? null,
          threshold: body.redeem_threshold_sats || null,
          region: body.region ?? null,
          version: body.version ?? null,
          reg: JSON.stringify({ ...body, api_key: undefined }),
          now,
        });
      return true;
    });
  }

  /** The node a key registered last: the one its WebSocket speaks for. */
  nodeForKeyHash(keyHash: string): NodeRow | undefined {
    return this.db
      .prepare("SELECT * FROM nodes WHERE key_hash = ? ORDER BY registered_at DESC, rowid DESC LIMIT 1")
      .get(keyHash) as NodeRow | undefined;
  }

  node(nodeId: string): NodeRow | undefined {
    return this.db.prepare("SELECT * FROM nodes WHERE node_id = ?").get(nodeId) as NodeRow | undefined;
  }

  // ---- disputes and daily counts ----------------------------------------------------------------

  recordDispute(nodeId: string, note: string): void {
    this.tx(() =>
      this.db
        .prepare(
          `INSERT INTO disputes (node_id, count, last_at, last_note) VALUES (?, 1, ?, ?)
           ON CONFLICT(node_id) DO UPDATE SET count = count + 1, last_at = excluded.last_at,
             last_note = excluded.last_note`,
        )
        .run(nodeId, Date.now(), note.slice(0, 500)),
    );
  }

  dispute(nodeId: string): DisputeRow | undefined {
    return this.db.prepare("SELECT * FROM disputes WHERE node_id = ?").get(nodeId) as DisputeRow | undefined;
  }

  /** Every node whose usage reports disagreed with the gateway's count, worst first. */
  disputes(): DisputeRow[] {
    return this.db.prepare("SELECT * FROM disputes ORDER BY count DESC, last_at DESC").all() as DisputeRow[];
  }

  recordJob(nodeId: string, tokens: number, at = Date.now()): void {
    this.tx(() =>
      this.db
        .prepare(
          `INSERT INTO node_days (node_id, day, jobs, tokens) VALUES (?, ?, 1, ?)
           ON CONFLICT(node_id, day) DO UPDATE SET jobs = jobs + 1, tokens = tokens + excluded.tokens`,
        )
        .run(nodeId, dayOf(at), tokens),
    );
  }

  today(nodeId: string, at = Date.now()): { jobs: number; tokens: number } {
    const row = this.db
      .prepare("SELECT jobs, tokens FROM node_days WHERE node_id = ? AND day = ?")
      .get(nodeId, dayOf(at)) as { jobs: number; tokens: number } | undefined;
    return row ?? { jobs: 0, tokens: 0 };
  }
}

/**
 * `owlrun-mcp gateway provider-key --data-dir DIR`: mints a provider key into a gateway's data dir.
 * Safe while a gateway runs on the same file (WAL, one short write transaction).
 */
export function createProviderKey(dataDir: string): string {
  const store = new RoutingStore(dataDir);
  try {
    return store.createKey("cli");
  } finally {
    store.close();
  }
}
