/**
 * The processes' bus: PostgreSQL LISTEN/NOTIFY. Each process LISTENs on its own channel on a
 * dedicated connection (a pooled one would be handed to other queries) and sends on a second
 * dedicated connection, so everything one process sends is executed, committed and delivered in
 * the order it was sent (a pool would reorder it across connections). What accumulates while a
 * NOTIFY is in flight goes out as one notification per channel (a JSON array), consecutive relay
 * chunks of one job merged; a message over the 8000-byte payload limit goes into `cluster_spill`
 * and the notification carries its id.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { errorMessage, type Logger, type PgDatabase } from "../../src/shared/index.js";
import type { BusMessage } from "./messages.js";

/** NOTIFY refuses payloads of 8000 bytes or more; keep a margin for the array brackets. */
export const MAX_PAYLOAD_BYTES = 7_900;
/** Every process listens here too: "presence changed, read it again". */
export const PRESENCE_CHANNEL = "cluster_presence";

export const channelOf = (processId: string): string => `cluster_${processId}`;

type Item =
  | { kind: "notify"; channel: string; msg: BusMessage; bytes: number }
  | { kind: "sql"; text: string; params: unknown[] };

/** What went over the bus since start (benchmarks: how well small frames batch). */
export interface BusStats {
  /** notifications received on this process's channel */
  notificationsIn: number;
  /** messages they carried */
  messagesIn: number;
  /** statements sent (NOTIFYs, spills, job bodies) */
  statementsOut: number;
}

/** The ordered sender: one connection, one statement at a time, batches in between. */
class Sender {
  statements = 0;
  private queue: Item[] = [];
  private busy = false;
  /** resolves when the queue is empty and nothing is in flight */
  private idle?: () => void;

  constructor(
    /** replaced when the connection is lost and made again */
    public client: pg.Client,
    private readonly log: Logger,
  ) {}

  notify(channel: string, msg: BusMessage): void {
    this.queue.push({ kind: "notify", channel, msg, bytes: Buffer.byteLength(JSON.stringify(msg)) });
    this.kick();
  }

  /** A statement ordered with the notifications (a job body before the offer that names it). */
  exec(text: string, params: unknown[]): void {
    this.queue.push({ kind: "sql", text, params });
    this.kick();
  }

  async drained(): Promise<void> {
    if (!this.busy) return;
    await new Promise<void>((resolve) => (this.idle = resolve));
  }

  private kick(): void {
    if (this.busy) return;
    this.busy = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const items = this.queue.splice(0);
      try {
        // One after another on one connection: committed, hence delivered, in the order sent.
        for (const s of statements(items)) {
          this.statements++;
          await this.client.query(s.text, s.params);
        }
      } catch (err) {
        this.log.warn("cluster bus: a send failed", { err: errorMessage(err) });
      }
    }
    this.busy = false;
    this.idle?.();
    this.idle = undefined;
  }
}

/** Turns queued items into statements, in order: notifications packed per channel between SQL. */
function statements(items: Item[]): { text: string; params: unknown[] }[] {
  const out: { text: string; params: unknown[] }[] = [];
  let batch = new Map<string, BusMessage[]>();
  let sizes = new Map<string, number>();
  const flushBatch = () => {
    for (const [channel, msgs] of batch) {
      out.push({ text: "SELECT pg_notify($1, $2)", params: [channel, JSON.stringify(msgs)] });
    }
    batch = new Map();
    sizes = new Map();
  };
  for (const item of items) {
    if (item.kind === "sql") {
      flushBatch();
      out.push(item);
      continue;
    }
    const { channel, msg } = item;
    if (item.bytes > MAX_PAYLOAD_BYTES - 2) {
      const id = randomUUID();
      flushBatch();
      out.push({
        text: "INSERT INTO cluster_spill (id, payload) VALUES ($1, $2)",
        params: [id, JSON.stringify(msg)],
      });
      out.push({ text: "SELECT pg_notify($1, $2)", params: [channel, JSON.stringify([{ t: "spill", id }])] });
      continue;
    }
    const msgs = batch.get(channel) ?? [];
    const size = sizes.get(channel) ?? 2;
    const last = msgs.at(-1);
    if (
      last?.t === "chunk" &&
      msg.t === "chunk" &&
      last.wire === msg.wire &&
      size + item.bytes < MAX_PAYLOAD_BYTES
    ) {
      // SSE text is reassembled across frames anyway: two frames of one job travel as one.
      msgs[msgs.length - 1] = { ...last, data: last.data + msg.data };
      sizes.set(channel, size + Buffer.byteLength(JSON.stringify(msg.data)) - 2);
      continue;
    }
    if (size + item.bytes + 1 > MAX_PAYLOAD_BYTES) {
      out.push({ text: "SELECT pg_notify($1, $2)", params: [channel, JSON.stringify(msgs)] });
      batch.set(channel, [msg]);
      sizes.set(channel, 2 + item.bytes);
      continue;
    }
    msgs.push(msg);
    batch.set(channel, msgs);
    sizes.set(channel, size + item.bytes + 1);
  }
  flushBatch();
  return out;
}

export interface BusOptions {
  database: PgDatabase;
  processId: string;
  log: Logger;
  /** a message for this process, in the order its sender sent it */
  onMessage(msg: BusMessage): void;
  /** another process's presence changed */
  onPresence(processId: string): void;
  /** the LISTEN connection was lost and made again: presence must name the new one */
  onListenerReplaced?(listener: pg.Client): Promise<void>;
}

export class Bus {
  private chain: Promise<void> = Promise.resolve();
  private pendingSpills = 0;
  private notificationsIn = 0;
  private messagesIn = 0;
  private closed = false;

  /** the LISTEN connection (presence records its backend: while it lives, this process does) */
  listener!: pg.Client;
  private sender!: Sender;

  private constructor(private readonly opts: BusOptions) {}

  static async open(opts: BusOptions): Promise<Bus> {
    const bus = new Bus(opts);
    bus.sender = new Sender(await bus.connect("send"), opts.log);
    bus.listener = await bus.connect("listen");
    return bus;
  }

  /**
   * A dedicated connection (a pooled one would be handed to other queries). Lost, it is made
   * again: messages sent meanwhile are lost, and the jobs they belonged to end by their timeouts
   * or, seen from the other processes, as if this one had died (its LISTEN backend is gone).
   */
  private async connect(kind: "listen" | "send"): Promise<pg.Client> {
    const name = `owlrun-cluster-${kind}-${this.opts.processId}`;
    const client = new pg.Client({ ...this.opts.database.pool.options, application_name: name });
    client.on("error", (err) =>
      this.opts.log.warn("cluster bus connection failed", { name, err: errorMessage(err) }),
    );
    client.once("end", () => void this.replace(kind, client));
    await client.connect();
    if (kind === "listen") {
      client.on("notification", (n) => this.onNotification(n.channel, n.payload ?? ""));
      await client.query(`LISTEN ${channelOf(this.opts.processId)}`);
      await client.query(`LISTEN ${PRESENCE_CHANNEL}`);
    }
    return client;
  }

  private async replace(kind: "listen" | "send", lost: pg.Client): Promise<void> {
    if (this.closed || (kind === "listen" ? this.listener : this.sender?.client) !== lost) return;
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5_000)) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.closed) return;
      try {
        const client = await this.connect(kind);
        if (kind === "send") {
          this.sender.client = client;
        } else {
          this.listener = client;
          await this.opts.onListenerReplaced?.(client);
        }
        this.opts.log.info("cluster bus connection made again", { kind });
        return;
      } catch (err) {
        this.opts.log.warn("cluster bus: reconnecting failed", { kind, err: errorMessage(err) });
      }
    }
  }

  send(processId: string, msg: BusMessage): void {
    this.sender.notify(channelOf(processId), msg);
  }

  /** Runs a statement in order with what this process sends (before the messages sent after it). */
  exec(text: string, params: unknown[]): void {
    this.sender.exec(text, params);
  }

  announcePresence(): void {
    this.sender.exec("SELECT pg_notify($1, $2)", [PRESENCE_CHANNEL, this.opts.processId]);
  }

  private onNotification(channel: string, payload: string): void {
    if (channel === PRESENCE_CHANNEL) {
      if (payload !== this.opts.processId) this.opts.onPresence(payload);
      return;
    }
    let msgs: BusMessage[];
    try {
      msgs = JSON.parse(payload) as BusMessage[];
      if (!Array.isArray(msgs)) throw new Error("not an array");
    } catch (err) {
      this.opts.log.warn("cluster bus: unreadable notification", { err: errorMessage(err) });
      return;
    }
    this.notificationsIn++;
    this.messagesIn += msgs.length;
    for (const msg of msgs) {
      if (msg.t === "spill") {
        // Fetched in order: later messages wait for it.
        this.pendingSpills++;
        const fetched = this.opts.database
          .query<{ payload: string }>("DELETE FROM cluster_spill WHERE id = $1 RETURNING payload", [msg.id])
          .catch(() => []);
        this.chain = this.chain
          .then(() => fetched)
          .then((rows) => {
            this.pendingSpills--;
            if (rows[0]) this.deliver(JSON.parse(rows[0].payload) as BusMessage);
          });
      } else if (this.pendingSpills > 0) {
        this.chain = this.chain.then(() => this.deliver(msg));
      } else {
        this.deliver(msg);
      }
    }
  }

  private deliver(msg: BusMessage): void {
    try {
      this.opts.onMessage(msg);
    } catch (err) {
      this.opts.log.error("cluster bus: handling a message failed", { t: msg.t, err: errorMessage(err) });
    }
  }

  stats(): BusStats {
    return {
      notificationsIn: this.notificationsIn,
      messagesIn: this.messagesIn,
      statementsOut: this.sender.statements,
    };
  }

  /** Waits until everything sent so far has been handed to PostgreSQL. */
  async flushed(): Promise<void> {
    await this.sender.drained();
  }

  async close(): Promise<void> {
    await this.flushed().catch(() => undefined);
    this.closed = true;
    await this.listener.end().catch(() => undefined);
    await this.sender.client.end().catch(() => undefined);
  }
}
