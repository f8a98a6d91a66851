/**
 * Operator broadcasts (Owlrun's `GET /v1/broadcasts`) and the admin token that guards publishing
 * them: `<data>/broadcasts.sqlite` and `<data>/admin-token` by default, PostgreSQL with
 * `--database-url` (shared by every gateway process). This file is the folder's only door.
 */
import { privateDir, type PgDatabase } from "../../src/shared/index.js";
import { PgBroadcastStore } from "./pg.js";
import { adminToken, type BroadcastStore, SqliteBroadcastStore } from "./store.js";

export * from "./store.js";
export { copyBroadcastsFromSqlite, PgBroadcastStore } from "./pg.js";

export async function openBroadcastStore(dataDir: string, database?: PgDatabase): Promise<BroadcastStore> {
  if (database) return PgBroadcastStore.open(database);
  privateDir(dataDir);
  return SqliteBroadcastStore.open(dataDir);
}

/** The admin token: the data dir's file, or the one in PostgreSQL every process shares. */
export async function adminTokenOf(dataDir: string, database?: PgDatabase): Promise<string> {
  if (!database) return adminToken(dataDir);
  return (await PgBroadcastStore.open(database)).adminToken();
}
