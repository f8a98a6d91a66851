/**
 * Three real `owlrun-mcp mint --database-url` processes on one PostgreSQL database, each with its
 * own data dir holding the same master-secret file: a proof is spent once whichever process each
 * swap lands on, a quote made on one is issued through another (once), a rotation on the shared
 * database reaches them all, and a process with another secret is refused. Needs `npm run build`.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { proofY, toHex } from "../../gateway/mint/crypto.js";
import { externalInvoice, postJson, randomOutputs, rawProofs } from "../support/blinded.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, runCli, startCli, tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const SWAPS = 100;
let db: { url: string; drop(): Promise<void> };
let procs: CliProcess[] = [];
let dirs: string[] = [];

const mintArgs = (dir: string) => [
  "mint",
  "--port",
  "0",
  "--data-dir",
  dir,
  "--database-url",
  db.url,
  "--fake-delay-ms",
  "300",
];

beforeAll(async () => {
  db = await testDatabase("mintp");
  dirs = [tempDir(), tempDir(), tempDir()];
  const a = await startCli(mintArgs(dirs[0]!));
  // The operator's step: every process gets the first one's secret file.
  for (const d of dirs.slice(1)) {
    mkdirSync(join(d, "mint"), { recursive: true, mode: 0o700 });
    copyFileSync(join(dirs[0]!, "mint", "master-secret"), join(d, "mint", "master-secret"));
  }
  const [b, c] = await Promise.all(dirs.slice(1).map((d) => startCli(mintArgs(d))));
  procs = [a, b!, c!];
}, 90_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await db.drop();
});

describe("three mint processes on one PostgreSQL", () => {
  it("serve one keyset, and refuse a fourth process with a different master secret", async () => {
    const ids = await Promise.all(
      procs.map(async (p) =>
        ((await (await fetch(`${p.url}/v1/keys`)).json()) as any).keysets.map((k: any) => k.id),
      ),
    );
    expect(ids[0]).toHaveLength(1);
    expect(ids[1]).toEqual(ids[0]);
    expect(ids[2]).toEqual(ids[0]);
    await expect(startCli(mintArgs(tempDir()))).rejects.toThrow(/master-secret/);
    // …and it added no keyset of its own.
    const keysets = ((await (await fetch(`${procs[2]!.url}/v1/keysets`)).json()) as any).keysets;
    expect(keysets).toHaveLength(1);
  });

  it(`${SWAPS} concurrent swaps of the same proofs spread over A, B and C: exactly one succeeds`, async () => {
    const wallet = await newWallet(procs[0]!.url);
    const proofs = await mintProofs(wallet, 100);
    expect(sumAmounts(proofs)).toBe(100);
    const inputs = rawProofs(proofs);
    const keysetId = proofs[0]!.id;
    const results = await Promise.all(
      Array.from({ length: SWAPS }, (_, i) =>
        postJson(`${procs[i % 3]!.url}/v1/swap`, { inputs, outputs: randomOutputs(100, keysetId) }),
      ),
    );
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(sumAmounts(ok[0]!.body.signatures)).toBe(100);
    const refused = results.filter((r) => r.status === 400 && r.body.code === 11001);
    expect(refused).toHaveLength(SWAPS - 1);
    expect(refused[0]!.body.detail).toMatch(/already spent/i);
    // Every process reports them spent.
    for (const p of procs) {
      const states = await (await newWallet(p.url)).checkProofsStates(proofs);
      expect(states.every((s) => s.state === "SPENT")).toBe(true);
    }
  });

  it("a mint quote created on A is paid and issued through B, once across the processes", async () => {
    const [a, b, c] = procs as [CliProcess, CliProcess, CliProcess];
    const onA = await newWallet(a.url);
    const onB = await newWallet(b.url);
    const quote = await onA.createMintQuoteBolt11(32);
    const deadline = Date.now() + 15_000;
    while ((await onB.checkMintQuoteBolt11(quote.quote)).state !== "PAID") {
      if (Date.now() > deadline) throw new Error("quote not paid");
      await new Promise((r) => setTimeout(r, 50));
    }
    const proofs = await onB.mintProofsBolt11(32, quote.quote);
    expect(sumAmounts(proofs)).toBe(32);
    expect((await onA.checkMintQuoteBolt11(quote.quote)).state).toBe("ISSUED");
    // The proofs B signed are good at C.
    const swapped = await (
      await newWallet(c.url)
    ).receive({ mint: c.url, proofs, unit: "sat" } as Parameters<typeof onA.receive>[0]);
    expect(sumAmounts(swapped)).toBe(32);

    // A second paid quote, issued by many requests at once over the three: one gets signatures.
    const second = await onA.createMintQuoteBolt11(16);
    while ((await onB.checkMintQuoteBolt11(second.quote)).state !== "PAID") {
      if (Date.now() > deadline) throw new Error("quote not paid");
      await new Promise((r) => setTimeout(r, 50));
    }
    const keysetId = proofs[0]!.id;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        postJson(`${procs[i % 3]!.url}/v1/mint/bolt11`, {
          quote: second.quote,
          outputs: randomOutputs(16, keysetId),
        }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400 && r.body.code === 20002)).toHaveLength(29);
  });

  it("a melt quote is paid once: ten melts of it with different proofs over A, B and C", async () => {
    const wallet = await newWallet(procs[0]!.url);
    const quote = (
      await postJson(`${procs[1]!.url}/v1/melt/quote/bolt11`, { request: externalInvoice(8), unit: "sat" })
    ).body;
    const need = quote.amount + quote.fee_reserve;
    const sets = await Promise.all(Array.from({ length: 10 }, () => mintProofs(wallet, need)));
    const results = await Promise.all(
      sets.map((proofs, i) =>
        postJson(`${procs[i % 3]!.url}/v1/melt/bolt11`, { quote: quote.quote, inputs: rawProofs(proofs) }),
      ),
    );
    const paid = results.filter((r) => r.status === 200);
    expect(paid).toHaveLength(1);
    expect(paid[0]!.body.state).toBe("PAID");
    for (const r of results.filter((r) => r.status !== 200)) {
      expect(r.status).toBe(400);
      // pending (another process holds the melt) or already paid
      expect([20005, 20006]).toContain(r.body.code);
    }
    // Exactly one set of proofs was spent; the nine others are free to use.
    const states = await Promise.all(sets.map((p) => wallet.checkProofsStates(p)));
    const spentSets = states.filter((s) => s.every((x) => x.state === "SPENT"));
    const freeSets = states.filter((s) => s.every((x) => x.state === "UNSPENT"));
    expect([spentSets.length, freeSets.length]).toEqual([1, 9]);
  });

  it("a NUT-17 subscriber on C hears of proofs spent through A", async () => {
    const wallet = await newWallet(procs[0]!.url);
    const proofs = await mintProofs(wallet, 4);
    const ys = proofs.map((p) => toHex(proofY(p.secret)));
    const ws = new WebSocket(`${procs[2]!.url.replace(/^http/, "ws")}/v1/ws`);
    const states: string[] = [];
    const spentSeen = new Promise<void>((resolve) =>
      ws.on("message", (raw) => {
        const msg = JSON.parse(raw.toString());
        if (msg.method !== "subscribe") return;
        states.push(msg.params.payload.state);
        if (msg.params.payload.state === "SPENT") resolve();
      }),
    );
    await new Promise((r) => ws.once("open", r));
    ws.send(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "subscribe",
        params: { kind: "proof_state", subId: "s1", filters: [ys[0]] },
      }),
    );
    await expect.poll(() => states.length).toBeGreaterThan(0);
    expect(states[0]).toBe("UNSPENT");
    const swapped = await postJson(`${procs[0]!.url}/v1/swap`, {
      inputs: rawProofs(proofs),
      outputs: randomOutputs(4, proofs[0]!.id),
    });
    expect(swapped.status).toBe(200);
    await spentSeen;
    ws.close();
  });

  it("a melt in flight is left alone by another process's recovery, and recovered once its process is killed", async () => {
    // The secret file of the running processes, in a fresh data dir.
    const withSecret = () => {
      const d = tempDir();
      mkdirSync(join(d, "mint"), { recursive: true, mode: 0o700 });
      copyFileSync(join(dirs[0]!, "mint", "master-secret"), join(d, "mint", "master-secret"));
      return d;
    };
    const slow = await startCli([...mintArgs(withSecret()), "--fake-pay-delay-ms", "60000"]);
    const wallet = await newWallet(procs[0]!.url);
    const proofs = await mintProofs(wallet, 40);
    const quote = (
      await postJson(`${slow.url}/v1/melt/quote/bolt11`, { request: externalInvoice(30), unit: "sat" })
    ).body;
    const inflight = postJson(`${slow.url}/v1/melt/bolt11`, {
      quote: quote.quote,
      inputs: rawProofs(proofs),
    }).catch(() => "connection lost");
    await expect
      .poll(async () => (await wallet.checkProofsStates(proofs)).every((s) => s.state === "PENDING"))
      .toBe(true);
    // A process starting now runs its recovery at once: its fake node never heard of the payment
    // (FAILED), but the melt is leased by the process paying it, so it is not touched.
    const late = await startCli(mintArgs(withSecret()));
    try {
      expect((await wallet.checkProofsStates(proofs)).map((s) => s.state)).toEqual(
        proofs.map(() => "PENDING"),
      );
      const again = await postJson(`${late.url}/v1/melt/bolt11`, {
        quote: quote.quote,
        inputs: rawProofs(proofs).reverse(),
      });
      expect(again.body.code).toBe(20005);
    } finally {
      await late.stop();
    }
    // kill -9 ends the payer's session and with it the lease: the next recovery frees the proofs.
    await slow.kill();
    expect(await inflight).toBe("connection lost");
    const after = await startCli(mintArgs(withSecret()));
    try {
      await expect
        .poll(async () => (await wallet.checkProofsStates(proofs)).every((s) => s.state === "UNSPENT"))
        .toBe(true);
      const q = (await (await fetch(`${after.url}/v1/melt/quote/bolt11/${quote.quote}`)).json()) as any;
      expect(q.state).toBe("UNPAID");
    } finally {
      await after.stop();
    }
  });

  it("a keyset rotated on the shared database is the active one at every process", async () => {
    const rotated = await runCli(["mint", "rotate-keyset", "--data-dir", dirs[1]!, "--database-url", db.url]);
    expect(rotated.code).toBe(0);
    const id = /active keyset (\S+)/.exec(rotated.stdout)?.[1];
    expect(id).toBeTruthy();
    for (const p of procs) {
      const active = ((await (await fetch(`${p.url}/v1/keys`)).json()) as any).keysets.map((k: any) => k.id);
      expect(active).toEqual([id]);
    }
  });
});
