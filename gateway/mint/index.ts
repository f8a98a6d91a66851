/**
 * The bundled Cashu mint. Other parts of the project reach it only over HTTP; the composition root
 * (src/cli.ts) uses `startMintServer` or mounts `createMintService(...).router` into the gateway.
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import express, { type Express, type Router } from "express";
import type { RouteGroup } from "../../src/shared/discovery/index.js";
import {
  closeServer,
  createLogger,
  DEFAULT_HOST,
  type Logger,
  listen,
  privateDir,
  type PgDatabase,
} from "../../src/shared/index.js";
import { createMintRouter, mintRoutes } from "./http.js";
import { KeysetManager, loadOrCreateMasterSecret } from "./keys.js";
import type { LightningBackend } from "./lightning/types.js";
import { CashuMint, type MintOptions, SUPPORTED_UNIT } from "./mint.js";
import { PgMintStore } from "./pg-store.js";
import { SqliteMintStore } from "./sqlite-storage.js";
import type { MintStorage } from "./storage.js";
import { attachMintWebSocket } from "./ws.js";

export { MintError, MintErrorCode } from "./errors.js";
export * from "./lightning/index.js";
export { mintRoutes } from "./http.js";
export { CashuMint, splitAmount } from "./mint.js";
export { MintStore } from "./store.js";
export { SqliteMintStore } from "./sqlite-storage.js";
export { PgMintStore } from "./pg-store.js";
export { MINT_MIGRATIONS } from "./pg-schema.js";
export type { MintStorage } from "./storage.js";
export { MasterSecretMismatchError } from "./keys.js";
export { copyMintFromSqlite } from "./copy.js";

export interface MintServiceOptions extends Partial<Omit<MintOptions, "log">> {
  /** directory for master-secret and mint.sqlite */
  dataDir: string;
  lightning: LightningBackend;
  /** PostgreSQL shared by several mint processes (`--database-url`); default: mint.sqlite in dataDir */
  database?: PgDatabase;
  log?: Logger;
}

export interface MintService {
  mint: CashuMint;
  router: Router;
  /** serves NUT-17 at `<basePath>/v1/ws` on the given server; returns a closer */
  attachWebSocket(server: Server, basePath?: string): () => void;
  close(): Promise<void>;
}

/**
 * The mint's state: PostgreSQL when the composition root opened one (shared by every mint process
 * on it), else mint.sqlite in the data dir. The master secret stays a file in the data dir either way.
 */
async function openStorage(dataDir: string, database: PgDatabase | undefined): Promise<MintStorage> {
  privateDir(dataDir);
  return database ? PgMintStore.open(database) : new SqliteMintStore(join(dataDir, "mint.sqlite"));
}

export async function createMintService(opts: MintServiceOptions): Promise<MintService> {
  const store = await openStorage(opts.dataDir, opts.database);
  let mint: CashuMint;
  try {
    const keysets = await KeysetManager.open(store, loadOrCreateMasterSecret(opts.dataDir));
    mint = new CashuMint(store, keysets, opts.lightning, {
      name: opts.name ?? "Owlrun mint",
      description: opts.description,
      urls: opts.urls,
      quoteTtlSeconds: opts.quoteTtlSeconds ?? 3600,
      minAmount: opts.minAmount ?? 1,
      maxAmount: opts.maxAmount ?? 1_000_000,
      inputFeePpk: opts.inputFeePpk ?? 0,
      log: opts.log ?? createLogger("mint"),
    });
    await mint.start();
  } catch (err) {
    await store.close();
    throw err;
  }
  const closers: (() => void)[] = [];
  return {
    mint,
    router: createMintRouter(mint),
    attachWebSocket(server, basePath = "") {
      const close = attachMintWebSocket(server, mint, `${basePath}/v1/ws`);
      closers.push(close);
      return close;
    },
    async close() {
      for (const c of closers) c();
      await mint.close();
      await store.close();
    },
  };
}

/**
 * The mint inside another server (the gateway's), at `path`: the shape the gateway's `bundledMint`
 * option takes (structurally, so this room imports nothing of the gateway).
 */
export interface MountableMint {
  path: string;
  mount(app: Express, server: Server): { closeSockets(): void; close(): Promise<void> };
  listening(url: string): void;
  routes: RouteGroup;
}

export async function createBundledMint(opts: MintServiceOptions, path = "/mint"): Promise<MountableMint> {
  const service = await createMintService(opts);
  return {
    path,
    mount(app, server) {
      app.use(path, service.router);
      const closeWs = service.attachWebSocket(server, path);
      return { closeSockets: closeWs, close: () => service.close() };
    },
    listening(url) {
      service.mint.options.urls = [url];
    },
    routes: mintRoutes(path),
  };
}

/**
 * Rotates the active keyset of a mint (its data dir, or the shared database when given); safe while
 * mints run on it: they re-read keysets.
 */
export async function rotateKeyset(
  dataDir: string,
  inputFeePpk: number,
  database?: PgDatabase,
): Promise<{ id: string; previous?: string }> {
  const store = await openStorage(dataDir, database);
  try {
    const keysets = await KeysetManager.open(store, loadOrCreateMasterSecret(dataDir));
    const previous = (await keysets.active(SUPPORTED_UNIT))?.id;
    return { id: (await keysets.rotate(SUPPORTED_UNIT, inputFeePpk)).id, previous };
  } finally {
    await store.close();
  }
}

export interface RunningMint {
  url: string;
  service: MintService;
  close(): Promise<void>;
}

/** The mint alone on its own HTTP server (`owlrun-mcp mint`). */
export async function startMintServer(
  opts: MintServiceOptions & { host?: string; port: number },
): Promise<RunningMint> {
  const service = await createMintService(opts);
  const app = express();
  app.disable("x-powered-by");
  app.use(service.router);
  const server = createServer(app);
  const closeWebSocket = service.attachWebSocket(server);
  const url = await listen(server, opts.host ?? DEFAULT_HOST, opts.port);
  service.mint.options.urls ??= [url];
  return {
    url,
    service,
    async close() {
      // Upgraded websocket sockets keep server.close() waiting: end them first.
      closeWebSocket();
      await closeServer(server);
      await service.close();
    },
  };
}
