/**
 * Gateways started again and again over one data dir (and one PostgreSQL database when given), as
 * the crash-and-restart tests run them: each start opens its own database pool, as a restarted
 * process would, and `closeAll()` ends whatever a failed test left running.
 */
import { type GatewayOptions, type RunningGateway, startGateway } from "../../gateway/index.js";
import { PgDatabase, silentLogger } from "../../src/shared/index.js";

export interface StartedGateway {
  gw: RunningGateway;
  database?: PgDatabase;
  /** closes the gateway, then its database pool (a clean stop; a crash is simply not calling it) */
  stop(): Promise<void>;
}

export class Restarts {
  private readonly running: StartedGateway[] = [];

  /** Starts a gateway with the tests' quiet defaults (no timers, a fixed BTC price, port 0). */
  async start(
    options: Omit<GatewayOptions, "database" | "log"> & { port?: number },
    databaseUrl?: string,
  ): Promise<StartedGateway> {
    const database = databaseUrl ? await PgDatabase.open(databaseUrl) : undefined;
    const gw = await startGateway({
      port: 0,
      offlineBtcUsd: 100_000,
      log: silentLogger,
      payoutIntervalMs: 0,
      sweepIntervalMs: 0,
      ...options,
      ...(database ? { database } : {}),
    });
    const started: StartedGateway = {
      gw,
      database,
      async stop() {
        await gw.close();
        await database?.close();
      },
    };
    this.running.push(started);
    return started;
  }

  async closeAll(): Promise<void> {
    for (const { gw, database } of this.running.splice(0)) {
      await gw.close().catch(() => undefined);
      await database?.close().catch(() => undefined);
    }
  }
}
