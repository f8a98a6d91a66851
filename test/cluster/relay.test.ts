/**
 * Several gateway processes on one PostgreSQL database route jobs to each other: a node connected
 * to process A serves a buyer who paid process B; B bills exactly as A would for the same answer;
 * the buyer going away on B cancels the node on A; A killed with -9 mid-job gives B's buyer today's
 * node-died outcome (failover before the first token, failed and unbilled after).
 *
 * The real topology: every store (ledger, pool, accounts, routing, …) and the mint are on the one
 * database. B runs the bundled mint on it; the other processes trust that one mint by URL
 * (`--mint-url`), as an operator does when one mint serves several gateway processes (a second
 * bundled mint on the database would need B's master secret). Billing happens on the buyer's process.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { PgDatabase, silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type OwlrunAgent, startAgent } from "../support/owlrun-agent.js";
import { testDatabase } from "../support/postgres.js";

const BEAT_MS = 100;
let pg: { url: string; drop(): Promise<void> };
const pools: PgDatabase[] = [];
const closers: (() => Promise<unknown>)[] = [];

/** An in-process gateway on the shared database with its own data dir (and, for B, the mint on it too). */
async function gatewayProcess(
  opts: { mint?: boolean; trustedMints?: string[] } = {},
): Promise<RunningGateway> {
  const dir = tempDir("owlrun-cluster-");
  const database = await PgDatabase.open(pg.url, { max: 4 });
  pools.push(database);
  const running = await startGateway({
    dataDir: join(dir, "gateway"),
    trustedMints: opts.trustedMints ?? [],
    port: 0,
    offlineBtcUsd: 100_000,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    database,
    clusterBeatMs: BEAT_MS,
    ...(opts.mint
      ? {
          bundledMint: await createBundledMint({
            dataDir: join(dir, "mint"),
            database,
            lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
            log: silentLogger,
          }),
        }
      : {}),
  });
  closers.push(() => running.close());
  return running;
}

let b: RunningGateway;
let mintUrl: string;
let wallet: Wallet;
let purse: Proof[] = [];

async function token(sats: number): Promise<string> {
  const { send, keep } = await wallet.send(sats, purse);
  purse = keep;
  return getEncodedToken({ mint: mintUrl, proofs: send });
}

async function receive(t: string): Promise<number> {
  const got = await wallet.receive(t);
  purse.push(...got);
  return sumAmounts(got);
}

async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const servedBy = (g: RunningGateway, model: string) => () =>
  g.gateway.dispatcher.models().some((m) => m.model === model);

function chat(
  url: string,
  tok: string,
  model: string,
  extra: Record<string, unknown> = {},
  signal?: AbortSignal,
) {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-cashu": tok },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hello there" }], ...extra }),
    signal,
  });
}

/** The SSE objects of a streamed answer (without [DONE]) and its text. */
function parseStream(text: string): { objs: any[]; text: string } {
  const events = text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6));
  expect(events.at(-1)).toBe("[DONE]");
  const objs = events.slice(0, -1).map((e) => JSON.parse(e));
  const content = objs.map((c) => c.choices?.map((x: any) => x.delta?.content ?? "").join("") ?? "").join("");
  return { objs, text: content };
}

beforeAll(async () => {
  pg = await testDatabase("cluster");
  b = await gatewayProcess({ mint: true });
  mintUrl = `${b.url}/mint`;
  wallet = await newWallet(mintUrl);
  purse = await mintProofs(wallet, 2_000);
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  for (const p of pools) await p.close().catch(() => undefined);
  await pg.drop();
});

describe("gateway processes on one database", () => {
  let a: RunningGateway;
  let agent: OwlrunAgent;
  const MODEL = "cluster-relay:1b";
  const WORDS = ["Hello", " from", " the", " node", " on", " process", " A", "."];

  beforeAll(async () => {
    // A trusts B's mint, so the same paid request can be made to either process.
    a = await gatewayProcess({ trustedMints: [mintUrl] });
    agent = await startAgent(a.url, { models: [MODEL], reply: WORDS });
    closers.push(() => agent.close());
    await until(servedBy(b, MODEL), "process B to list the model of the node on A");
  });

  it("a node on A answers a buyer who paid B, billed on B exactly as A bills the same answer", async () => {
    expect(b.gateway.dispatcher.nodesOnline()).toBeGreaterThanOrEqual(1);
    const viaB = await chat(b.url, await token(40), MODEL, { max_tokens: 50 });
    expect(viaB.status).toBe(200);
    expect(viaB.headers.get("x-owlrun-node")).toBe(agent.nodeId);
    const bodyB = (await viaB.json()) as any;
    expect(bodyB.choices[0].message.content).toBe(WORDS.join(""));
    const changeB = await receive(viaB.headers.get("x-cashu-change")!);

    // The same request where the node is local: the same usage, the same charge.
    const viaA = await chat(a.url, await token(40), MODEL, { max_tokens: 50 });
    expect(viaA.status).toBe(200);
    const bodyA = (await viaA.json()) as any;
    expect(bodyB.usage).toEqual(bodyA.usage);
    expect(changeB).toBe(await receive(viaA.headers.get("x-cashu-change")!));
    expect(changeB).toBeLessThan(40);
    // The node was told what it earned for both jobs.
    await agent.waitFor(() => agent.completes.length >= 2, 5_000, "job_complete for both jobs");
  });

  it("streams a frame larger than a NOTIFY payload intact (the bus spills it to a table)", async () => {
    const big = "x".repeat(12_000);
    const spilling = await startAgent(a.url, {
      models: ["cluster-big:1b"],
      job: { words: ["start ", big, " end"], frameChars: 40_000 },
    });
    closers.push(() => spilling.close());
    await until(servedBy(b, "cluster-big:1b"), "process B to list the big model");
    const res = await chat(b.url, await token(200), "cluster-big:1b", { stream: true, max_tokens: 100 });
    const { objs, text } = parseStream(await res.text());
    expect(text).toBe(`start ${big} end`);
    const change = objs.find((o) => o.type === "cashu_change");
    expect(await receive(change.token)).toBe(change.change_sats);
  });

  it("a buyer who goes away on B has the node on A cancelled", async () => {
    const slow = await startAgent(a.url, {
      models: ["cluster-slow:1b"],
      job: { words: Array.from({ length: 40 }, (_, i) => ` w${i}`), delayMs: 100 },
    });
    closers.push(() => slow.close());
    await until(servedBy(b, "cluster-slow:1b"), "process B to list the slow model");
    const abort = new AbortController();
    const res = await chat(b.url, await token(60), "cluster-slow:1b", { stream: true }, abort.signal);
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes(" w1")) seen += new TextDecoder().decode((await reader.read()).value);
    // Another node's key cannot pull the body of a job offered to this one, on any process.
    const pull = (key: string) =>
      fetch(`${a.url}/v1/gateway/jobs/${slow.offered[0]}/proxy/request`, {
        headers: { authorization: `Bearer ${key}` },
      });
    expect((await pull(agent.apiKey)).status).toBe(403);
    expect((await pull(slow.apiKey)).status).toBe(200);
    expect(
      (
        await fetch(`${a.url}/v1/gateway/jobs/not-a-job/proxy/request`, {
          headers: { authorization: `Bearer ${slow.apiKey}` },
        })
      ).status,
    ).toBe(404);
    abort.abort();
    await slow.waitFor(() => slow.cancelled.length === 1, 5_000, "the cancel relayed from B");
    // The job is over: its body is gone from the database.
    await until(async () => (await pull(slow.apiKey)).status === 404, "the job body to be removed");
    expect(slow.cancelled[0]).toBe(slow.offered[0]);
  });

  it("B lists the nodes A holds with their jobs in flight, and counts them in queue_depth_global", async () => {
    const busy = await startAgent(a.url, {
      models: ["cluster-status:1b"],
      job: { words: Array.from({ length: 40 }, (_, i) => ` s${i}`), delayMs: 100 },
    });
    closers.push(() => busy.close());
    const watcher = await startAgent(b.url, { models: ["cluster-watch:1b"], heartbeatMs: 50 });
    closers.push(() => watcher.close());
    await until(servedBy(b, "cluster-status:1b"), "process B to list the busy model");
    const abort = new AbortController();
    const res = await chat(b.url, await token(60), "cluster-status:1b", { stream: true }, abort.signal);
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes(" s1")) seen += new TextDecoder().decode((await reader.read()).value);
    await until(
      async () => (await b.gateway.routing.node(busy.nodeId))?.inflight === 1,
      "B to see the job in flight on A's node",
    );
    const listed = await b.gateway.routing.providers();
    const ids = listed.map((p) => p.nodeId);
    expect(ids).toEqual(expect.arrayContaining([agent.nodeId, busy.nodeId, watcher.nodeId]));
    expect(new Set(ids).size).toBe(ids.length);
    expect(listed.find((p) => p.nodeId === busy.nodeId)).toMatchObject({
      online: true,
      models: ["cluster-status:1b"],
      inflight: 1,
    });
    // A's own view of its node agrees.
    expect((await a.gateway.routing.node(busy.nodeId))?.inflight).toBe(1);
    // The node on B hears of the job on A's node in its heartbeat_ack.
    await until(
      async () => watcher.acks.some((ack) => Number(ack.queue_depth_global) >= 1),
      "queue_depth_global on B to count the job on A",
    );
    abort.abort();
    await busy.waitFor(() => busy.cancelled.length === 1, 5_000, "the cancel relayed from B");
  });

  it("publishes the holds each process serves, so another process's sweeper leaves them alone", async () => {
    const slow = await startAgent(a.url, {
      models: ["cluster-hold:1b"],
      job: { words: Array.from({ length: 30 }, (_, i) => ` h${i}`), delayMs: 50 },
    });
    closers.push(() => slow.close());
    await until(servedBy(b, "cluster-hold:1b"), "process B to list the model");
    const requestId = randomUUID();
    const pending = fetch(`${b.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-cashu": await token(60),
        "x-owlrun-request-id": requestId,
      },
      body: JSON.stringify({ model: "cluster-hold:1b", messages: [{ role: "user", content: "hi" }] }),
    });
    await until(
      async () => (await a.gateway.cluster!.holdsServedElsewhere()).has(requestId),
      "A to see the hold B serves",
    );
    expect(await b.gateway.cluster!.holdsServedElsewhere()).not.toContain(requestId);
    const res = await pending;
    expect(res.status).toBe(200);
    await receive(res.headers.get("x-cashu-change")!);
    await until(
      async () => !(await a.gateway.cluster!.holdsServedElsewhere()).has(requestId),
      "the hold to leave B's published set",
    );
  });
});

describe("the process holding the node dies (kill -9)", () => {
  let a: CliProcess | undefined;

  const startA = async () => {
    a = await startCli([
      "gateway",
      "--port",
      "0",
      "--data-dir",
      tempDir("owlrun-cluster-a-"),
      "--database-url",
      pg.url,
      // The one mint of the cluster (B's), as the in-process A trusts it.
      "--mint-url",
      mintUrl,
    ]);
    closers.push(() => a!.kill());
    return a;
  };

  it("mid-stream: B's buyer gets the node-died outcome in the stream and pays nothing", async () => {
    const proc = await startA();
    const model = "cluster-kill:1b";
    const node = await startAgent(proc.url, {
      models: [model],
      job: { words: Array.from({ length: 60 }, (_, i) => ` k${i}`), delayMs: 100 },
    });
    closers.push(() => node.close());
    await until(servedBy(b, model), "process B to list the model of the node on the CLI process");
    const res = await chat(b.url, await token(50), model, { stream: true });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes(" k2")) text += new TextDecoder().decode((await reader.read()).value);
    await proc.kill();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const { objs } = parseStream(text);
    expect(objs.find((o) => o.error)?.error.type).toBe("provider_failed");
    const usage = objs.find((o) => o.usage)!.usage;
    expect(usage.cost.sats).toBe(0);
    const change = objs.find((o) => o.type === "cashu_change");
    expect(change.change_sats).toBe(50);
    expect(await receive(change.token)).toBe(50);
    // B no longer offers the dead process's node.
    await until(() => !servedBy(b, model)(), "B to forget the dead process's node");
  });

  it("before the first token: B moves the job on to another node, and bills that one", async () => {
    const proc = await startA();
    const model = "cluster-failover:1b";
    const doomed = await startAgent(proc.url, {
      models: [model],
      job: { words: ["never"], firstDelayMs: 30_000 },
    });
    closers.push(() => doomed.close());
    const healthy = await startAgent(b.url, { models: [model], reply: ["served", " by", " B"] });
    closers.push(() => healthy.close());
    await until(
      () => b.gateway.dispatcher.models().find((m) => m.model === model)?.nodes === 2,
      "B to list both nodes of the model",
    );
    const pending = chat(b.url, await token(40), model, { provider: { order: [doomed.nodeId] } });
    await doomed.waitFor(() => doomed.bodies.length === 1, 5_000, "the doomed node to pull its body");
    await proc.kill();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get("x-owlrun-node")).toBe(healthy.nodeId);
    expect(((await res.json()) as any).choices[0].message.content).toBe("served by B");
    const change = await receive(res.headers.get("x-cashu-change")!);
    expect(change).toBeGreaterThan(0);
    expect(change).toBeLessThan(40);
  });
});
