/**
 * The cluster's parts on a real PostgreSQL, two pools standing for two processes: background work
 * claimed once per period and never overlapping, and the bus delivering everything one process
 * sends, in order, whatever its size (batched under NOTIFY's 8000-byte limit, spilled above it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Bus,
  type BusMessage,
  CLUSTER_MIGRATIONS,
  claimPeriod,
  MAX_PAYLOAD_BYTES,
  runOncePerPeriod,
  serially,
} from "../../gateway/cluster/index.js";
import { PgDatabase, silentLogger } from "../../src/shared/index.js";
import { testDatabase } from "../support/postgres.js";

let pg: { url: string; drop(): Promise<void> };
let one: PgDatabase;
let two: PgDatabase;

beforeAll(async () => {
  pg = await testDatabase("clusterbg");
  [one, two] = await Promise.all([PgDatabase.open(pg.url, { max: 6 }), PgDatabase.open(pg.url, { max: 6 })]);
  await Promise.all([one.migrate("cluster", CLUSTER_MIGRATIONS), two.migrate("cluster", CLUSTER_MIGRATIONS)]);
});

afterAll(async () => {
  await one.close();
  await two.close();
  await pg.drop();
});

describe("background work across processes", () => {
  it("runs once per period when two processes tick at the same moment, many times over", async () => {
    let runs = 0;
    const job = async () => {
      runs++;
      return "ran";
    };
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        runOncePerPeriod(i % 2 ? one : two, "payouts", 60_000, i % 2 ? "p1" : "p2", job),
      ),
    );
    expect(runs).toBe(1);
    expect(results.filter((r) => r === "ran")).toHaveLength(1);
    // Within the period nobody runs it again; another job has its own period.
    expect(await runOncePerPeriod(two, "payouts", 60_000, "p2", job)).toBeUndefined();
    expect(await runOncePerPeriod(two, "retention", 60_000, "p2", job)).toBe("ran");
    expect(runs).toBe(2);
  });

  it("serially: two processes repairing at once both run, one after the other", async () => {
    let active = 0;
    let most = 0;
    const order: string[] = [];
    const repair = (who: string) => async () => {
      active++;
      most = Math.max(most, active);
      order.push(`${who}:start`);
      // Long enough that the other process's call arrives while this one runs.
      await new Promise((r) => setTimeout(r, 100));
      order.push(`${who}:end`);
      active--;
      return who;
    };
    const results = await Promise.all([
      serially(one, "restart-recovery", repair("p1")),
      serially(two, "restart-recovery", repair("p2")),
    ]);
    expect(results).toEqual(["p1", "p2"]);
    expect(most).toBe(1);
    expect(order).toHaveLength(4);
    expect(order[0]!.split(":")[0]).toBe(order[1]!.split(":")[0]);
  });

  it("claims the next period once the last run is old enough", async () => {
    expect(await claimPeriod(one, "short", 200, "p1")).toBe(true);
    expect(await claimPeriod(two, "short", 200, "p2")).toBe(false);
    const end = Date.now() + 5_000;
    while (!(await claimPeriod(two, "short", 200, "p2"))) {
      if (Date.now() > end) throw new Error("the period never came round again");
      await new Promise((r) => setTimeout(r, 20));
    }
    const [row] = await one.query<{ by_process: string }>(
      "SELECT by_process FROM cluster_runs WHERE name = 'short'",
    );
    expect(row!.by_process).toBe("p2");
  });

  it("never overlaps a run still going, even when its period is over", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const long = runOncePerPeriod(one, "slow", 1, "p1", () => held.then(() => "first"));
    await new Promise((r) => setTimeout(r, 50)); // the first run holds its lease
    let second = 0;
    expect(await runOncePerPeriod(two, "slow", 1, "p2", async () => ++second)).toBeUndefined();
    expect(second).toBe(0);
    release();
    expect(await long).toBe("first");
  });
});

describe("the bus", () => {
  it("delivers what one process sends to another in order, small ones batched and big ones spilled", async () => {
    const got: BusMessage[] = [];
    const receiver = await Bus.open({
      database: two,
      processId: "receiver",
      log: silentLogger,
      onMessage: (m) => got.push(m),
      onPresence: () => undefined,
    });
    const sender = await Bus.open({
      database: one,
      processId: "sender",
      log: silentLogger,
      onMessage: () => undefined,
      onPresence: () => undefined,
    });
    try {
      const sent: BusMessage[] = [];
      for (let i = 0; i < 400; i++) {
        const size = i % 50 === 7 ? MAX_PAYLOAD_BYTES * 3 : i % 13 === 0 ? 3_000 : 20;
        // Unicode and JSON escapes make a payload's bytes differ from its characters.
        const data = `${i}:` + 'é"\\\n'.repeat(Math.ceil(size / 5)).slice(0, size);
        const msg: BusMessage =
          i % 3 === 0 ? { t: "accept", wire: `w${i}` } : { t: "chunk", wire: `w${i % 7}`, data };
        sent.push(msg);
        sender.send("receiver", msg);
      }
      await sender.flushed();
      const end = Date.now() + 10_000;
      const joined = (msgs: BusMessage[]) =>
        msgs.map((m) => (m.t === "chunk" ? `${m.wire}|${m.data}` : `${m.t}|${"wire" in m ? m.wire : ""}`));
      // Consecutive chunks of one job may arrive merged: compare the streams, not the frames.
      const stream = (msgs: BusMessage[]) => {
        const out: string[] = [];
        for (const m of msgs) {
          const last = out.at(-1);
          if (m.t === "chunk" && last?.startsWith(`${m.wire}|`)) out[out.length - 1] = last + m.data;
          else out.push(joined([m])[0]!);
        }
        return out;
      };
      while (stream(got).join("\u0000").length < stream(sent).join("\u0000").length) {
        if (Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(stream(got)).toEqual(stream(sent));
      // Spilled messages were fetched and removed.
      expect((await one.query("SELECT id FROM cluster_spill")).length).toBe(0);
    } finally {
      await sender.close();
      await receiver.close();
    }
  });

  it("makes its connections again when PostgreSQL drops them, and is heard again", async () => {
    const got: BusMessage[] = [];
    let replaced = 0;
    const receiver = await Bus.open({
      database: two,
      processId: "phoenix",
      log: silentLogger,
      onMessage: (m) => got.push(m),
      onPresence: () => undefined,
      onListenerReplaced: async () => void replaced++,
    });
    const sender = await Bus.open({
      database: one,
      processId: "caller",
      log: silentLogger,
      onMessage: () => undefined,
      onPresence: () => undefined,
    });
    const waitUntil = async (pred: () => boolean) => {
      const end = Date.now() + 10_000;
      while (!pred()) {
        if (Date.now() > end) throw new Error("timed out");
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      // An operator (or a failover) ends both of the processes' bus backends.
      await one.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ($1, $2)",
        ["owlrun-cluster-listen-phoenix", "owlrun-cluster-send-caller"],
      );
      await waitUntil(() => replaced === 1);
      const end = Date.now() + 10_000;
      // Messages sent while the sender reconnects may be lost; once it is back they arrive.
      while (got.length === 0 && Date.now() < end) {
        sender.send("phoenix", { t: "accept", wire: "again" });
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(got[0]).toEqual({ t: "accept", wire: "again" });
    } finally {
      await sender.close();
      await receiver.close();
    }
  });
});
