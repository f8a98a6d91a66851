/**
 * What an unpaid request costs the gateway (issue 15 item 6), measured in one run:
 *   macaroon  — the L402 macaroon of one challenge (3 caveats): macaroon@3.0.4 (the library the
 *               gateway used, kept as a devDependency for interop tests) vs our V2 codec; time per
 *               macaroon and the bytes of the buffer it leaves behind
 *   402       — whole unpaid POST /v1/chat/completions → 402 challenges (mint quote + row + macaroon)
 *               through HTTP against an in-process gateway with its bundled mint: p50/p99 and per second
 *
 *   npx tsx bench/challenge.ts      (BENCH_N=… challenges)
 */
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import express from "express";
import { newMacaroon } from "macaroon";
import { createGateway } from "../gateway/index.js";
import { encodeMacaroon, mintMacaroon } from "../gateway/payments/macaroon.js";
import { createLightningBackend, createMintService } from "../gateway/mint/index.js";
import { closeServer, listen, silentLogger } from "../src/shared/index.js";
import { tempDir } from "../test/support/cli-process.js";
import { startAgent } from "../test/support/owlrun-agent.js";
import { pct, saveSection } from "./results.js";

const N = Number(process.env.BENCH_N ?? 200);
const MODEL = "owlrun-bench:tiny";
const rootKey = randomBytes(32);
const identifier = randomBytes(66);
const caveats = [`payment_hash = ${"ab".repeat(32)}`, "route = /v1/chat/completions", "expires = 1900000000"];

function perMacaroon(make: () => Uint8Array, n: number): { ms: number; bufferBytes: number } {
  let bufferBytes = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) bufferBytes = make().buffer.byteLength;
  return { ms: (performance.now() - t0) / n, bufferBytes };
}

async function main() {
  const old = perMacaroon(() => {
    const m = newMacaroon({ identifier, location: "owlrun-gateway", rootKey });
    for (const c of caveats) m.addFirstPartyCaveat(c);
    return m.exportBinary();
  }, 20);
  const ours = perMacaroon(
    () =>
      new Uint8Array(
        encodeMacaroon(mintMacaroon({ rootKey, identifier, location: "owlrun-gateway", caveats })),
      ),
    2000,
  );
  console.log(
    `macaroon@3.0.4  ${old.ms.toFixed(2)} ms, leaves a ${(old.bufferBytes / 1e6).toFixed(0)} MB buffer\n` +
      `our V2 codec    ${ours.ms.toFixed(3)} ms, ${ours.bufferBytes} bytes`,
  );

  const dir = tempDir("owlrun-bench-402-");
  const mint = await createMintService({
    dataDir: `${dir}/mint`,
    lightning: createLightningBackend("fake", { incomingDelayMs: 10_000_000 }),
    log: silentLogger,
  });
  const gateway = await createGateway({
    dataDir: `${dir}/gateway`,
    trustedMints: [],
    challengesPerMinute: N * 10,
    log: silentLogger,
  });
  const app = express();
  app.use("/mint", mint.router);
  app.use(gateway.app);
  const server = createServer(app);
  gateway.attach(server);
  const url = await listen(server, "127.0.0.1", 0);
  gateway.wallet.trust(`${url}/mint`, true);
  const agent = await startAgent(url, { models: [MODEL], reply: ["ok"] });
  await new Promise((r) => setTimeout(r, 100));
  const body = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 });
  const unpaid = async () => {
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    if (r.status !== 402) throw new Error(`HTTP ${r.status}`);
    await r.arrayBuffer();
  };
  for (let i = 0; i < 10; i++) await unpaid();
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await unpaid();
    lat.push(performance.now() - t);
  }
  const perSecond = N / ((performance.now() - t0) / 1000);
  console.log(
    `402 challenge   p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, ${perSecond.toFixed(0)}/s (1 client)`,
  );
  saveSection("challenge", {
    n: N,
    macaroon_old_ms: old.ms,
    macaroon_old_buffer_bytes: old.bufferBytes,
    macaroon_new_ms: ours.ms,
    macaroon_new_buffer_bytes: ours.bufferBytes,
    challenge_p50_ms: pct(lat, 50),
    challenge_p99_ms: pct(lat, 99),
    challenges_per_second: perSecond,
  });
  await agent.close();
  gateway.closeSockets();
  await closeServer(server);
  await gateway.close();
  await mint.close();
}

await main();
