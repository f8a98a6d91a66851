/**
 * The MCP server's local wallet against the bundled mint (child process, real HTTP): top up over
 * (fake) Lightning, send and receive, withdraw with change, spend limits, and restore from the
 * recovery phrase alone.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/shared/index.js";
import { LocalWallet, SpendLimitError } from "../../src/wallet/index.js";
import { externalInvoice } from "../support/blinded.js";
import "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

let mint: CliProcess;
beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "50"]);
});
afterAll(async () => {
  await mint.stop();
});

async function fund(wallet: LocalWallet, amount: number) {
  const q = await wallet.topup(mint.url, amount);
  for (let i = 0; i < 100; i++) {
    const s = await wallet.topupStatus(q.quote);
    if (s.state === "claimed") return;
    await new Promise((r) => setTimeout(r, 30));
  }
  throw new Error("top-up never paid");
}

describe("local wallet", () => {
  it("creates a recovery phrase once (0600) and keeps it", () => {
    const dir = tempDir();
    const a = LocalWallet.open(dir, silentLogger);
    expect(a.createdSeed).toBe(true);
    expect(a.mnemonic.split(" ")).toHaveLength(12);
    expect(statSync(join(dir, "wallet", "mnemonic")).mode & 0o777).toBe(0o600);
    a.close();
    const b = LocalWallet.open(dir, silentLogger);
    expect(b.createdSeed).toBe(false);
    expect(b.mnemonic).toBe(a.mnemonic);
    b.close();
  });

  it("tops up, sends to a second wallet, withdraws with change, and restores from the phrase", async () => {
    const dir = tempDir();
    const alice = LocalWallet.open(dir, silentLogger, { limits: { perCallSat: 50, perDaySat: 500 } });
    await fund(alice, 300);
    expect(alice.balance()).toEqual({ total_sats: 300, mints: { [mint.url]: 300 } });

    const bob = LocalWallet.open(tempDir(), silentLogger);
    const { token } = await alice.send(40);
    expect(await bob.receive(token)).toEqual({ mint: mint.url, amountSat: 40 });
    expect(bob.balance().total_sats).toBe(40);
    expect(alice.balance().total_sats).toBe(260);

    const w = await alice.withdraw(externalInvoice(100));
    expect(w.paidSat).toBe(100);
    expect(w.feeSat).toBe(1); // fake Lightning: 1 sat routing fee of the 2-sat reserve
    expect(alice.balance().total_sats).toBe(159);

    expect(alice.checkSpend(60)).toEqual({ overPerCall: true });
    expect(alice.checkSpend(10)).toEqual({ overPerCall: false });
    expect(() => alice.checkSpend(400)).toThrow(SpendLimitError);

    // Only the phrase survives: a fresh data dir restores exactly the unspent balance.
    const restored = LocalWallet.open(tempDir(), silentLogger, { restoreFrom: alice.mnemonic });
    expect(restored.createdSeed).toBe(true);
    const r = await restored.restore(mint.url);
    expect(r.restoredSat).toBe(159);
    expect(restored.balance().total_sats).toBe(159);
    // And the restored wallet can spend (its counters moved past what was found).
    await fund(restored, 10);
    expect(restored.balance().total_sats).toBe(169);
    for (const x of [alice, bob, restored]) x.close();
  });
});
