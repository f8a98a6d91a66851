/**
 * The gateway on its own HTTP server: the composition root may mount the bundled mint on the same
 * server first; the gateway's wallet then reaches that mint in-process.
 */
import { createServer, type Server } from "node:http";
import express, { type Express } from "express";
import {
  closeServer,
  createLogger,
  DEFAULT_HOST,
  inProcessFetch,
  jsonClientErrors,
  listen,
} from "../src/shared/index.js";
import type { RouteGroup } from "../src/shared/discovery/index.js";
import { recoveryGate } from "./api/recovery-gate.js";
import { createGateway } from "./create.js";
import type { Gateway, GatewayOptions } from "./options.js";

/** A mint served by the same HTTP server (the composition root mounts the bundled mint here). */
export interface BundledMint {
  /** URL path it is mounted at, e.g. "/mint" */
  path: string;
  /** mounts routes and websockets; returns how to end its sockets and how to close it */
  mount(app: Express, server: Server): { closeSockets(): void; close(): Promise<void> };
  /** told the public URL once the server listens */
  listening?(url: string): void;
  /** its routes, documented in the gateway's /openapi.json */
  routes?: RouteGroup;
}

export interface RunningGateway {
  url: string;
  gateway: Gateway;
  /** the server's whole app: the bundled mint, then the gateway */
  app: Express;
  server: Server;
  close(): Promise<void>;
}

/**
 * Runs the gateway on its own HTTP server. `mount` lets the composition root add routes first
 * (the bundled mint at /mint) and `beforeClose` tear them down.
 */
export async function startGateway(
  opts: GatewayOptions & { host?: string; port: number; bundledMint?: BundledMint },
): Promise<RunningGateway> {
  const mountedRoutes = [
    ...(opts.mountedRoutes ?? []),
    ...(opts.bundledMint?.routes ? [opts.bundledMint.routes] : []),
  ];
  const gateway = await createGateway({ ...opts, mountedRoutes });
  const outer = express();
  outer.disable("x-powered-by");
  // Big enough for a cashu token of many proofs in X-Cashu (our own limit, 64 KiB, answers in JSON).
  const server = createServer({ maxHeaderSize: 128 * 1024 }, outer);
  jsonClientErrors(server);
  const mounted = opts.bundledMint?.mount(outer, server);
  // After the bundled mint (the repair calls it in-process), before the gateway's own routes:
  // nothing paid is served while restart repair runs (WebSocket upgrades do not pass here).
  const gate = recoveryGate(opts.log ?? createLogger("gateway"));
  outer.use(gate.middleware);
  // The router itself, not the sub-app: same handlers, and a router walk (test/discovery) sees them.
  outer.use(gateway.app.router);
  gateway.attach(server);
  const url = await listen(server, opts.host ?? DEFAULT_HOST, opts.port);
  gateway.listening(url);
  if (opts.bundledMint) {
    // Clients name the mint by the address they reach it at: behind a load balancer (several
    // processes, one database) that is the public URL, the same for every process.
    const mintUrl = `${(opts.publicUrl ?? url).replace(/\/+$/, "")}${opts.bundledMint.path}`;
    gateway.wallet.trust(mintUrl, true);
    // The gateway's wallet calls the bundled mint's HTTP API in-process: no socket, no loopback HTTP
    // client, and no DLEQ re-check of signatures this process just made.
    gateway.wallet.connect(mintUrl, {
      fetch: inProcessFetch(outer),
      sameProcess: true,
    });
    opts.bundledMint.listening?.(mintUrl);
  }
  await gate.run(() => gateway.recover());
  return {
    url,
    gateway,
    app: outer,
    server,
    async close() {
      // Sockets first (they hold server.close()), then in-flight requests drain, then the stores.
      gateway.closeSockets();
      mounted?.closeSockets();
      await closeServer(server);
      await gateway.close();
      await mounted?.close();
    },
  };
}
