/**
 * A hold orphaned without a crash (an error between hold and settlement) is refunded by the
 * sweeper after the stale time; a hold whose request is still being served is never touched.
 */
import { describe, expect, it } from "vitest";
import { createGateway } from "../../gateway/index.js";
import { join } from "node:path";
import { Accounts } from "../../gateway/ledger/index.js";
import { OneShotStore, oneShotAccount, openOneShot } from "../../gateway/payments/oneshot.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";

describe("stale hold sweeper", () => {
  it("refunds orphaned holds after the stale time and leaves fresh ones alone", async () => {
    const gw = await createGateway({
      dataDir: tempDir(),
      trustedMints: [],
      staleHoldMs: 200,
      sweepIntervalMs: 0,
      payoutIntervalMs: 0,
      log: silentLogger,
    });
    try {
      const user = Accounts.user("u1");
      await gw.ledger.transfer("test", "fund", [{ from: Accounts.promo, to: user, msat: 50_000 }]);
      await gw.ledger.hold("orphan", user, 20_000, "chat");
      expect(await gw.ledger.balance(user)).toBe(30_000);
      expect(await gw.sweepStaleHolds()).toBe(0); // not stale yet
      await new Promise((r) => setTimeout(r, 250));
      await gw.ledger.hold("fresh", user, 5_000, "chat");
      expect(await gw.sweepStaleHolds()).toBe(1);
      expect(await gw.ledger.balance(user)).toBe(45_000);
      expect((await gw.ledger.getHold("orphan"))!.state).toBe("released");
      expect((await gw.ledger.getHold("fresh"))!.state).toBe("active");
      expect((await gw.ledger.audit()).imbalanceMsat).toBe(0);
    } finally {
      gw.closeSockets();
      await gw.close();
    }
  });

  it("a stale hold of an L402 credential is refunded and the credential may be presented again", async () => {
    const dir = tempDir();
    const gw = await createGateway({
      dataDir: dir,
      trustedMints: [],
      staleHoldMs: 100,
      sweepIntervalMs: 0,
      payoutIntervalMs: 0,
      log: silentLogger,
    });
    const store = new OneShotStore(join(dir, "payments.sqlite"));
    try {
      const id = "l402:" + "ab".repeat(32);
      store.add({
        id,
        kind: "l402",
        amount_sat: 20,
        route: "/v1/chat/completions",
        state: "paid",
        mint: null,
        quote: null,
      });
      await gw.ledger.transfer("test", "fund", [
        { from: Accounts.promo, to: oneShotAccount(id), msat: 20_000 },
      ]);
      // A request took the credential and then its settlement was lost (no crash, no restart).
      await openOneShot(gw.ledger, store, store.get(id)!, 2, {});
      expect(store.get(id)!.state).toBe("in_use");
      await new Promise((r) => setTimeout(r, 150));
      expect(await gw.sweepStaleHolds()).toBe(1);
      expect(store.get(id)!.state).toBe("paid");
      expect(await gw.ledger.balance(oneShotAccount(id))).toBe(20_000);
      // … and it pays for one request again, once.
      await openOneShot(gw.ledger, store, store.get(id)!, 2, {});
      await expect(openOneShot(gw.ledger, store, store.get(id)!, 2, {})).rejects.toThrow(/already used/);
      expect((await gw.ledger.audit()).imbalanceMsat).toBe(0);
    } finally {
      store.close();
      gw.closeSockets();
      await gw.close();
    }
  });
});
