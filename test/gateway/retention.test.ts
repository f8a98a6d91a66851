/**
 * Retention forgets history no hot path reads (spent wallet proofs, finished counter ranges, the
 * empty balance rows of ended holds, old public job records) without moving any balance: the
 * ledger's balances and sums, the wallet's balance and its denomination counts are identical before
 * and after, and with traffic going on the compacted tables stop growing. Real gateway, bundled
 * mint on the same server, X-Cashu requests over HTTP from a cashu-ts wallet.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { startGatewayBesideMint } from "../support/gateway-beside-mint.js";
import { postJson } from "../support/payments.js";
import { fundedPurse } from "../support/purse.js";

const MODEL = "owlrun-test-scripted:tiny";
const DAY = 86_400_000;

const rows = (file: string, table: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

/** The gateway, compacted only when the test says so, and a scripted node answering "ok". */
const startRetentionGateway = () =>
  startGatewayBesideMint({ models: [MODEL], reply: ["ok"] }, { retention: { intervalMs: 0 } });

/** One X-Cashu chat request of `token`. */
const chat = (url: string, token: string) =>
  postJson(
    `${url}/v1/chat/completions`,
    { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
    { "x-cashu": token },
  );

describe("retention", () => {
  it("compacts wallet, ledger and job history on a live gateway without changing any balance", async () => {
    const { dir, url, mintUrl, gw, close } = await startRetentionGateway();
    try {
      const purse = await fundedPurse(mintUrl, 600);
      const request = async () => {
        const res = await chat(url, await purse.token(9));
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      };
      const wallet = join(dir, "gateway", "wallet", "wallet.sqlite");
      const ledger = join(dir, "gateway", "ledger.sqlite");
      const books = async () => ({
        audit: await gw.ledger.audit(),
        wallet: await gw.wallet.balances(),
        entries: rows(ledger, "ledger_entries"),
      });
      const sizes: { proofs: number; balances: number; reservations: number }[] = [];
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 8; i++) await request();
        const before = await books();
        expect(before.audit.imbalanceMsat).toBe(0);
        const report = await gw.compactHistory(Date.now() + 31 * DAY);
        expect(report.walletRows).toBeGreaterThan(0);
        expect(report.balanceRows).toBeGreaterThan(0);
        expect(report.jobs).toBe(8);
        // No balance moved, no entry of the books went away.
        expect(await books()).toEqual(before);
        expect(before.audit.ecashMsat).toBe((await gw.wallet.balance(mintUrl)) * 1000);
        sizes.push({
          proofs: rows(wallet, "proofs"),
          balances: rows(ledger, "balances"),
          reservations: rows(wallet, "reservations"),
        });
      }
      // Traffic went on, the compacted tables did not grow (the pool keeps its stock).
      expect(sizes[3]!.reservations).toBe(0);
      expect(sizes[3]!.balances).toBe(sizes[1]!.balances);
      expect(sizes[3]!.proofs).toBeLessThanOrEqual(sizes[1]!.proofs + 4);
      expect(rows(join(dir, "gateway", "jobs.sqlite"), "jobs")).toBe(0);
    } finally {
      await close();
    }
  });

  it("forgets unfetched change only once its client redeemed it at the mint; unredeemed change stays claimable", async () => {
    const { dir, url, mintUrl, gw, close } = await startRetentionGateway();
    try {
      const purse = await fundedPurse(mintUrl, 200);
      const client = purse.wallet;
      /** one X-Cashu request; the change comes back in X-Cashu-Change, its id in the receipt */
      const request = async () => {
        const res = await chat(url, await purse.token(40));
        expect(res.status).toBe(200);
        const body = (await res.json()) as { payment: { request_id: string; change_sats: number } };
        expect(body.payment.change_sats).toBeGreaterThan(0);
        return { id: body.payment.request_id, token: res.headers.get("x-cashu-change")! };
      };
      const redeemedByClient = await request();
      const leftUnclaimed = await request();
      await client.receive(redeemedByClient.token);
      const wallet = join(dir, "gateway", "wallet", "wallet.sqlite");
      expect(rows(wallet, "change")).toBe(2);
      const before = { audit: await gw.ledger.audit(), wallet: await gw.wallet.balances() };

      // Within the retention window nothing is touched, redeemed or not.
      expect((await gw.compactHistory(Date.now() + DAY)).changeRows).toBe(0);
      expect(rows(wallet, "change")).toBe(2);

      const report = await gw.compactHistory(Date.now() + 8 * DAY);
      expect(report.changeRows).toBe(1);
      expect(rows(wallet, "change")).toBe(1);
      expect({ audit: await gw.ledger.audit(), wallet: await gw.wallet.balances() }).toEqual(before);
      // The redeemed copy is gone; the unclaimed change is still the client's, whatever its age.
      const gone = await fetch(`${url}/v1/cashu/change/${redeemedByClient.id}`);
      expect(gone.status).toBe(404);
      await gone.arrayBuffer();
      const kept = await fetch(`${url}/v1/cashu/change/${leftUnclaimed.id}`);
      expect(kept.status).toBe(200);
      expect(((await kept.json()) as { token: string }).token).toBe(leftUnclaimed.token);
      // Fetched now: the fetched-change rule takes it after its own window, not the redeemed check.
      expect((await gw.compactHistory(Date.now() + 100 * DAY)).changeRows).toBe(0);
      const redeemed = await client.receive(leftUnclaimed.token);
      expect(redeemed.length).toBeGreaterThan(0);
    } finally {
      await close();
    }
  });
});
