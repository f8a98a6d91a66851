/**
 * Presence: which gateway processes are alive and which node sockets each holds, in the shared
 * database. Each process renews its lease and republishes its nodes every beat (and at once when a
 * node connects or drops); the others read it on their beat and when told it changed. A process is
 * alive while its lease runs AND its LISTEN connection is in pg_stat_activity: kill -9 closes that
 * connection, so a dead holder is noticed within one beat, not at the end of its lease.
 */
import type { PgDatabase } from "../../src/shared/index.js";
import type { LocalNodeInfo } from "../routing/index.js";
import type pg from "pg";

export interface PresenceRow {
  nodeId: string;
  processId: string;
  keyHash: string;
  models: string[];
  embedModels: string[];
  freeTierPct: number;
  inflight: number;
  draining: boolean;
  ttfbMs?: number;
  tokensPerSec?: number;
  connectedAt: number;
}

export interface PresenceView {
  /** processes alive now, this one included */
  alive: Set<string>;
  /** nodes held by alive processes */
  nodes: PresenceRow[];
}

/** SQL: a process row is alive (lease running, LISTEN connection still there). */
const ALIVE = `p.lease_until > now() AND EXISTS (
  SELECT 1 FROM pg_stat_activity a WHERE a.pid = p.listener_pid AND a.backend_start = p.listener_started)`;

export class Presence {
  constructor(
    private readonly db: PgDatabase,
    readonly processId: string,
    private readonly leaseMs: number,
  ) {}

  /** Records this process (again, after its LISTEN connection was replaced), identified from that very connection. */
  async join(listener: pg.Client): Promise<void> {
    await listener.query(
      `INSERT INTO cluster_processes (id, listener_pid, listener_started, lease_until)
       SELECT $1, pid, backend_start, now() + make_interval(secs => $2::float8 / 1000)
         FROM pg_stat_activity WHERE pid = pg_backend_pid()
       ON CONFLICT (id) DO UPDATE SET listener_pid = EXCLUDED.listener_pid,
         listener_started = EXCLUDED.listener_started, lease_until = EXCLUDED.lease_until`,
      [this.processId, this.leaseMs],
    );
  }

  /**
   * Renews the lease and replaces this process's node rows, in one statement (so a reader sees the
   * old set or the new one). A node another process holds a newer connection of is left alone.
   */
  async publish(nodes: LocalNodeInfo[], liveHolds: string[]): Promise<boolean> {
    const [row] = await this.db.query<{ n: number }>(
      `WITH me AS (
         UPDATE cluster_processes SET lease_until = now() + make_interval(secs => $2::float8 / 1000),
           live_holds = $3 WHERE id = $1 RETURNING id),
       input AS (
         SELECT * FROM jsonb_to_recordset($4::jsonb) AS x(node_id text, key_hash text, models jsonb,
           embed_models jsonb, free_tier_pct real, inflight int, draining boolean, ttfb_ms real,
           tokens_per_sec real, connected_at bigint)),
       up AS (
         INSERT INTO cluster_nodes (node_id, process_id, key_hash, models, embed_models, free_tier_pct,
           inflight, draining, ttfb_ms, tokens_per_sec, connected_at, updated_at)
         SELECT node_id, $1, key_hash, models, embed_models, free_tier_pct, inflight, draining, ttfb_ms,
           tokens_per_sec, connected_at, now() FROM input WHERE EXISTS (SELECT 1 FROM me)
         ON CONFLICT (node_id) DO UPDATE SET process_id = EXCLUDED.process_id, key_hash = EXCLUDED.key_hash,
           models = EXCLUDED.models, embed_models = EXCLUDED.embed_models,
           free_tier_pct = EXCLUDED.free_tier_pct, inflight = EXCLUDED.inflight,
           draining = EXCLUDED.draining, ttfb_ms = EXCLUDED.ttfb_ms,
           tokens_per_sec = EXCLUDED.tokens_per_sec, connected_at = EXCLUDED.connected_at,
           updated_at = now()
         WHERE cluster_nodes.process_id = EXCLUDED.process_id
            OR cluster_nodes.connected_at <= EXCLUDED.connected_at
            OR NOT EXISTS (SELECT 1 FROM cluster_processes p WHERE p.id = cluster_nodes.process_id AND ${ALIVE})
         RETURNING node_id),
       del AS (
         DELETE FROM cluster_nodes WHERE process_id = $1 AND node_id NOT IN (SELECT node_id FROM input)
           AND EXISTS (SELECT 1 FROM me))
       SELECT count(*)::int AS n FROM me`,
      [
        this.processId,
        this.leaseMs,
        liveHolds,
        JSON.stringify(
          nodes.map((n) => ({
            node_id: n.nodeId,
            key_hash: n.keyHash,
            models: n.models,
            embed_models: n.embedModels,
            free_tier_pct: n.freeTierPct,
            inflight: n.inflight,
            draining: n.draining,
            ttfb_ms: n.ttfbMs ?? null,
            tokens_per_sec: n.tokensPerSec ?? null,
            connected_at: n.connectedAt,
          })),
        ),
      ],
    );
    // false: this process's row is gone (it was taken for dead); the caller joins again
    return (row?.n ?? 0) > 0;
  }

  /** The alive processes and the nodes they hold. */
  async read(): Promise<PresenceView> {
    const procs = await this.db.query<{ id: string }>(`SELECT p.id FROM cluster_processes p WHERE ${ALIVE}`);
    const alive = new Set(procs.map((p) => p.id));
    const rows = await this.db.query<{
      node_id: string;
      process_id: string;
      key_hash: string;
      models: string[];
      embed_models: string[];
      free_tier_pct: number;
      inflight: number;
      draining: boolean;
      ttfb_ms: number | null;
      tokens_per_sec: number | null;
      connected_at: number;
    }>("SELECT * FROM cluster_nodes");
    const nodes = rows
      .filter((r) => alive.has(r.process_id))
      .map((r) => ({
        nodeId: r.node_id,
        processId: r.process_id,
        keyHash: r.key_hash,
        models: r.models,
        embedModels: r.embed_models,
        freeTierPct: r.free_tier_pct,
        inflight: r.inflight,
        draining: r.draining,
        ...(r.ttfb_ms !== null ? { ttfbMs: r.ttfb_ms } : {}),
        ...(r.tokens_per_sec !== null ? { tokensPerSec: r.tokens_per_sec } : {}),
        connectedAt: r.connected_at,
      }));
    return { alive, nodes };
  }

  /** Holds other alive processes are serving now (the stale-hold sweeper must leave them alone). */
  async holdsServedElsewhere(): Promise<Set<string>> {
    const rows = await this.db.query<{ hold: string }>(
      `SELECT DISTINCT unnest(p.live_holds) AS hold FROM cluster_processes p WHERE p.id <> $1 AND ${ALIVE}`,
      [this.processId],
    );
    return new Set(rows.map((r) => r.hold));
  }

  /** Forgets processes dead for a minute, their nodes, and job bodies and spills nobody fetched. */
  async prune(): Promise<void> {
    await this.db.query(
      `WITH gone AS (DELETE FROM cluster_processes WHERE lease_until < now() - interval '1 minute' RETURNING id)
       DELETE FROM cluster_nodes WHERE process_id IN (SELECT id FROM gone)`,
    );
    await this.db.query("DELETE FROM cluster_jobs WHERE created_at < now() - interval '1 day'");
    await this.db.query("DELETE FROM cluster_spill WHERE created_at < now() - interval '1 hour'");
  }

  /** A clean shutdown: the others stop routing here at once. */
  async leave(): Promise<void> {
    await this.db.query(
      `WITH gone AS (DELETE FROM cluster_processes WHERE id = $1 RETURNING id)
       DELETE FROM cluster_nodes WHERE process_id = $1`,
      [this.processId],
    );
  }
}
