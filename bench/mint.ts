/**
 * Mint swap throughput over HTTP, printed next to the cost of the curve work per proof measured in
 * the same run: native libsecp256k1 (what the mint uses) and cashu-ts/noble (the reference).
 *
 *   npm run bench            (builds first; the mint runs as a child process)
 */
import { randomBytes } from "node:crypto";
import {
  blindMessage,
  createBlindSignature,
  createDLEQProof,
  getEncodedToken,
  pointFromHex,
  verifyUnblindedSignature,
} from "@cashu/cashu-ts";
import secp from "secp256k1";
import { hashToCurve, publicKeyOf, signOutput, verifyProof } from "../gateway/mint/crypto.js";
import { newWallet } from "../test/support/cashu.js";
import { startCli, tempDir } from "../test/support/cli-process.js";
import { saveSection } from "./results.js";

const PROOFS = Number(process.env.BENCH_PROOFS ?? 1000);
const PER_SWAP = 10;
const CONCURRENCY = 4;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function timeIt(n: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
}

/** ms per proof: verify one input + sign one output with DLEQ. */
function cryptoCosts() {
  const k = new Uint8Array(randomBytes(32));
  const K = publicKeyOf(k);
  const secret = randomBytes(32).toString("hex");
  const { B_ } = blindMessage(new TextEncoder().encode(secret));
  const Bbytes = B_.toBytes(true);
  const C = secp.publicKeyTweakMul(hashToCurve(Buffer.from(secret)), k, true);
  const native = timeIt(500, () => {
    verifyProof(secret, C, k);
    signOutput(Bbytes, k, K);
  });
  const Cpoint = pointFromHex(hex(C));
  const noble = timeIt(20, () => {
    verifyUnblindedSignature({ C: Cpoint, secret: new TextEncoder().encode(secret), id: "00" }, k);
    createBlindSignature(B_, k, "00");
    createDLEQProof(B_, k);
  });
  return { native, noble };
}

interface Keys {
  id: string;
  keys: Record<string, string>;
}

/** Native wallet-side blinding, so setup and request building stay cheap and out of the timing. */
function blind(amount: number, keysetId: string) {
  const secret = randomBytes(32).toString("hex");
  const r = new Uint8Array(randomBytes(32));
  const B_ = secp.publicKeyCombine([hashToCurve(Buffer.from(secret)), secp.publicKeyCreate(r, true)], true);
  return { secret, r, output: { amount, id: keysetId, B_: hex(B_) } };
}

function unblind(C_: string, r: Uint8Array, K: string): string {
  const negR = secp.privateKeyNegate(Buffer.from(r));
  return hex(
    secp.publicKeyCombine(
      [Buffer.from(C_, "hex"), secp.publicKeyTweakMul(Buffer.from(K, "hex"), negR, true)],
      true,
    ),
  );
}

async function post(url: string, body: unknown) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function mintOneSatProofs(url: string, keyset: Keys, n: number) {
  const quote = await post(`${url}/v1/mint/quote/bolt11`, { amount: n, unit: "sat" });
  for (;;) {
    const q = (await (await fetch(`${url}/v1/mint/quote/bolt11/${quote.quote}`)).json()) as any;
    if (q.state === "PAID") break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const blinded = Array.from({ length: n }, () => blind(1, keyset.id));
  const { signatures } = await post(`${url}/v1/mint/bolt11`, {
    quote: quote.quote,
    outputs: blinded.map((b) => b.output),
  });
  return blinded.map((b, i) => ({
    amount: 1,
    id: keyset.id,
    secret: b.secret,
    C: unblind(signatures[i].C_, b.r, keyset.keys["1"]!),
  }));
}

async function main() {
  const costs = cryptoCosts();
  const mint = await startCli([
    "mint",
    "--port",
    "0",
    "--data-dir",
    tempDir("owlrun-bench-"),
    "--fake-delay-ms",
    "0",
  ]);
  try {
    const keyset = ((await (await fetch(`${mint.url}/v1/keys`)).json()) as any).keysets[0] as Keys;
    const proofs = await mintOneSatProofs(mint.url, keyset, PROOFS);

    // Mint-bound: requests built before the clock starts, sent by CONCURRENCY parallel clients.
    const requests: unknown[] = [];
    for (let i = 0; i < proofs.length; i += PER_SWAP) {
      const inputs = proofs.slice(i, i + PER_SWAP);
      requests.push({ inputs, outputs: inputs.map(() => blind(1, keyset.id).output) });
    }
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) await post(`${mint.url}/v1/swap`, requests[next++]);
      }),
    );
    const httpSeconds = (performance.now() - t0) / 1000;
    const httpProofsPerSec = proofs.length / httpSeconds;

    // End to end with the real cashu-ts wallet: its own noble curve work is part of each receive.
    const wallet = await newWallet(mint.url);
    const fresh = await mintOneSatProofs(mint.url, keyset, 200);
    const tokens = Array.from({ length: 20 }, (_, i) =>
      getEncodedToken({ mint: mint.url, proofs: fresh.slice(i * 10, i * 10 + 10) as any, unit: "sat" }),
    );
    const t1 = performance.now();
    for (const t of tokens) await wallet.receive(t);
    const walletProofsPerSec = 200 / ((performance.now() - t1) / 1000);

    const nativeLimit = 1000 / costs.native;
    const nobleLimit = 1000 / costs.noble;
    const result = {
      node: process.version,
      proofs: proofs.length,
      per_swap: PER_SWAP,
      concurrency: CONCURRENCY,
      crypto_ms_per_proof_native: +costs.native.toFixed(4),
      crypto_ms_per_proof_cashu_ts: +costs.noble.toFixed(3),
      crypto_limit_proofs_per_s_native: Math.round(nativeLimit),
      crypto_limit_proofs_per_s_cashu_ts: Math.round(nobleLimit),
      http_swap_proofs_per_s: Math.round(httpProofsPerSec),
      ratio_http_vs_native_limit: +(httpProofsPerSec / nativeLimit).toFixed(3),
      speedup_vs_cashu_ts_limit: +(httpProofsPerSec / nobleLimit).toFixed(1),
      wallet_receive_proofs_per_s: Math.round(walletProofsPerSec),
    };
    console.log("mint swap benchmark (one run)");
    console.table({
      "curve work per proof, native": `${result.crypto_ms_per_proof_native} ms → ${result.crypto_limit_proofs_per_s_native} proofs/s`,
      "curve work per proof, cashu-ts/noble": `${result.crypto_ms_per_proof_cashu_ts} ms → ${result.crypto_limit_proofs_per_s_cashu_ts} proofs/s`,
      "HTTP swap throughput (mint-bound)": `${result.http_swap_proofs_per_s} proofs/s`,
      "  ratio to native crypto limit (goal ≥ 0.5)": result.ratio_http_vs_native_limit,
      "  speed-up over the cashu-ts/noble limit": `${result.speedup_vs_cashu_ts_limit}×`,
      "cashu-ts wallet receive (client-bound)": `${result.wallet_receive_proofs_per_s} proofs/s`,
    });
    saveSection("mint", result);
  } finally {
    await mint.stop();
  }
}

await main();
