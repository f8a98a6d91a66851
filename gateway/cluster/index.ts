/**
 * Several gateway processes on one PostgreSQL database (`--database-url`) route jobs to each other.
 * A node's WebSocket is held by one process; a buyer request landing on another is dispatched to it
 * through routing's ClusterLink: the body goes into `cluster_jobs`, the offer, cancel and the
 * node's frames travel over LISTEN/NOTIFY (bus.ts), and presence (presence.ts) says who holds
 * which node and who is alive. When the holder dies, its buyers' attempts end exactly as when a
 * node's socket drops (failover before the first token, failed and unbilled after).
 * This folder's only door.
 */
import { randomBytes } from "node:crypto";
import { errorMessage, type Logger, type PgDatabase } from "../../src/shared/index.js";
import type {
  ClusterLink,
  GatewayMessage,
  ModelOffer,
  NodeJob,
  RemoteBody,
  RemoteNodeStatus,
  Routing,
} from "../routing/index.js";
import { runOncePerPeriod } from "./background.js";
import { Bus, type BusStats } from "./bus.js";
import type { BusMessage } from "./messages.js";
import { Presence, type PresenceView } from "./presence.js";
import { Relay, RemoteNodeView } from "./remote-node.js";
import { CLUSTER_MIGRATIONS } from "./schema.js";

export { claimPeriod, runOncePerPeriod, serially } from "./background.js";
export { Bus, type BusStats, MAX_PAYLOAD_BYTES } from "./bus.js";
export type { BusMessage } from "./messages.js";
export { CLUSTER_MIGRATIONS } from "./schema.js";

export interface ClusterOptions {
  database: PgDatabase;
  routing: Pick<Routing, "joinCluster">;
  log: Logger;
  /** how often presence is published and read (and dead holders noticed); default 1 s */
  beatMs?: number;
  /** a process that stops renewing its lease is taken for dead after this; default 15 s */
  leaseMs?: number;
  /** holds this process is serving now (published for the other processes' stale-hold sweepers) */
  liveHolds?: () => Iterable<string>;
}

export interface Cluster {
  readonly processId: string;
  /** Runs `fn` in this process if no other ran `name` within the period; undefined otherwise. */
  once<T>(name: string, periodMs: number, fn: () => Promise<T>): Promise<T | undefined>;
  /** holds other alive processes are serving */
  holdsServedElsewhere(): Promise<Set<string>>;
  /** publishes and reads presence now (tests, and after a change) */
  beat(): Promise<void>;
  /** bus traffic since start */
  stats(): BusStats;
  close(): Promise<void>;
}

interface Tracked {
  job: NodeJob;
  node: RemoteNodeView;
  /** where the offer went (the node may move meanwhile; this job's frames come from here) */
  holder: string;
  /** the holder ended the relay itself (done, reject, gone): no `end` needed */
  holderEnded: boolean;
}

export async function joinCluster(opts: ClusterOptions): Promise<Cluster> {
  const { database: db, log } = opts;
  await db.migrate("cluster", CLUSTER_MIGRATIONS);
  const processId = randomBytes(8).toString("hex");
  const beatMs = opts.beatMs ?? 1_000;
  const presence = new Presence(db, processId, opts.leaseMs ?? 15_000);
  /** buyer side: attempts of this process on nodes other processes hold, by wire id */
  const tracked = new Map<string, Tracked>();
  /** holder side: jobs of other processes' buyers on nodes connected here, by wire id */
  const relays = new Map<string, Relay>();
  /** remote nodes as presence last showed them */
  const views = new Map<string, RemoteNodeView>();
  let alive = new Set<string>([processId]);
  let closed = false;

  const onMessage = (msg: BusMessage) => {
    switch (msg.t) {
      case "offer": {
        const relay = new Relay(msg.wire, msg.node, msg.from, (to, m) => bus.send(to, m), endRelay);
        if (closed || !host.hostJob(msg.node, relay)) {
          bus.send(msg.from, {
            t: "gone",
            wire: msg.wire,
            why: "the provider is no longer connected to its gateway process",
          });
          return;
        }
        relays.set(msg.wire, relay);
        host.send(msg.node, msg.msg);
        return;
      }
      case "send": {
        host.send(msg.node, msg.msg);
        if (msg.msg.type === "cancel") {
          const r = relays.get(msg.msg.job_id);
          if (r) endRelay(r);
        }
        return;
      }
      case "end": {
        const r = relays.get(msg.wire);
        if (r) endRelay(r);
        return;
      }
      case "spill":
        return;
    }
    const t = tracked.get(msg.wire);
    if (!t) return; // the attempt already ended here
    switch (msg.t) {
      case "accept":
        return t.job.onAccept();
      case "chunk":
        return t.job.onChunk(msg.data);
      case "reject":
        t.holderEnded = true;
        return t.job.onReject(msg.reason);
      case "done":
        t.holderEnded = true;
        return t.job.onDone(msg.error);
      case "gone":
        t.holderEnded = true;
        return t.job.onDisconnect(`provider disconnected: ${msg.why}`);
    }
  };

  const endRelay = (r: Relay) => {
    if (relays.get(r.wireId) !== r) return;
    relays.delete(r.wireId);
    host.endJob(r.nodeId, r.wireId);
  };

  // The bus can hear another process's presence change before the beat machinery below exists
  // (while this one joins); the first beat reads presence anyway, so until then it is ignored.
  let presenceChanged = () => {};
  const bus = await Bus.open({
    database: db,
    processId,
    log,
    onMessage,
    onPresence: () => presenceChanged(),
    onListenerReplaced: (listener) => presence.join(listener),
  });
  await presence.join(bus.listener);

  const usable = (v: RemoteNodeView) =>
    !closed && views.get(v.nodeId) === v && v.holder !== processId && alive.has(v.holder) && !v.draining;

  const link: ClusterLink = {
    candidates: (model, embeddings) =>
      [...views.values()].filter((v) => usable(v) && (embeddings ? v.embedModels : v.models).has(model)),
    models(embeddings, local) {
      const counts = new Map<string, number>();
      for (const v of views.values()) {
        if (local.has(v.nodeId) || !usable(v)) continue;
        for (const m of embeddings ? v.embedModels : v.models) counts.set(m, (counts.get(m) ?? 0) + 1);
      }
      return [...counts].map(([model, nodes]): ModelOffer => ({ model, nodes }));
    },
    nodesOnline(local) {
      let n = 0;
      for (const v of views.values()) if (!local.has(v.nodeId) && alive.has(v.holder)) n++;
      return n;
    },
    remoteNodes(local) {
      const out: RemoteNodeStatus[] = [];
      for (const v of views.values()) {
        if (local.has(v.nodeId) || v.holder === processId || !alive.has(v.holder)) continue;
        out.push({
          nodeId: v.nodeId,
          models: [...v.models],
          inflight: v.reported,
          draining: v.draining,
          ...(v.ttfbMs !== undefined ? { ttfbMs: v.ttfbMs } : {}),
          ...(v.tokensPerSec !== undefined ? { tokensPerSec: v.tokensPerSec } : {}),
        });
      }
      return out;
    },
    track(node, job, body) {
      const view = node as RemoteNodeView;
      tracked.set(job.wireId, { job, node: view, holder: view.holder, holderEnded: false });
      view.own++;
      // Before the offer on the same ordered connection: the node can pull it as soon as it is told.
      bus.exec("INSERT INTO cluster_jobs (wire_id, key_hash, body) VALUES ($1, $2, $3)", [
        job.wireId,
        view.keyHash,
        JSON.stringify(body),
      ]);
    },
    untrack(_node, wireId) {
      const t = tracked.get(wireId);
      if (!t) return;
      tracked.delete(wireId);
      t.node.own--;
      if (!t.holderEnded) bus.send(t.holder, { t: "end", node: t.node.nodeId, wire: wireId });
      bus.exec("DELETE FROM cluster_jobs WHERE wire_id = $1", [wireId]);
    },
    async jobBody(wireId, keyHash): Promise<RemoteBody> {
      const [row] = await db.query<{ key_hash: string; body: Record<string, unknown> }>(
        "SELECT key_hash, body FROM cluster_jobs WHERE wire_id = $1",
        [wireId],
      );
      if (!row) return undefined;
      return row.key_hash === keyHash ? { body: row.body } : "forbidden";
    },
    changed: () => soon(true),
  };
  const host = opts.routing.joinCluster(link);

  const sendToNode = (view: RemoteNodeView, msg: GatewayMessage) => {
    if (msg.type === "job") {
      const t = tracked.get(msg.job_id);
      bus.send(t?.holder ?? view.holder, {
        t: "offer",
        from: processId,
        node: view.nodeId,
        wire: msg.job_id,
        msg,
      });
      return;
    }
    const jobId = "job_id" in msg ? msg.job_id : undefined;
    const holder = (jobId && tracked.get(jobId)?.holder) || view.holder;
    bus.send(holder, { t: "send", node: view.nodeId, msg });
  };
  const nodeLink = { send: sendToNode, usable };

  const apply = (view: PresenceView) => {
    alive = view.alive;
    alive.add(processId);
    const seen = new Set<string>();
    const local = new Map(host.localNodes().map((n) => [n.nodeId, n]));
    for (const row of view.nodes) {
      if (row.processId === processId) continue;
      const mine = local.get(row.nodeId);
      if (mine) {
        // The node connected again to another process: this socket is the stale one.
        if (row.connectedAt > mine.connectedAt) host.replaced(row.nodeId, row.connectedAt);
        continue;
      }
      seen.add(row.nodeId);
      let v = views.get(row.nodeId);
      if (!v) views.set(row.nodeId, (v = new RemoteNodeView(row.nodeId, nodeLink)));
      v.update(row);
    }
    for (const id of views.keys()) if (!seen.has(id)) views.delete(id);
    // A holder that died takes its node sockets with it: same outcome as the node dropping.
    for (const [wire, t] of tracked) {
      if (!alive.has(t.holder)) {
        t.holderEnded = true;
        t.job.onDisconnect("provider disconnected: its gateway process went away");
        tracked.delete(wire);
      }
    }
    // A buyer's process that died reads nothing more: stop the node generating for it.
    for (const r of [...relays.values()]) {
      if (!alive.has(r.buyer)) {
        host.send(r.nodeId, { type: "cancel", job_id: r.wireId });
        endRelay(r);
      }
    }
  };

  let beats = 0;
  const beat = async () => {
    if (closed) return;
    const holds = opts.liveHolds ? [...opts.liveHolds()] : [];
    if (!(await presence.publish(host.localNodes(), holds))) await presence.join(bus.listener);
    if (++beats % 60 === 0) await presence.prune();
    apply(await presence.read());
  };
  // One beat at a time; a change asked for during a beat runs one more right after it.
  let running: Promise<void> | undefined;
  let again = false;
  let announce = false;
  const runBeat = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const tell = announce;
        announce = false;
        try {
          await beat();
          if (tell) bus.announcePresence();
        } catch (err) {
          if (!closed) log.warn("cluster presence beat failed", { err: errorMessage(err) });
        }
      } while (again && !closed);
    })().finally(() => (running = undefined));
    return running;
  };
  let pending: NodeJS.Timeout | undefined;
  /** A beat shortly (changes come in bursts); `tell`: then tell the others to read presence. */
  const soon = (tell = false) => {
    if (tell) announce = true;
    if (pending || closed) return;
    pending = setTimeout(() => {
      pending = undefined;
      void runBeat();
    }, 10);
    pending.unref();
  };
  presenceChanged = () => soon();
  const timer = setInterval(() => void runBeat(), beatMs);
  timer.unref();
  await runBeat();
  log.info("joined the gateway cluster", { process: processId });

  return {
    processId,
    once: (name, periodMs, fn) => runOncePerPeriod(db, name, periodMs, processId, fn),
    holdsServedElsewhere: () => presence.holdsServedElsewhere(),
    beat: runBeat,
    stats: () => bus.stats(),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      if (pending) clearTimeout(pending);
      await running?.catch(() => undefined);
      for (const t of tracked.values()) {
        t.holderEnded = true;
        t.job.onDisconnect("the gateway is shutting down");
      }
      tracked.clear();
      for (const r of [...relays.values()]) r.onDisconnect("its gateway process is shutting down");
      await presence.leave().catch(() => undefined);
      bus.announcePresence();
      await bus.close();
    },
  };
}
