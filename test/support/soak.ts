/**
 * The kill -9 soak of issue 10, shared by the short run in `npm test` and the long one in
 * `npm run test:long`: the gateway (bundled mint, fixed port so the mint URL stays the same), an
 * embedded provider and an MCP HTTP server, each a child process of the built CLI with its own data
 * dir. Paid jobs run one after another — X-Cashu from a cashu-ts purse, and MCP `chat` calls paid
 * from the MCP server's own wallet — and at random points one of the three is killed with SIGKILL
 * in the middle of a job and restarted on the same data dir. The books are then read from disk and
 * from the mint: see `auditSoak`.
 */
import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import { join } from "node:path";
import { CheckStateEnum, type Proof, type Wallet } from "@cashu/cashu-ts";
import Database from "better-sqlite3";
import { SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { type CliProcess, startCli, tempDir } from "./cli-process.js";
import { newWallet } from "./cashu.js";
import { type GatewayBooks, Purse, readGatewayBooks, readSse, seededRandom, sumAccounts } from "./money.js";
import { connect, type Connected, outcome, printedMcpToken, waitFor } from "../mcp/harness.js";

export const SOAK_MODEL = SCRIPTED_MODEL_ID;
type Role = "gateway" | "provider" | "mcp";

/** The three processes, each restartable on its own data dir. */
export class Cluster {
  readonly root = tempDir("owlrun-soak-");
  gw!: CliProcess;
  provider!: CliProcess;
  mcp!: CliProcess;
  mcpClient!: Connected;
  private port = "0";

  get gatewayUrl() {
    return this.gw.url;
  }
  get mintUrl() {
    return `${this.gw.url}/mint`;
  }
  get gatewayDir() {
    return join(this.root, "gw", "gateway");
  }
  get mcpWalletDb() {
    return join(this.root, "mcp", "wallet", "wallet.sqlite");
  }

  async start(): Promise<void> {
    await this.startGateway();
    await this.startProvider();
    await this.startMcp();
  }

  async startGateway(): Promise<void> {
    this.gw = await startCli(["gateway", "--port", this.port, "--data-dir", join(this.root, "gw")]);
    this.port = new URL(this.gw.url).port;
  }

  async startProvider(): Promise<void> {
    this.provider = await startCli(
      ["provider", "--gateway", this.gw.url, "--embedded", "--data-dir", join(this.root, "provider")],
      {},
      60_000,
      /^provider connected (\S+)$/m,
    );
    await this.online();
  }

  async startMcp(): Promise<void> {
    this.mcp = await startCli([
      "http",
      "--port",
      "0",
      "--data-dir",
      join(this.root, "mcp"),
      "--gateway",
      this.gw.url,
    ]);
    this.mcpClient = await connect({
      mcpUrl: `${this.mcp.url}/mcp`,
      token: printedMcpToken(this.mcp.stdout()),
    });
  }

  /** Waits until the provider's model is listed (it reconnects with backoff after a gateway restart). */
  async online(): Promise<void> {
    await waitFor(
      async () => {
        const res = await fetch(`${this.gw.url}/v1/models`).catch(() => undefined);
        if (!res?.ok) return undefined;
        const body = (await res.json()) as { data: { id: string }[] };
        return body.data.some((m) => m.id === SOAK_MODEL) || undefined;
      },
      45_000,
      "the provider to be online",
    );
  }

  /** kill -9, then the same command on the same data dir. */
  async crash(role: Role): Promise<void> {
    if (role === "gateway") {
      await this.gw.kill();
      await this.startGateway();
      await this.online();
    } else if (role === "provider") {
      await this.provider.kill();
      await this.startProvider();
    } else {
      await this.mcpClient.close().catch(() => undefined);
      await this.mcp.kill();
      await this.startMcp();
    }
  }

  /** A clean restart of the MCP server: on start it settles the requests a crash left open. */
  async restartMcp(): Promise<void> {
    await this.mcpClient.close().catch(() => undefined);
    await this.mcp.stop();
    await this.startMcp();
  }

  async stop(): Promise<void> {
    await this.mcpClient?.close().catch(() => undefined);
    await this.mcp?.stop();
    await this.provider?.stop();
    await this.gw?.stop();
  }
}

/** An X-Cashu request the raw client did not see through (its answer was lost to a crash). */
interface Unsettled {
  requestId: string;
  token: string;
}

export interface SoakOptions {
  jobs: number;
  kills: number;
  seed: number;
  /** sats the raw purse and the MCP wallet each start with */
  fundSat?: number;
}

export interface SoakRun {
  cluster: Cluster;
  purse: Purse;
  unsettled: Unsettled[];
  /** sats minted into the MCP wallet (its top-ups) */
  mcpFunded: number;
  log: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One X-Cashu job with a token taken from the purse beforehand; an answer lost to a crash leaves
 * the request to settle later. The change is handed back, not received here: the purse's own swaps
 * happen outside the kill window (a test purse has no seed to recover from).
 */
async function rawJob(
  run: SoakRun,
  stream: boolean,
  token: string,
): Promise<{ line: string; change?: string }> {
  const requestId = randomUUID();
  try {
    const res = await fetch(`${run.cluster.gatewayUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": token, "x-owlrun-request-id": requestId },
      body: JSON.stringify({ model: SOAK_MODEL, messages: [{ role: "user", content: "hi" }], stream }),
    });
    let change: string | undefined;
    if (stream && res.status === 200) {
      const events = (await readSse(res)) as ({ type?: string; token?: string } | string)[];
      if (events.at(-1) !== "[DONE]") throw new Error("stream cut short");
      change =
        events.flatMap((e) => (typeof e === "object" && e.type === "cashu_change" ? [e.token] : []))[0] ||
        undefined;
    } else {
      change = res.headers.get("x-cashu-change") ?? undefined;
      await res.arrayBuffer();
    }
    return { line: `raw ${stream ? "stream" : "json"} ${res.status}`, change };
  } catch (err) {
    run.unsettled.push({ requestId, token });
    return { line: `raw lost: ${(err as Error).message.slice(0, 60)}` };
  }
}

async function mcpJob(run: SoakRun): Promise<{ line: string; change?: string }> {
  try {
    const r = outcome(
      await run.cluster.mcpClient.client.callTool({
        name: "chat",
        arguments: { prompt: "hi", model: SOAK_MODEL, max_tokens: 16 },
      }),
    );
    return { line: `mcp ${r.isError ? `error: ${r.text.slice(0, 60)}` : "ok"}` };
  } catch (err) {
    return { line: `mcp lost: ${(err as Error).message.slice(0, 60)}` };
  }
}

async function fundMcp(run: SoakRun, sats: number): Promise<void> {
  const client = run.cluster.mcpClient.client;
  const top = outcome(await client.callTool({ name: "topup", arguments: { amount_sats: sats } })).structured;
  const r = outcome(
    await client.callTool({
      name: "topup_status",
      arguments: { quote: top.quote, wait: true, timeout_seconds: 20 },
    }),
  );
  if (r.structured?.state !== "claimed") throw new Error(`MCP top-up not claimed: ${r.text}`);
  run.mcpFunded += sats;
}

/** Runs the jobs with `kills` crashes at seeded random jobs; everything is up again at the end. */
export async function runSoak(opts: SoakOptions): Promise<SoakRun> {
  const rng = seededRandom(opts.seed);
  const cluster = new Cluster();
  await cluster.start();
  const run: SoakRun = {
    cluster,
    purse: await Purse.open(cluster.mintUrl),
    unsettled: [],
    mcpFunded: 0,
    log: [],
  };
  const fund = opts.fundSat ?? 20 * opts.jobs + 200;
  await run.purse.fund(fund);
  await fundMcp(run, fund);
  const killAt = new Set<number>();
  while (killAt.size < Math.min(opts.kills, opts.jobs)) killAt.add(rng.int(0, opts.jobs - 1));
  for (let i = 0; i < opts.jobs; i++) {
    const role = killAt.has(i) ? rng.pick(["gateway", "gateway", "provider", "mcp"] as const) : undefined;
    // Killing the MCP server only bites in the middle of one of its own chats.
    const kind = role === "mcp" ? "mcp" : rng.pick(["raw-json", "raw-stream", "mcp"] as const);
    const token = kind === "mcp" ? "" : await run.purse.token(rng.int(3, 20));
    const job = kind === "mcp" ? mcpJob(run) : rawJob(run, kind === "raw-stream", token);
    if (role) {
      await sleep(rng.int(0, 80)); // somewhere in the job: claim, dispatch, stream or settle
      await cluster.crash(role);
    }
    const { line, change } = await job;
    run.log.push(`${i}: ${line}${role ? ` (killed ${role})` : ""}`);
    if (change) await run.purse.receive(change);
  }
  return run;
}

/** Proofs of a token string (decoded by a cashu-ts wallet). */
export const proofsOf = (wallet: Wallet, token: string): Proof[] => wallet.decodeToken(token).proofs;

/** The mint's state of each proof, asked 100 at a time. */
export async function states(wallet: Wallet, proofs: Proof[]): Promise<CheckStateEnum[]> {
  const out: CheckStateEnum[] = [];
  for (let i = 0; i < proofs.length; i += 100) {
    out.push(...(await wallet.checkProofsStates(proofs.slice(i, i + 100))).map((s) => s.state));
  }
  return out;
}

export const amountOf = (ps: Proof[]) => ps.reduce((s, p) => s + Number(p.amount.toString()), 0);

export interface SoakAudit {
  minted: number;
  purseSat: number;
  mcpSat: number;
  /** change tokens kept at the gateway that nobody redeemed yet (still UNSPENT at the mint) */
  claimableChangeSat: number;
  gateway: GatewayBooks;
  /** proofs counted in two places (must be 0) */
  duplicates: number;
  /** proofs counted as ours that the mint does not report UNSPENT (must be 0) */
  notUnspent: number;
  openMcpRequests: number;
}

/**
 * After the run: the raw client settles what it lost (change by request id, else its own token
 * back), the MCP server is restarted so it settles its open requests, and then every sat minted must
 * be somewhere: in the purse, in the MCP wallet, in the gateway's ecash (= its ledger), or in change
 * the gateway keeps for a client — each proof once, each one UNSPENT at the mint.
 */
export async function auditSoak(run: SoakRun): Promise<SoakAudit> {
  const { cluster, purse } = run;
  const checker = await newWallet(cluster.mintUrl);
  for (const u of run.unsettled) {
    const res = await fetch(`${cluster.gatewayUrl}/v1/cashu/change/${u.requestId}`);
    const change = res.status === 200 ? ((await res.json()) as { token: string }).token : undefined;
    for (const t of [change, u.token]) {
      if (!t) continue;
      const [state] = await states(checker, proofsOf(checker, t).slice(0, 1));
      if (state === CheckStateEnum.UNSPENT) await purse.receive(t);
    }
  }
  await cluster.restartMcp();
  // Open MCP requests settle on start; one whose token was charged whole closes after a few tries.
  await waitFor(
    async () => {
      const b = outcome(await cluster.mcpClient.client.callTool({ name: "balance", arguments: {} }));
      return b.structured?.open_requests === 0 || undefined;
    },
    20_000,
    "the MCP server to settle its open requests",
  ).catch(() => undefined);
  const books = await readGatewayBooks(cluster.gatewayDir, cluster.mintUrl);

  // Every proof we count, by where it is.
  const mcpDb = new Database(cluster.mcpWalletDb, { readonly: true, fileMustExist: true });
  const mcpRows = mcpDb.prepare("SELECT secret, amount FROM proofs WHERE state != 'spent'").all() as {
    secret: string;
    amount: number;
  }[];
  const openMcpRequests = (
    mcpDb.prepare("SELECT COUNT(*) AS n FROM requests WHERE state = 'sent'").get() as { n: number }
  ).n;
  mcpDb.close();
  const gwDb = new Database(join(cluster.gatewayDir, "wallet", "wallet.sqlite"), { readonly: true });
  const changeTokens = (gwDb.prepare("SELECT token FROM change").all() as { token: string }[]).map((r) =>
    proofsOf(checker, r.token),
  );
  const poolSecrets = (
    gwDb.prepare("SELECT secret FROM proofs WHERE state = 'available'").all() as { secret: string }[]
  ).map((r) => r.secret);
  gwDb.close();
  let claimableChangeSat = 0;
  const changeProofs: Proof[] = [];
  for (const proofs of changeTokens) {
    const s = await states(checker, proofs);
    if (s.every((x) => x === CheckStateEnum.UNSPENT)) {
      claimableChangeSat += amountOf(proofs);
      changeProofs.push(...proofs);
    }
  }
  const mcpSecrets = mcpRows.map((r) => r.secret);
  const mcpProofStates = await states(
    checker,
    mcpRows.map((r) => ({ secret: r.secret, amount: r.amount }) as unknown as Proof),
  );
  const all = [...purse.secrets(), ...mcpSecrets, ...poolSecrets, ...changeProofs.map((p) => p.secret)];
  return {
    minted: purse.minted + run.mcpFunded,
    purseSat: purse.balance,
    mcpSat: mcpRows.reduce((s, r) => s + r.amount, 0),
    claimableChangeSat,
    gateway: books,
    duplicates: all.length - new Set(all).size,
    notUnspent:
      (await purse.notUnspent()) +
      mcpProofStates.filter((s) => s !== CheckStateEnum.UNSPENT).length +
      books.notUnspent,
    openMcpRequests,
  };
}

/** The soak's verdict: every sat minted is accounted for, the ledger balances, nothing is open. */
export async function expectAllAccounted(run: SoakRun): Promise<void> {
  const a = await auditSoak(run);
  if (process.env.OWLRUN_SOAK_LOG) console.log(run.log.join("\n"), a);
  const why = `[seed in the test name] ${JSON.stringify({
    ...a,
    gateway: { ...a.gateway, balances: Object.fromEntries(a.gateway.balances) },
  })}\n${run.log.join("\n")}`;
  expect(a.gateway.imbalanceMsat, why).toBe(0);
  expect(a.gateway.activeHolds, why).toBe(0);
  expect(sumAccounts(a.gateway, "change:"), why).toBe(0);
  expect(a.gateway.reservedSat, why).toBe(0);
  expect(a.gateway.ecashMsat, why).toBe(a.gateway.poolSat * 1000);
  expect(a.duplicates, why).toBe(0);
  expect(a.notUnspent, why).toBe(0);
  expect(a.purseSat + a.mcpSat + a.claimableChangeSat + a.gateway.ecashMsat / 1000, why).toBe(a.minted);
}
