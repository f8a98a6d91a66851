/**
 * A gateway behind a load balancer (several processes, one public address): buyers mint at
 * `<public URL>/mint` and pay with those tokens. The gateway trusts and advertises its bundled mint
 * under the public URL (it answered `400 foreign_mint` before) and still reaches it in-process.
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { getEncodedToken, getTokenMetadata, type Proof, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let balancer: Server;
let publicUrl: string;
let target = "";
let gw: RunningGateway;
let agent: Agent;
let wallet: Wallet;
let purse: Proof[] = [];

beforeAll(async () => {
  // The load balancer: forwards every request to the gateway process.
  balancer = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter(([k]) => !["host", "connection", "content-length"].includes(k)),
    ) as Record<string, string>;
    const answer = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers,
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise<void>((r) => balancer.listen(0, "127.0.0.1", r));
  publicUrl = `http://127.0.0.1:${(balancer.address() as { port: number }).port}`;
  const dir = tempDir();
  gw = await startGateway({
    dataDir: join(dir, "gateway"),
    trustedMints: [],
    port: 0,
    publicUrl,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    log: silentLogger,
    bundledMint: await createBundledMint({
      dataDir: join(dir, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
      log: silentLogger,
    }),
  });
  target = gw.url;
  wallet = await newWallet(`${publicUrl}/mint`);
  purse = await mintProofs(wallet, 100);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["ok"] });
});
afterAll(async () => {
  await agent?.close();
  await gw?.close();
  await new Promise((r) => balancer?.close(r));
});

it("pays with ecash minted at <public URL>/mint and gets change from that mint", async () => {
  const info = (await (await fetch(`${publicUrl}/v1/info`)).json()) as Record<string, unknown>;
  expect(JSON.stringify(info)).toContain(`${publicUrl}/mint`);
  const { send, keep } = await wallet.send(21, purse);
  purse = keep;
  const res = await fetch(`${publicUrl}/v1/chat/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-cashu": getEncodedToken({ mint: `${publicUrl}/mint`, proofs: send }),
    },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  const change = res.headers.get("x-cashu-change")!;
  expect(getTokenMetadata(change).mint).toBe(`${publicUrl}/mint`);
  const back = await wallet.receive(change);
  expect(back.length).toBeGreaterThan(0);
});
