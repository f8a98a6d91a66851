/**
 * The cluster's tables in the shared PostgreSQL database (component `cluster`): who is alive, which
 * process holds which node's socket, job bodies and oversized bus messages too big for a NOTIFY
 * payload, and when each background job last ran. Nothing here is money: losing every row only
 * makes processes forget each other until the next presence beat.
 */
import type { Migration } from "../../src/shared/index.js";

export const CLUSTER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      -- One row per gateway process. It is alive while its lease runs and its LISTEN connection
      -- (pid + backend_start, so a reused pid does not count) is still in pg_stat_activity: a
      -- process killed with -9 loses that connection at once, long before the lease ends.
      CREATE TABLE cluster_processes (
        id TEXT PRIMARY KEY,
        listener_pid INTEGER NOT NULL,
        listener_started TIMESTAMPTZ NOT NULL,
        lease_until TIMESTAMPTZ NOT NULL,
        -- holds this process is serving now (the stale-hold sweeper of any process skips them)
        live_holds TEXT[] NOT NULL DEFAULT '{}',
        started_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      -- The node sockets: one row per node, owned by the process holding its newest connection.
      CREATE TABLE cluster_nodes (
        node_id TEXT PRIMARY KEY,
        process_id TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        models JSONB NOT NULL,
        embed_models JSONB NOT NULL,
        free_tier_pct REAL NOT NULL,
        inflight INTEGER NOT NULL,
        draining BOOLEAN NOT NULL,
        ttfb_ms REAL,
        tokens_per_sec REAL,
        connected_at BIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      CREATE INDEX cluster_nodes_process ON cluster_nodes (process_id);
      -- A job offered to a node another process holds: the node pulls its body from any process.
      CREATE TABLE cluster_jobs (
        wire_id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL,
        body JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      -- A bus message over NOTIFY's 8000-byte payload limit; the notification carries its id.
      CREATE TABLE cluster_spill (
        id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      -- Background work done once per period across processes.
      CREATE TABLE cluster_runs (
        name TEXT PRIMARY KEY,
        ran_at TIMESTAMPTZ NOT NULL,
        by_process TEXT NOT NULL
      );
    `,
  },
];
