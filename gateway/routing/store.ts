/**
 * Provider keys (stored as sha256 only), node registrations and per-node usage disputes, in
 * `<dataDir>/routing.sqlite`. A node id belongs to the key that first registered it.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { PROVIDER_KEY_PREFIX, type RegisterBody } from "./protocol.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS provider_keys (key_hash TEXT PRIMARY KEY, created_at INTEGER NOT NULL, note TEXT);
CREATE TABLE IF NOT EXISTS nodes (
  node_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, models TEXT NOT NULL, lightning_address TEXT, region TEXT,
  version TEXT, registration TEXT NOT NULL, registered_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_key ON nodes (key_hash, registered_at);
CREATE TABLE IF NOT EXISTS disputes (node_id TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at INTEGER NOT NULL, last_note TEXT);
`;

export const hashProviderKey = (key: string) => createHash("sha256").update(key).digest("hex");

export interface NodeRow {
  node_id: string;
  key_hash: string;
  models: string;
  lightning_address: string | null;
  region: string | null;
  version: string | null;
  registered_at: number;
}

export class RoutingStore {
  private readonly db: Database.Database;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(dataDir, "routing.sqlite"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 10000");
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  /** A new provider key; only its hash is kept. Works while a gateway runs on the same file. */
  createKey(note?: string): string {
    const key = `${PROVIDER_KEY_PREFIX}${randomBytes(24).toString("base64url")}`;
    this.db
      .prepare("INSERT INTO provider_keys (key_hash, created_at, note) VALUES (?, ?, ?)")
      .run(hashProviderKey(key), Date.now(), note ?? null);
    return key;
  }

  isKnownKey(key: string): boolean {
    return !!this.db.prepare("SELECT 1 FROM provider_keys WHERE key_hash = ?").get(hashProviderKey(key));
  }

  /** Records a registration; false when the node id belongs to another key. */
  register(key: string, body: RegisterBody): boolean {
    const keyHash = hashProviderKey(key);
    return this.db
      .transaction(() => {
        const owner = this.db.prepare("SELECT key_hash FROM nodes WHERE node_id = ?").get(body.node_id) as
          { key_hash: string } | undefined;
        if (owner && owner.key_hash !== keyHash) return false;
        this.db
          .prepare(
            `INSERT INTO nodes (node_id, key_hash, models, lightning_address, region, version, registration, registered_at)
             VALUES (@node_id, @key_hash, @models, @la, @region, @version, @reg, @at)
             ON CONFLICT(node_id) DO UPDATE SET models = @models, lightning_address = @la, region = @region,
               version = @version, registration = @reg, registered_at = @at`,
          )
          .run({
            node_id: body.node_id,
            key_hash: keyHash,
            models: JSON.stringify(body.models),
            la: body.lightning_address || null,
            region: body.region ?? null,
            version: body.version ?? null,
            reg: JSON.stringify(body),
            at: Date.now(),
          });
        return true;
      })
      .immediate();
  }

  /** The node a key last registered: the one its websocket speaks for. */
  nodeForKey(key: string): NodeRow | undefined {
    return this.db
      .prepare("SELECT * FROM nodes WHERE key_hash = ? ORDER BY registered_at DESC LIMIT 1")
      .get(hashProviderKey(key)) as NodeRow | undefined;
  }

  node(nodeId: string): NodeRow | undefined {
    return this.db.prepare("SELECT * FROM nodes WHERE node_id = ?").get(nodeId) as NodeRow | undefined;
  }

  recordDispute(nodeId: string, note: string): void {
    this.db
      .prepare(
        `INSERT INTO disputes (node_id, count, last_at, last_note) VALUES (?, 1, ?, ?)
         ON CONFLICT(node_id) DO UPDATE SET count = count + 1, last_at = excluded.last_at, last_note = excluded.last_note`,
      )
      .run(nodeId, Date.now(), note);
  }

  disputes(nodeId: string): number {
    return (
      (
        this.db.prepare("SELECT count FROM disputes WHERE node_id = ?").get(nodeId) as
          { count: number } | undefined
      )?.count ?? 0
    );
  }
}

/** `owlrun-mcp gateway provider-key`: mints a key into a gateway data dir. */
export function createProviderKey(dataDir: string, note?: string): string {
  const store = new RoutingStore(dataDir);
  try {
    return store.createKey(note ?? "cli");
  } finally {
    store.close();
  }
}
