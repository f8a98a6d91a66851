/**
 * Two gateway processes' worth in this process on one fresh PostgreSQL database, each with its own
 * data dir and connection pool: A serves the bundled mint at /mint, B trusts it. What the cluster
 * tests race against each other.
 */
import { join } from "node:path";
import { type GatewayOptions, type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { PgDatabase, silentLogger } from "../../src/shared/index.js";
import { tempDir } from "./cli-process.js";
import { testDatabase } from "./postgres.js";

export interface GatewayPair {
  a: RunningGateway;
  b: RunningGateway;
  /** the bundled mint on A */
  mintUrl: string;
  /** A's and B's connection pools */
  dbs: PgDatabase[];
  /** closes A, then B, then the pools, and drops the database */
  close(): Promise<void>;
}

export interface GatewayPairOptions {
  /** the test database's name prefix */
  prefix: string;
  /** the mint's state in the shared database too (default: mint.sqlite in its data dir) */
  mintOnDatabase?: boolean;
  /** options both gateways get (default: payouts, sweeper and top-up poll off, silent) */
  gateway?: Partial<GatewayOptions>;
}

export async function startGatewayPair(opts: GatewayPairOptions): Promise<GatewayPair> {
  const pg = await testDatabase(opts.prefix);
  const dbs = [await PgDatabase.open(pg.url, { max: 6 }), await PgDatabase.open(pg.url, { max: 6 })];
  let a: RunningGateway | undefined;
  let b: RunningGateway | undefined;
  const close = async () => {
    await a?.close();
    await b?.close();
    await Promise.all(dbs.map((d) => d.close()));
    await pg.drop();
  };
  try {
    const dir = tempDir();
    const common = {
      port: 0,
      payoutIntervalMs: 0,
      sweepIntervalMs: 0,
      topupPollMs: 0,
      log: silentLogger,
      ...opts.gateway,
    };
    a = await startGateway({
      ...common,
      dataDir: join(dir, "a"),
      trustedMints: [],
      database: dbs[0],
      bundledMint: await createBundledMint({
        dataDir: join(dir, "mint"),
        ...(opts.mintOnDatabase ? { database: dbs[0] } : {}),
        lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
        log: silentLogger,
      }),
    });
    const mintUrl = `${a.url}/mint`;
    b = await startGateway({ ...common, dataDir: join(dir, "b"), trustedMints: [mintUrl], database: dbs[1] });
    return { a, b, mintUrl, dbs, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
