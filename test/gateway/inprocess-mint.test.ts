/**
 * The gateway reaches its bundled mint through the mint's HTTP API in-process: an X-Cashu request
 * makes no HTTP request to /mint on the server (no socket, no loopback client), errors keep their
 * NUT-00 meaning (a spent token is still 402 token_spent), and change tokens still carry DLEQ
 * proofs a client can check offline. Composition as `owlrun-mcp gateway` runs it (startGateway
 * with the bundled mint), the real cashu-ts wallet as the client.
 */
import { join } from "node:path";
import { getDecodedToken, getEncodedToken, hasValidDleq, type Proof, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let gw: RunningGateway;
let agent: Agent;
let wallet: Wallet;
let mintUrl: string;
let purse: Proof[] = [];
const mintRequests: string[] = [];

async function pay(sats: number): Promise<string> {
  const { send, keep } = await wallet.send(sats, purse);
  purse = keep;
  return getEncodedToken({ mint: mintUrl, proofs: send });
}

const chat = (token: string) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-cashu": token },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
  });

beforeAll(async () => {
  const dir = tempDir();
  gw = await startGateway({
    dataDir: join(dir, "gateway"),
    trustedMints: [],
    port: 0,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    log: silentLogger,
    bundledMint: await createBundledMint({
      dataDir: join(dir, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
      log: silentLogger,
    }),
  });
  mintUrl = `${gw.url}/mint`;
  // Before express, which rewrites req.url under a mount path.
  gw.server.prependListener("request", (req) => {
    if (req.url?.startsWith("/mint")) mintRequests.push(`${req.method} ${req.url}`);
  });
  wallet = await newWallet(mintUrl);
  purse = await mintProofs(wallet, 200);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["ok"] });
});
afterAll(async () => {
  await agent?.close();
  await gw?.close();
});

describe("bundled mint in-process", () => {
  it("an X-Cashu request claims and pays change without any HTTP request to the mint", async () => {
    const tokens = [await pay(13), await pay(21)];
    mintRequests.length = 0;
    const changes: string[] = [];
    for (const t of tokens) {
      const res = await chat(t);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      const change = res.headers.get("x-cashu-change")!;
      expect(change).toBeTruthy();
      // The client can check the change offline: the DLEQ proofs came along.
      const decoded = getDecodedToken(
        change,
        (await wallet.keyChain.getKeysets()).map((k) => k.id),
      );
      const keyset = wallet.keyChain.getKeyset(decoded.proofs[0]!.id);
      for (const p of decoded.proofs) expect(hasValidDleq(p, keyset)).toBe(true);
      changes.push(change);
    }
    expect(mintRequests).toEqual([]);
    for (const c of changes) purse.push(...(await wallet.receive(c)));
    const audit = await gw.gateway.ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    expect(audit.ecashMsat).toBe((await gw.gateway.wallet.balance(mintUrl)) * 1000);
  });

  it("a spent token is refused as over HTTP: 402 token_spent, nothing charged", async () => {
    const token = await pay(9);
    const first = await chat(token);
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    const before = await gw.gateway.ledger.audit();
    const again = await chat(token);
    expect(again.status).toBe(402);
    expect(((await again.json()) as { error: { type: string } }).error.type).toBe("token_spent");
    expect((await gw.gateway.ledger.audit()).balances).toEqual(before.balances);
  });
});
