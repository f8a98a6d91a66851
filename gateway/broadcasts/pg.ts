/**
 * Broadcasts and the admin token in PostgreSQL (`broadcasts_…`), for several gateway processes on
 * one database: a broadcast published through any of them (or the CLI) shows on all, and they all
 * take the same admin token. Every method is one statement (READ COMMITTED).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { PgDatabase } from "../../src/shared/index.js";
import { copyTable, openSqliteForCopy } from "../sqlite-copy.js";
import {
  type Broadcast,
  type BroadcastRow,
  type BroadcastStore,
  broadcastRow,
  type PublishBroadcast,
  view,
} from "./store.js";

const MIGRATIONS = [
  {
    version: 1,
    sql: `
CREATE TABLE broadcasts_messages (
  id TEXT PRIMARY KEY, message TEXT NOT NULL, level TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT);
CREATE INDEX broadcasts_messages_created ON broadcasts_messages (created_at DESC, id);
CREATE TABLE broadcasts_admin_token (one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), token TEXT NOT NULL);`,
  },
];

export class PgBroadcastStore implements BroadcastStore {
  private constructor(private readonly db: PgDatabase) {}

  static async open(db: PgDatabase): Promise<PgBroadcastStore> {
    await db.migrate("broadcasts", MIGRATIONS);
    return new PgBroadcastStore(db);
  }

  async publish(input: PublishBroadcast, now = Date.now()): Promise<Broadcast> {
    const row = broadcastRow(input, now);
    await this.db.query(
      "INSERT INTO broadcasts_messages (id, message, level, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
      [row.id, row.message, row.level, row.created_at, row.expires_at],
    );
    return view(row);
  }

  async expire(id: string, now = Date.now()): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE broadcasts_messages SET expires_at = $1 WHERE id = $2 AND (expires_at IS NULL OR expires_at > $1)
       RETURNING id`,
      [now, id],
    );
    return rows.length === 1;
  }

  async active(now = Date.now()): Promise<Broadcast[]> {
    const rows = await this.db.query<BroadcastRow>(
      `SELECT * FROM broadcasts_messages WHERE expires_at IS NULL OR expires_at > $1
       ORDER BY created_at DESC, id LIMIT 100`,
      [now],
    );
    return rows.map(view);
  }

  async all(limit = 100): Promise<Broadcast[]> {
    const rows = await this.db.query<BroadcastRow>(
      "SELECT * FROM broadcasts_messages ORDER BY created_at DESC, id LIMIT $1",
      [limit],
    );
    return rows.map(view);
  }

  /**
   * The admin token every process shares: the first process (or `gateway admin-token`) makes it,
   * the others find it. `candidate` is what a new token would be (the data dir's, when copying).
   */
  async adminToken(candidate = `owlr_admin_${randomBytes(32).toString("hex")}`): Promise<string> {
    await this.db.query("INSERT INTO broadcasts_admin_token (token) VALUES ($1) ON CONFLICT DO NOTHING", [
      candidate,
    ]);
    return (await this.db.query<{ token: string }>("SELECT token FROM broadcasts_admin_token"))[0]!.token;
  }

  close(): void {
    // The pool belongs to the composition root.
  }
}

/**
 * `gateway migrate-sqlite`: every broadcast of `<dataDir>/broadcasts.sqlite`, and the data dir's
 * admin token (so the operator's scripts keep working) unless the database has one already.
 */
export async function copyBroadcastsFromSqlite(
  dataDir: string,
  database: PgDatabase,
): Promise<{ broadcasts: number; admin_token: number }> {
  const store = await PgBroadcastStore.open(database);
  const tokenFile = join(dataDir, "admin-token");
  let admin_token = 0;
  if (existsSync(tokenFile)) {
    const token = readFileSync(tokenFile, "utf8").trim();
    if (token) admin_token = (await store.adminToken(token)) === token ? 1 : 0;
  }
  const sqlite = openSqliteForCopy(join(dataDir, "broadcasts.sqlite"));
  if (!sqlite) return { broadcasts: 0, admin_token };
  try {
    const broadcasts = await database.tx((c) =>
      copyTable(c, sqlite, "broadcasts", "broadcasts_messages", [
        "id",
        "message",
        "level",
        "created_at",
        "expires_at",
      ]),
    );
    return { broadcasts, admin_token };
  } finally {
    sqlite.close();
  }
}
