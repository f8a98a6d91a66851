/**
 * `createGateway({ database })` keeps its books in PostgreSQL: what one gateway posts another
 * process reads, no ledger.sqlite is written, and the sweeper ends a stale hold once.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createGateway } from "../../gateway/index.js";
import { Accounts, Ledger } from "../../gateway/ledger/index.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

describe("gateway ledger on PostgreSQL", () => {
  let db: { url: string; drop(): Promise<void> };
  let pools: PgDatabase[];
  beforeEach(async () => {
    db = await testDatabase("gwledger");
    pools = [await PgDatabase.open(db.url, { max: 4 }), await PgDatabase.open(db.url, { max: 4 })];
  });
  afterEach(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await db.drop();
  });

  it("posts to the shared database, and the sweeper ends a stale hold once across two gateways", async () => {
    const dirs = [tempDir(), tempDir()];
    const gws = await Promise.all(
      dirs.map((dataDir, i) =>
        createGateway({
          dataDir,
          database: pools[i],
          trustedMints: [],
          staleHoldMs: 100,
          sweepIntervalMs: 0,
          payoutIntervalMs: 0,
          log: silentLogger,
        }),
      ),
    );
    try {
      const [a, b] = gws as [(typeof gws)[0], (typeof gws)[0]];
      const user = Accounts.user("u1");
      await a.ledger.transfer("test", "fund", [{ from: Accounts.promo, to: user, msat: 50_000 }]);
      await a.ledger.hold("orphan", user, 20_000, "chat");
      expect(await b.ledger.balance(user)).toBe(30_000);
      for (const dir of dirs) expect(existsSync(join(dir, "ledger.sqlite"))).toBe(false);
      await new Promise((r) => setTimeout(r, 150));
      const swept = await Promise.all([a.sweepStaleHolds(), b.sweepStaleHolds()]);
      expect(swept[0] + swept[1]).toBe(1);
      const outside = Ledger.open("", pools[1]);
      expect(await outside.balance(user)).toBe(50_000);
      expect((await outside.getHold("orphan"))!.state).toBe("released");
      expect((await outside.audit()).imbalanceMsat).toBe(0);
    } finally {
      for (const gw of gws) {
        gw.closeSockets();
        await gw.close();
      }
    }
  });
});
