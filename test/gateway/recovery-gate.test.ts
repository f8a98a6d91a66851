/**
 * Restart repair runs before paid requests are served. The server listens first (the bundled
 * mint's URL depends on the port, and repair calls that mint in-process), but on SQLite the repair
 * reads every unresolved counter range, reserved proof and unfunded claim, including those of this
 * process's live requests: a paid request served while it runs could have its range resolved
 * before the mint signed it, or be refunded and served. Here a restart finds a claim whose swap
 * answer was lost, its restore at the mint is slow, and a paid X-Cashu request arrives meanwhile:
 * it is answered only after the repair finished, and the books close.
 */
import { randomUUID } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { getEncodedToken, type Wallet } from "@cashu/cashu-ts";
import express from "express";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { recoveryGate } from "../../gateway/api/recovery-gate.js";
import { closeServer, listen, silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type FlakyProxy, startFlakyProxy } from "../support/flaky-proxy.js";
import { readGatewayBooks, sumAccounts } from "../support/money.js";
import { type OpenAIUpstream, startOpenAIUpstream } from "../support/openai-upstream.js";

const MODEL = "gpt-4o-mini";
const KEY = "sk-test-recovery-gate-0123456789";
const dataDir = join(tempDir("owlrun-recovery-gate-"), "gateway");
let mint: CliProcess;
let proxy: FlakyProxy;
let upstream: OpenAIUpstream;
let wallet: Wallet;
const running: RunningGateway[] = [];

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });

const gateway = (port: number) =>
  startGateway({
    dataDir,
    trustedMints: [proxy.url],
    port,
    offlineBtcUsd: 100_000,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    upstreams: {
      upstreams: [
        {
          name: "up",
          base_url: upstream.baseUrl,
          api_key: KEY,
          models: { [MODEL]: { price: { per_m_input_usd: 3, per_m_output_usd: 15 } } },
        },
      ],
    },
  }).then((gw) => (running.push(gw), gw));

const chat = (url: string, headers: Record<string, string>) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
  });
const tokenOf = async (sats: number) =>
  getEncodedToken({ mint: proxy.url, proofs: await mintProofs(wallet, sats) });

beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  proxy = await startFlakyProxy(mint.url);
  upstream = await startOpenAIUpstream(KEY);
  wallet = await newWallet(proxy.url);
});
afterAll(async () => {
  for (const gw of running) await gw.close().catch(() => undefined);
  await upstream?.close();
  await proxy?.close();
  await mint?.stop();
});

it("a paid request sent during restart repair on SQLite is served only after the repair", async () => {
  // A claim whose swap answer is lost and whose restore fails: the value waits for the next start.
  const first = await gateway(0);
  const lostId = randomUUID();
  proxy.dropAnswers.set("/v1/swap", 1);
  proxy.onDrop = () => proxy.refuse.add("/v1/swap");
  proxy.refuse.add("/v1/restore");
  expect(
    (await chat(first.url, { "x-cashu": await tokenOf(30), "x-owlrun-request-id": lostId })).status,
  ).toBe(503);
  proxy.refuse.clear();
  proxy.onDrop = undefined;
  await first.close();

  // The restart's repair asks the mint to restore that range, and the mint is slow to answer.
  let release!: () => void;
  proxy.hold.set("/v1/restore", new Promise<void>((resolve) => (release = resolve)));
  const repairing = new Promise<void>((resolve) => (proxy.onHeld = () => resolve()));
  const port = await freePort();
  const events: string[] = [];
  const restarted = gateway(port).then((gw) => (events.push("repaired"), gw));
  await repairing;

  const paidId = randomUUID();
  const paid = chat(`http://127.0.0.1:${port}`, {
    "x-cashu": await tokenOf(50),
    "x-owlrun-request-id": paidId,
  }).then((res) => (events.push("answered"), res));
  // Room for the request to be served, if it were served during the repair.
  await new Promise((r) => setTimeout(r, 500));
  release();
  const gw = await restarted;
  const res = await paid;
  expect(events).toEqual(["repaired", "answered"]);
  expect(res.status).toBe(200);

  const lost = (await (await fetch(`${gw.url}/v1/cashu/change/${lostId}`)).json()) as { change_sats: number };
  expect(lost.change_sats).toBe(30);
  const books = await readGatewayBooks(dataDir, proxy.url);
  expect(books.imbalanceMsat).toBe(0);
  expect(books.notUnspent).toBe(0);
  expect(books.ecashMsat).toBe(books.poolSat * 1000);
  // Change is a stored token (the lost claim's) or went with its answer (the paid request's).
  expect(sumAccounts(books, "change:")).toBe(0);
});

it("a request held past the bound gets a 503 with Retry-After in its API's error shape", async () => {
  const app = express();
  const gate = recoveryGate(silentLogger, 50);
  app.use(gate.middleware);
  app.use((_req, res) => res.json({ served: true }));
  const server = createHttpServer(app);
  const url = await listen(server, "127.0.0.1", 0);
  let finish!: () => void;
  const repair = gate.run(() => new Promise<void>((resolve) => (finish = resolve)));
  try {
    const post = (path: string) => fetch(`${url}${path}`, { method: "POST" });
    const openai = await post("/v1/chat/completions");
    expect(openai.status).toBe(503);
    expect(openai.headers.get("retry-after")).toBe("1");
    expect(((await openai.json()) as { error: { type: string } }).error.type).toBe("recovering");
    const ollama = await post("/api/chat");
    expect(ollama.status).toBe(503);
    expect(typeof ((await ollama.json()) as { error: unknown }).error).toBe("string");
    const anthropic = await post("/v1/messages");
    expect(anthropic.status).toBe(503);
    expect(((await anthropic.json()) as { type: string }).type).toBe("error");
    finish();
    await repair;
    expect(await (await post("/v1/chat/completions")).json()).toEqual({ served: true });
  } finally {
    finish();
    await closeServer(server);
  }
});
