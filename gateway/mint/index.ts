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
import { MintStore } from "./store.js";
import { attachMintWebSocket } from "./ws.js";

export { MintError, MintErrorCode } from "./errors.js";
export * from "./lightning/index.js";
export { mintRoutes } from "./http.js";
export { CashuMint, splitAmount } from "./mint.js";
export { MintStore } from "./store.js";

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

export async function createMintService(opts: MintServiceOptions): Promise<MintService> {
  privateDir(opts.dataDir);
  const store = new MintStore(join(opts.dataDir, "mint.sqlite"));
  const keysets = new KeysetManager(store, loadOrCreateMasterSecret(opts.dataDir));
  const mint = new CashuMint(store, keysets, opts.lightning, {
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
      store.close();
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

/** Rotates the active keyset of a mint data dir (safe while a mint runs on it: it re-reads keysets). */
export function rotateKeyset(dataDir: string, inputFeePpk: number): { id: string; previous?: string } {
  const store = new MintStore(join(dataDir, "mint.sqlite"));
  try {
    const keysets = new KeysetManager(store, loadOrCreateMasterSecret(dataDir));
    const previous = keysets.active(SUPPORTED_UNIT)?.id;
    return { id: keysets.rotate(SUPPORTED_UNIT, inputFeePpk).id, previous };
  } finally {
    store.close();
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
