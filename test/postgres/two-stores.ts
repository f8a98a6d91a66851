/**
 * Contract tests run each case on both implementations of a store. `open()` gives two stores on
 * ONE shared state, as two processes would have: two connections to one SQLite file, or two
 * `PgDatabase` pools on one fresh PostgreSQL database.
 */
import { PgDatabase } from "../../src/shared/postgres.js";
import { testDatabase } from "../support/postgres.js";
import { tempDir } from "../support/cli-process.js";

export interface TwoStores<S> {
  a: S;
  b: S;
  /** the data dir (SQLite) the stores live in, or a fresh one (PostgreSQL) */
  dir: string;
  /** the first pool (PostgreSQL only) */
  database?: PgDatabase;
  close(): Promise<void>;
}

export interface Backend<S> {
  name: "sqlite" | "postgres";
  open(): Promise<TwoStores<S>>;
}

export function backends<S extends { close(): void }>(
  sqlite: (dir: string) => S,
  pg: (db: PgDatabase) => Promise<S>,
): Backend<S>[] {
  return [
    {
      name: "sqlite",
      async open() {
        const dir = tempDir();
        const a = sqlite(dir);
        const b = sqlite(dir);
        return {
          a,
          b,
          dir,
          async close() {
            a.close();
            b.close();
          },
        };
      },
    },
    {
      name: "postgres",
      async open() {
        const db = await testDatabase("contract");
        const one = await PgDatabase.open(db.url, { max: 8 });
        const two = await PgDatabase.open(db.url, { max: 8 });
        // Both processes migrate at start; the advisory lock makes it once.
        const [a, b] = await Promise.all([pg(one), pg(two)]);
        return {
          a,
          b,
          dir: tempDir(),
          database: one,
          async close() {
            a.close();
            b.close();
            await one.close();
            await two.close();
            await db.drop();
          },
        };
      },
    },
  ];
}
