/**
 * Several gateway processes on one PostgreSQL database, as an operator runs them behind one load
 * balancer (docs/scaling.md): built-CLI child processes `owlrun-mcp gateway --database-url …
 * --data-dir <own dir> --mint-url <mint>`, each on its own port, and ONE mint for all of them,
 * `owlrun-mcp mint --database-url …` on the same database (its `mint_…` tables).
 *
 * Why one external mint and not each gateway's bundled mint: the gateways share one ecash pool,
 * one change table and one ledger, all keyed by the mint's URL, and a buyer's token names one mint
 * URL. A bundled mint is trusted under its own process's listening URL (`<url>/mint`), so three
 * bundled mints would be three mint URLs for one shared pool. A mint at its own address (which can
 * itself be several `mint --database-url` processes with one master-secret behind the balancer) is
 * the same URL for every gateway process, every token and every change.
 *
 * Needs `npm run build` (the children run dist/).
 */
import { join } from "node:path";
import { waitFor } from "../mcp/harness.js";
import { type CliProcess, startCli, tempDir } from "./cli-process.js";
import { type GatewayBooks, settledGatewayBooks } from "./money.js";
import { testDatabase } from "./postgres.js";

export interface ClusterNetOptions {
  /** gateway processes (default 3) */
  gateways?: number;
  /** extra flags for every gateway process (`--btc-usd 20`, …) */
  gatewayArgs?: string[];
  /** ms until a fake Lightning invoice counts as paid (default 20) */
  fakeDelayMs?: number;
}

export class ClusterNet {
  readonly root = tempDir("owlrun-cluster-net-");
  /** the running gateway processes, by index (replaced on restart) */
  readonly gateways: CliProcess[] = [];
  private readonly ports: string[] = [];
  mint!: CliProcess;

  private constructor(
    readonly database: { url: string; drop(): Promise<void> },
    private readonly opts: Required<ClusterNetOptions>,
  ) {}

  static async start(options: ClusterNetOptions = {}): Promise<ClusterNet> {
    const opts = { gateways: 3, gatewayArgs: [], fakeDelayMs: 20, ...options };
    const net = new ClusterNet(await testDatabase("net"), opts);
    try {
      net.mint = await startCli([
        "mint",
        "--port",
        "0",
        "--data-dir",
        join(net.root, "mint"),
        "--database-url",
        net.database.url,
        "--fake-delay-ms",
        String(opts.fakeDelayMs),
      ]);
      // One after another would be the slow way; the migrations are safe when processes start at once.
      await Promise.all(Array.from({ length: opts.gateways }, (_, i) => net.startGateway(i)));
    } catch (err) {
      await net.stop();
      throw err;
    }
    return net;
  }

  get mintUrl(): string {
    return this.mint.url;
  }

  urls(): string[] {
    return this.gateways.map((g) => g.url);
  }

  /** Starts gateway `i` on its own data dir (and, after the first start, on the same port). */
  async startGateway(i: number): Promise<CliProcess> {
    const gw = await startCli([
      "gateway",
      "--port",
      this.ports[i] ?? "0",
      "--data-dir",
      join(this.root, `gw${i}`),
      "--database-url",
      this.database.url,
      "--mint-url",
      this.mintUrl,
      ...this.opts.gatewayArgs,
    ]);
    this.gateways[i] = gw;
    this.ports[i] = new URL(gw.url).port;
    return gw;
  }

  /** kill -9 of gateway `i`, then the same command on the same data dir and port. */
  async crash(i: number): Promise<void> {
    await this.gateways[i]!.kill();
    await this.startGateway(i);
  }

  /** Waits until every gateway process lists every one of `models` (presence reaches all of them). */
  async online(models: string[], timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const url of this.urls()) {
          const res = await fetch(`${url}/v1/models`).catch(() => undefined);
          if (!res?.ok) return undefined;
          const ids = new Set(((await res.json()) as { data: { id: string }[] }).data.map((m) => m.id));
          if (!models.every((m) => ids.has(m))) return undefined;
        }
        return true;
      },
      timeoutMs,
      `every gateway process to list ${models.join(", ")}`,
    );
  }

  /** The shared books once nothing is open, every proof of the pool asked of the mint. */
  books(): Promise<GatewayBooks> {
    return settledGatewayBooks({ databaseUrl: this.database.url }, this.mintUrl);
  }

  /** Stops every process (SIGTERM) and drops the database; returns the exit codes of the gateways. */
  async stop(): Promise<(number | null)[]> {
    const codes = await Promise.all(this.gateways.map((g) => g?.stop()));
    await this.mint?.stop();
    await this.database.drop().catch(() => undefined);
    return codes;
  }
}
