/**
 * Routing's store: `RoutingStore` is the async interface (each method one atomic step),
 * `SqliteRoutingStore` the embedded default `<dataDir>/routing.sqlite`, `PgRoutingStore`
 * (store-pg.ts) the one several gateway processes share. Provider keys (sha256 only, never the key),
 * node registrations, per-node usage disputes and daily job counts. Every writing method is one
 * `BEGIN IMMEDIATE` transaction, so a shell command (`gateway provider-key`) can add a key while a
 * gateway runs on the same file. A node id belongs to the key that first registered it: earnings are
 * booked to node ids, so another key must never take one over.
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { privateDir } from "../../src/shared/index.js";
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
CREATE TABLE IF NOT EXISTS free_jobs (node_id TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
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
  /** the registration body as sent (JSON) */
  registration: string;
  first_registered_at: number;
  registered_at: number;
}

export interface DisputeRow {
  node_id: string;
  count: number;
  last_at: number;
  last_note: string;
}

/** What routing keeps: keys, registrations, disputes, failures, karma and daily counts. */
export interface RoutingStore {
  /** A new provider key; only its hash is stored, the caller hands the key out once. */
  createKey(source?: string): Promise<string>;
  /** The key's hash when the key is known and not revoked. */
  keyHash(key: string): Promise<string | undefined>;
  /** Revokes a key (for every process on the store); true when it was valid. */
  revokeKey(key: string): Promise<boolean>;
  /** Of these key hashes, the ones revoked (or unknown): their sessions must end. */
  revokedAmong(keyHashes: readonly string[]): Promise<string[]>;
  /** Records a registration; false when the node id already belongs to another key. */
  register(keyHash: string, body: RegisterBody): Promise<boolean>;
  /** The node a key registered last: the one its WebSocket speaks for. */
  nodeForKeyHash(keyHash: string): Promise<NodeRow | undefined>;
  node(nodeId: string): Promise<NodeRow | undefined>;
  recordDispute(nodeId: string, note: string): Promise<void>;
  dispute(nodeId: string): Promise<DisputeRow | undefined>;
  /** Every node whose usage reports disagreed with the gateway's count, worst first. */
  disputes(): Promise<DisputeRow[]>;
  /** A job this node failed after its first token (the buyer paid nothing, the node earned nothing). */
  recordFailure(nodeId: string, note: string): Promise<void>;
  failure(nodeId: string): Promise<DisputeRow | undefined>;
  /** A free-tier job this node completed: its karma (free jobs earn karma, not sats). */
  recordFreeJob(nodeId: string): Promise<void>;
  freeJobs(nodeId: string): Promise<number>;
  recordJob(nodeId: string, tokens: number, at?: number): Promise<void>;
  today(nodeId: string, at?: number): Promise<{ jobs: number; tokens: number }>;
  close(): void;
}

/** A new provider key (the caller stores its hash). */
export const newProviderKey = (): string => `${PROVIDER_KEY_PREFIX}${randomBytes(24).toString("base64url")}`;

/** The hash to look a presented key up by; undefined for what cannot be a provider key. */
export const lookupHash = (key: string): string | undefined =>
  key.startsWith(PROVIDER_KEY_PREFIX) && key.length <= 256 ? hashProviderKey(key) : undefined;

/** The registration columns of a body (the key itself never stored). */
export function registrationOf(body: RegisterBody) {
  return {
    node_id: body.node_id,
    models: JSON.stringify(body.models),
    la: body.lightning_address ?? null,
    threshold: body.redeem_threshold_sats || null,
    region: body.region ?? null,
    version: body.version ?? null,
    reg: JSON.stringify({ ...body, api_key: undefined }),
  };
}

export class SqliteRoutingStore implements RoutingStore {
  private readonly db: Db;

  constructor(dataDir: string) {
    privateDir(dataDir);
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

  async createKey(source = "api"): Promise<string> {
    const key = newProviderKey();
    this.tx(() =>
      this.db
        .prepare("INSERT INTO provider_keys (key_hash, created_at, source) VALUES (?, ?, ?)")
        .run(hashProviderKey(key), Date.now(), source),
    );
    return key;
  }

  async keyHash(key: string): Promise<string | undefined> {
    const hash = lookupHash(key);
    if (!hash) return undefined;
    const row = this.db
      .prepare("SELECT 1 FROM provider_keys WHERE key_hash = ? AND revoked_at IS NULL")
      .get(hash);
    return row ? hash : undefined;
  }

  async revokeKey(key: string): Promise<boolean> {
    return this.tx(
      () =>
        this.db
          .prepare("UPDATE provider_keys SET revoked_at = ? WHERE key_hash = ? AND revoked_at IS NULL")
          .run(Date.now(), hashProviderKey(key)).changes === 1,
    );
  }

  async revokedAmong(keyHashes: readonly string[]): Promise<string[]> {
    const live = this.db.prepare("SELECT 1 FROM provider_keys WHERE key_hash = ? AND revoked_at IS NULL");
    return keyHashes.filter((h) => !live.get(h));
  }

  // ---- nodes ------------------------------------------------------------------------------------

  async register(keyHash: string, body: RegisterBody): Promise<boolean> {
    return this.tx(() => {
      const owner = this.db.prepare("SELECT key_hash FROM nodes WHERE node_id = ?").get(body.node_id) as
        { key_hash: string } | undefined;
      if (owner && owner.key_hash !== keyHash) return false;
      this.db
        .prepare(
          `INSERT INTO nodes (node_id, key_hash, models, lightning_address, redeem_threshold_sats, region,
             version, registration, first_registered_at, registered_at)
           VALUES (@node_id, @key_hash, @models, @la, @threshold, @region, @version, @reg, @now, @now)
           ON CONFLICT(node_id) DO UPDATE SET models = @models, lightning_address = @la,
             redeem_threshold_sats = @threshold, region = @region, version = @version,
             registration = @reg, registered_at = @now`,
        )
        .run({ ...registrationOf(body), key_hash: keyHash, now: Date.now() });
      return true;
    });
  }

  async nodeForKeyHash(keyHash: string): Promise<NodeRow | undefined> {
    return this.db
      .prepare("SELECT * FROM nodes WHERE key_hash = ? ORDER BY registered_at DESC, rowid DESC LIMIT 1")
      .get(keyHash) as NodeRow | undefined;
  }

  async node(nodeId: string): Promise<NodeRow | undefined> {
    return this.db.prepare("SELECT * FROM nodes WHERE node_id = ?").get(nodeId) as NodeRow | undefined;
  }

  // ---- disputes and daily counts ----------------------------------------------------------------

  async recordDispute(nodeId: string, note: string): Promise<void> {
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

  async dispute(nodeId: string): Promise<DisputeRow | undefined> {
    return this.db.prepare("SELECT * FROM disputes WHERE node_id = ?").get(nodeId) as DisputeRow | undefined;
  }

  async disputes(): Promise<DisputeRow[]> {
    return this.db.prepare("SELECT * FROM disputes ORDER BY count DESC, last_at DESC").all() as DisputeRow[];
  }

  async recordFailure(nodeId: string, note: string): Promise<void> {
    this.tx(() =>
      this.db
        .prepare(
          `INSERT INTO failures (node_id, count, last_at, last_note) VALUES (?, 1, ?, ?)
           ON CONFLICT(node_id) DO UPDATE SET count = count + 1, last_at = excluded.last_at,
             last_note = excluded.last_note`,
        )
        .run(nodeId, Date.now(), note.slice(0, 500)),
    );
  }

  async recordFreeJob(nodeId: string): Promise<void> {
    this.tx(() =>
      this.db
        .prepare(
          "INSERT INTO free_jobs (node_id, count) VALUES (?, 1) ON CONFLICT(node_id) DO UPDATE SET count = count + 1",
        )
        .run(nodeId),
    );
  }

  async freeJobs(nodeId: string): Promise<number> {
    const row = this.db.prepare("SELECT count FROM free_jobs WHERE node_id = ?").get(nodeId) as
      { count: number } | undefined;
    return row?.count ?? 0;
  }

  async failure(nodeId: string): Promise<DisputeRow | undefined> {
    return this.db.prepare("SELECT * FROM failures WHERE node_id = ?").get(nodeId) as DisputeRow | undefined;
  }

  async recordJob(nodeId: string, tokens: number, at = Date.now()): Promise<void> {
    this.tx(() =>
      this.db
        .prepare(
          `INSERT INTO node_days (node_id, day, jobs, tokens) VALUES (?, ?, 1, ?)
           ON CONFLICT(node_id, day) DO UPDATE SET jobs = jobs + 1, tokens = tokens + excluded.tokens`,
        )
        .run(nodeId, dayOf(at), tokens),
    );
  }

  async today(nodeId: string, at = Date.now()): Promise<{ jobs: number; tokens: number }> {
    const row = this.db
      .prepare("SELECT jobs, tokens FROM node_days WHERE node_id = ? AND day = ?")
      .get(nodeId, dayOf(at)) as { jobs: number; tokens: number } | undefined;
    return row ?? { jobs: 0, tokens: 0 };
  }
}
