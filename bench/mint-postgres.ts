/**
 * Mint swap throughput over HTTP in one run: one process on SQLite, one process on PostgreSQL, and
 * three processes on one PostgreSQL database (requests spread round-robin). Each configuration gets
 * the same load: PROOFS one-sat proofs, PER_SWAP per request, CONCURRENCY clients per process.
 * `BENCH_BASE_CLI=<path to another build's cli.js>` adds a SQLite row for that build (before/after).
 *
 *   npm run build && tsx bench/mint-postgres.ts
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import secp from "secp256k1";
import { hashToCurve } from "../gateway/mint/crypto.js";
import { CLI, tempDir } from "../test/support/cli-process.js";
import { createDatabase, startPostgres } from "../test/support/postgres-server.js";
import { saveSection } from "./results.js";

const PROOFS = Number(process.env.BENCH_PROOFS ?? 2000);
const PER_SWAP = 10;
const CONCURRENCY = 4;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

interface Proc {
  url: string;
  stop(): Promise<void>;
}

function start(cli: string, args: string[]): Promise<Proc> {
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, OWLRUN_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return new Promise((resolve, reject) => {
    let out = "";
    child.once("exit", (code) => reject(new Error(`mint exited with ${code}`)));
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /^listening (\S+)$/m.exec(out);
      if (m)
        resolve({
          url: m[1]!,
          stop: async () => {
            child.kill("SIGTERM");
            await exited;
          },
        });
    });
  });
}

function blind(keysetId: string) {
  const secret = randomBytes(32).toString("hex");
  const r = new Uint8Array(randomBytes(32));
  const B_ = secp.publicKeyCombine([hashToCurve(Buffer.from(secret)), secp.publicKeyCreate(r, true)], true);
  return { secret, r, output: { amount: 1, id: keysetId, B_: hex(B_) } };
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

async function oneSatProofs(url: string, n: number) {
  const keyset = ((await (await fetch(`${url}/v1/keys`)).json()) as any).keysets[0];
  const quote = await post(`${url}/v1/mint/quote/bolt11`, { amount: n, unit: "sat" });
  while (((await (await fetch(`${url}/v1/mint/quote/bolt11/${quote.quote}`)).json()) as any).state !== "PAID")
    await new Promise((r) => setTimeout(r, 20));
  const blinded = Array.from({ length: n }, () => blind(keyset.id));
  const { signatures } = await post(`${url}/v1/mint/bolt11`, {
    quote: quote.quote,
    outputs: blinded.map((b) => b.output),
  });
  const K = Buffer.from(keyset.keys["1"], "hex");
  return {
    keysetId: keyset.id as string,
    proofs: blinded.map((b, i) => ({
      amount: 1,
      id: keyset.id,
      secret: b.secret,
      C: hex(
        secp.publicKeyCombine(
          [
            Buffer.from(signatures[i].C_, "hex"),
            secp.publicKeyTweakMul(K, secp.privateKeyNegate(Buffer.from(b.r)), true),
          ],
          true,
        ),
      ),
    })),
  };
}

/** Proofs per second of swaps spread over `urls`, CONCURRENCY clients per process. */
async function swapLoad(urls: string[]): Promise<number> {
  // A mint request signs at most 1000 outputs.
  const batches = await Promise.all(
    Array.from({ length: Math.ceil(PROOFS / 1000) }, (_, i) =>
      oneSatProofs(urls[0]!, Math.min(1000, PROOFS - i * 1000)),
    ),
  );
  const keysetId = batches[0]!.keysetId;
  const proofs = batches.flatMap((b) => b.proofs);
  const requests: unknown[] = [];
  for (let i = 0; i < proofs.length; i += PER_SWAP) {
    const inputs = proofs.slice(i, i + PER_SWAP);
    requests.push({ inputs, outputs: inputs.map(() => blind(keysetId).output) });
  }
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY * urls.length }, async (_, c) => {
      while (next < requests.length) await post(`${urls[c % urls.length]}/v1/swap`, requests[next++]);
    }),
  );
  return Math.round(proofs.length / ((performance.now() - t0) / 1000));
}

const mintArgs = (dir: string, extra: string[] = []) => [
  "mint",
  "--port",
  "0",
  "--data-dir",
  dir,
  "--fake-delay-ms",
  "0",
  ...extra,
];

async function measure(procs: Proc[]): Promise<number> {
  try {
    return await swapLoad(procs.map((p) => p.url));
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

async function main() {
  const server = await startPostgres();
  try {
    const result: Record<string, number> = {};
    if (process.env.BENCH_BASE_CLI)
      result.sqlite_1_process_base_build = await measure([
        await start(process.env.BENCH_BASE_CLI, mintArgs(tempDir())),
      ]);
    result.sqlite_1_process = await measure([await start(CLI, mintArgs(tempDir()))]);
    const one = await createDatabase(server.adminUrl, "benchmint");
    result.postgres_1_process = await measure([
      await start(CLI, mintArgs(tempDir(), ["--database-url", one.url])),
    ]);
    const three = await createDatabase(server.adminUrl, "benchmint");
    const first = tempDir();
    const a = await start(CLI, mintArgs(first, ["--database-url", three.url]));
    const others = await Promise.all(
      [tempDir(), tempDir()].map((d) => {
        mkdirSync(join(d, "mint"), { recursive: true });
        copyFileSync(join(first, "mint", "master-secret"), join(d, "mint", "master-secret"));
        return start(CLI, mintArgs(d, ["--database-url", three.url]));
      }),
    );
    result.postgres_3_processes = await measure([a, ...others]);
    console.log(`mint swap throughput, proofs/s (${PROOFS} one-sat proofs, ${PER_SWAP} per swap)`);
    console.table(result);
    saveSection("mint_postgres", {
      proofs: PROOFS,
      per_swap: PER_SWAP,
      concurrency_per_process: CONCURRENCY,
      ...result,
    });
  } finally {
    await server.stop();
  }
}

await main();
