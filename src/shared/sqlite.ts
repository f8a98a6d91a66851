/**
 * How every store opens SQLite: WAL (readers never block the writer), NORMAL sync (durable at
 * checkpoints, fast commits), a busy timeout so writers in other processes wait instead of failing,
 * and the schema applied idempotently.
 */
import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import Database from "better-sqlite3";

export type Db = Database.Database;

/**
 * Stores hold spendable ecash (proofs, change tokens, keys): the database is created 0600 before
 * SQLite opens it (SQLite gives its -wal/-shm files the database's mode), and files an older
 * version left 0644 are tightened.
 */
function makePrivate(path: string): void {
  if (path === ":memory:" || path === "") return;
  if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
  for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
}

export function openDatabase(path: string, schema: string): Db {
  makePrivate(path);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 10000");
  db.exec(schema);
  return db;
}

/** Runs `fn` in one BEGIN IMMEDIATE transaction: the write lock is taken up front, so checks and writes are atomic across processes. */
export function immediate<T>(db: Db, fn: () => T): T {
  return db.transaction(fn).immediate();
}

/** A store over one SQLite file: the connection, closing it, and atomic write transactions. */
export abstract class SqliteStore {
  readonly db: Db;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(path: string, schema: string) {
    this.db = openDatabase(path, schema);
  }

  /** A prepared statement, compiled once per connection (preparing costs more than most hot queries). */
  protected prepared(text: string): Database.Statement {
    let stmt = this.statements.get(text);
    if (!stmt) {
      stmt = this.db.prepare(text);
      this.statements.set(text, stmt);
    }
    return stmt;
  }

  /** The text of every statement prepared so far (tests check each one's query plan). */
  preparedStatements(): string[] {
    return [...this.statements.keys()];
  }

  close(): void {
    this.db.close();
  }

  protected tx<T>(fn: () => T): T {
    return immediate(this.db, fn);
  }
}
