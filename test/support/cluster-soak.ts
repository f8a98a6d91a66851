/**
 * The kill -9 soak of issue 10 over three gateway processes on one PostgreSQL (issue 20): a
 * `ClusterNet` (one mint on the database, three gateway children), two real provider nodes
 * (`owlrun-mcp provider --embedded`, the scripted model) connected to different processes, and
 * X-Cashu jobs, a few at a time, each sent to a random process. At random rounds one of the three
 * gateway processes is killed with SIGKILL in the middle of the round's jobs (whether it is the
 * buyer's process, the node's holder, or neither) and restarted on the same data dir and port;
 * its node reconnects by itself.
 *
 * Afterwards every sat minted must be in the client's purse, in change the gateways keep for it,
 * or in the gateways' ecash (= their ledger's asset): see `auditClusterSoak`.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { CheckStateEnum, type Proof } from "@cashu/cashu-ts";
import { expect } from "vitest";
import { SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { PgDatabase } from "../../src/shared/index.js";
import { newWallet } from "./cashu.js";
import { type CliProcess, startCli } from "./cli-process.js";
import { ClusterNet } from "./cluster-net.js";
import { type GatewayBooks, Purse, readGatewayBooks, readSse, seededRandom, sumAccounts } from "./money.js";
import { amountOf, proofsOf, states } from "./soak.js";

export const SOAK_MODEL = SCRIPTED_MODEL_ID;
/** The sweep that refunds the holds of a killed buyer's process: short, but above a few beats. */
const STALE_HOLD_MS = 4_000;

export interface ClusterSoakOptions {
  jobs: number;
  kills: number;
  seed: number;
  /** jobs sent at once in a round (default 3) */
  parallel?: number;
}

/** An X-Cashu request whose answer the client did not see through (lost to a crash). */
interface Unsettled {
  requestId: string;
  token: string;
}

export interface ClusterSoakRun {
  net: ClusterNet;
  providers: CliProcess[];
  purse: Purse;
  unsettled: Unsettled[];
  kills: number[];
  /** sats the answers said were charged */
  charged: number;
  /** answers whose change + cost was not what the client paid (must be 0) */
  mismatches: number;
  log: string[];
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A provider node (built CLI) on gateway `url`; it reconnects by itself after that process dies. */
const startProvider = (url: string, dir: string) =>
  startCli(
    ["provider", "--gateway", url, "--embedded", "--data-dir", dir],
    {},
    60_000,
    /^provider connected (\S+)$/m,
  );

/** What a job's answer said: its status, the cost charged and the change token. */
interface Answer {
  line: string;
  cost: number;
  change?: string;
}

/**
 * One X-Cashu job. The change is handed back, not received here: the purse's own swaps happen
 * outside the kill window (a test purse has no seed to recover from).
 */
async function job(
  run: ClusterSoakRun,
  url: string,
  stream: boolean,
  token: string,
): Promise<Answer | undefined> {
  const requestId = randomUUID();
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": token, "x-owlrun-request-id": requestId },
      body: JSON.stringify({ model: SOAK_MODEL, messages: [{ role: "user", content: "hi" }], stream }),
    });
    const line = `${url.slice(-5)} ${stream ? "stream" : "json"} ${res.status}`;
    if (stream && res.status === 200) {
      const events = (await readSse(res)) as Record<string, any>[];
      if ((events.at(-1) as unknown) !== "[DONE]") throw new Error("stream cut short");
      const change = events.find((e) => e?.type === "cashu_change")?.token as string | undefined;
      const cost = (events.find((e) => e?.usage)?.usage?.cost?.sats as number | undefined) ?? 0;
      return { line, cost, change: change || undefined };
    }
    const body = (await res.json().catch(() => ({}))) as { usage?: { cost: { sats: number } } };
    const cost = body.usage?.cost.sats ?? Number(res.headers.get("x-cost-sats") ?? 0);
    return { line, cost, change: res.headers.get("x-cashu-change") ?? undefined };
  } catch (err) {
    run.unsettled.push({ requestId, token });
    run.log.push(`  lost ${requestId}: ${(err as Error).message.slice(0, 60)}`);
    return undefined;
  }
}

/** Runs the rounds with `kills` crashes at seeded random rounds; everything is up again at the end. */
export async function runClusterSoak(opts: ClusterSoakOptions): Promise<ClusterSoakRun> {
  const rng = seededRandom(opts.seed);
  const parallel = opts.parallel ?? 3;
  const net = await ClusterNet.start({
    gateways: 3,
    gatewayArgs: ["--stale-hold-ms", String(STALE_HOLD_MS), "--sweep-interval-ms", "1000"],
  });
  const providers: CliProcess[] = [];
  const run: ClusterSoakRun = {
    net,
    providers,
    purse: await Purse.open(net.mintUrl),
    unsettled: [],
    kills: [0, 0, 0],
    charged: 0,
    mismatches: 0,
    log: [],
    async stop() {
      await Promise.all(providers.map((p) => p.stop()));
      await net.stop();
    },
  };
  try {
    // Nodes on A and B; C holds none, so every job sent to C crosses processes.
    const [a, b] = net.urls() as [string, string];
    providers.push(await startProvider(a, join(net.root, "provider-a")));
    providers.push(await startProvider(b, join(net.root, "provider-b")));
    await net.online([SOAK_MODEL]);
    await run.purse.fund(20 * opts.jobs + 200);
    const rounds = Math.ceil(opts.jobs / parallel);
    const killAt = new Set<number>();
    while (killAt.size < Math.min(opts.kills, rounds)) killAt.add(rng.int(0, rounds - 1));
    for (let r = 0; r < rounds; r++) {
      const n = Math.min(parallel, opts.jobs - r * parallel);
      const amounts = Array.from({ length: n }, () => rng.int(3, 20));
      const tokens = await Promise.all(amounts.map((a) => run.purse.token(a)));
      const urls = net.urls();
      const jobs = tokens.map((t) => job(run, rng.pick(urls), rng.next() < 0.5, t));
      const victim = killAt.has(r) ? rng.int(0, 2) : undefined;
      if (victim !== undefined) {
        await sleep(rng.int(0, 80)); // somewhere in the jobs: claim, dispatch, relay, stream or settle
        await net.crash(victim);
        run.kills[victim]!++;
      }
      const results = await Promise.all(jobs);
      const lines: string[] = [];
      for (const [i, answer] of results.entries()) {
        if (!answer) {
          lines.push(`lost ${amounts[i]}`);
          continue;
        }
        // Whatever the answer, the client got back exactly what it paid minus what it was charged.
        const back = answer.change ? await run.purse.receive(answer.change) : 0;
        lines.push(`${answer.line} paid ${amounts[i]} charged ${answer.cost} back ${back}`);
        run.mismatches += back + answer.cost === amounts[i] ? 0 : 1;
        run.charged += answer.cost;
      }
      run.log.push(`${r}: ${lines.join(", ")}${victim !== undefined ? ` (killed ${victim})` : ""}`);
      // After a crash the node that process held reconnects with backoff: wait for it everywhere.
      if (victim !== undefined) await net.online([SOAK_MODEL], 60_000);
    }
  } catch (err) {
    (err as Error).message += `\n${run.log.join("\n")}`;
    await run.stop();
    throw err;
  }
  return run;
}

export interface ClusterSoakAudit {
  minted: number;
  purseSat: number;
  /** change tokens kept at the gateways that nobody redeemed yet (still UNSPENT at the mint) */
  claimableChangeSat: number;
  gateway: GatewayBooks;
  /** proofs counted in two places (must be 0) */
  duplicates: number;
  /** proofs counted as ours that the mint does not report UNSPENT (must be 0) */
  notUnspent: number;
  /** lost answers settled afterwards: by change fetched from a process, by the token still unspent */
  settledByChange: number;
  settledByToken: number;
  /** sats charged by what the client saw: answers' costs, and paid minus change of lost answers */
  charged: number;
  /** lost answers with neither change at any process nor an unspent token (must be none) */
  unresolved: string[];
}

/** The shared books once the stale-hold sweep refunded what killed processes left open. */
async function closedBooks(net: ClusterNet): Promise<GatewayBooks> {
  const at = { databaseUrl: net.database.url };
  let books = await readGatewayBooks(at, net.mintUrl);
  for (let i = 0; i < 60 && books.activeHolds > 0; i++) {
    await sleep(500);
    books = await readGatewayBooks(at, net.mintUrl);
  }
  return books;
}

/**
 * After the run: the holds of killed buyers' processes are refunded by the sweep, the client
 * settles what it lost (change by request id from a random process, else its own token back), and
 * then every sat minted must be in the purse, in change the gateways keep, or in their ecash
 * (= their ledger) — each proof once, each one UNSPENT at the mint.
 */
export async function auditClusterSoak(run: ClusterSoakRun, seed: number): Promise<ClusterSoakAudit> {
  const { net, purse } = run;
  const rng = seededRandom(seed + 7);
  await closedBooks(net);
  const checker = await newWallet(net.mintUrl);
  let settledByChange = 0;
  let settledByToken = 0;
  let lostCharged = 0;
  const unresolved: string[] = [];
  for (const u of run.unsettled) {
    const res = await fetch(`${rng.pick(net.urls())}/v1/cashu/change/${u.requestId}`);
    const change = res.status === 200 ? ((await res.json()) as { token: string }).token : undefined;
    const paid = amountOf(proofsOf(checker, u.token));
    let back: number | undefined;
    for (const t of [change, u.token]) {
      if (!t) continue;
      const [state] = await states(checker, proofsOf(checker, t).slice(0, 1));
      if (state !== CheckStateEnum.UNSPENT) continue;
      back = (back ?? 0) + (await purse.receive(t));
      if (t === change) settledByChange++;
      else settledByToken++;
    }
    // A lost answer whose job ran to the end was charged; the change says how much.
    if (back === undefined) unresolved.push(`${u.requestId} (${paid} sat, change ${res.status})`);
    else lostCharged += paid - back;
  }
  const books = await closedBooks(net);

  const database = await PgDatabase.open(net.database.url, { max: 1 });
  let changeTokens: string[];
  let poolSecrets: string[];
  try {
    changeTokens = (await database.query<{ token: string }>("SELECT token FROM pool_change")).map(
      (r) => r.token,
    );
    poolSecrets = (
      await database.query<{ secret: string }>("SELECT secret FROM pool_proofs WHERE state = 'available'")
    ).map((r) => r.secret);
  } finally {
    await database.close();
  }
  let claimableChangeSat = 0;
  const changeProofs: Proof[] = [];
  for (const token of changeTokens) {
    const proofs = proofsOf(checker, token);
    if ((await states(checker, proofs)).every((x) => x === CheckStateEnum.UNSPENT)) {
      claimableChangeSat += amountOf(proofs);
      changeProofs.push(...proofs);
    }
  }
  const all = [...purse.secrets(), ...poolSecrets, ...changeProofs.map((p) => p.secret)];
  return {
    minted: purse.minted,
    purseSat: purse.balance,
    claimableChangeSat,
    gateway: books,
    duplicates: all.length - new Set(all).size,
    notUnspent: (await purse.notUnspent()) + books.notUnspent,
    settledByChange,
    settledByToken,
    charged: run.charged + lostCharged,
    unresolved,
  };
}

/** The soak's verdict: every sat minted is accounted for, the ledger balances, nothing is open. */
export async function expectClusterSoakAccounted(
  run: ClusterSoakRun,
  seed: number,
): Promise<ClusterSoakAudit> {
  const a = await auditClusterSoak(run, seed);
  const why = `[seed ${seed}] ${JSON.stringify({
    ...a,
    gateway: { ...a.gateway, balances: Object.fromEntries(a.gateway.balances) },
  })}\n${run.log.join("\n")}`;
  expect(a.gateway.imbalanceMsat, why).toBe(0);
  expect(a.gateway.activeHolds, why).toBe(0);
  expect(sumAccounts(a.gateway, "hold:"), why).toBe(0);
  expect(sumAccounts(a.gateway, "change:"), why).toBe(0);
  expect(a.gateway.reservedSat, why).toBe(0);
  expect(a.gateway.ecashMsat, why).toBe(a.gateway.poolSat * 1000);
  expect(a.gateway.limboSat, why).toBe(0);
  expect(a.duplicates, why).toBe(0);
  expect(a.notUnspent, why).toBe(0);
  expect(a.unresolved, why).toEqual([]);
  expect(run.mismatches, why).toBe(0);
  // What clients were charged went to providers and the gateway's fees, and nothing else.
  const providers = sumAccounts(a.gateway, "provider:");
  const fees = a.gateway.balances.get("equity:fees") ?? 0;
  expect(providers + fees, why).toBe(a.charged * 1000);
  expect(a.purseSat + a.claimableChangeSat + a.gateway.ecashMsat / 1000, why).toBe(a.minted);
  return a;
}
