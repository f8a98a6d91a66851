/**
 * A gateway from `createGateway` and a mint service from `createMintService`, each mounted on one
 * express app and HTTP server (the mint at /mint, reached by the gateway's wallet over HTTP), with a
 * scripted node serving one model. For tests that read the gateway's SQLite files in `dir`.
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import express from "express";
import { createGateway, type Gateway, type GatewayOptions } from "../../gateway/index.js";
import { createLightningBackend, createMintService } from "../../gateway/mint/index.js";
import { closeServer, listen, silentLogger } from "../../src/shared/index.js";
import { tempDir } from "./cli-process.js";
import { type AgentScript, type OwlrunAgent, startAgent } from "./owlrun-agent.js";

export interface GatewayBesideMint {
  /** the data dirs: `<dir>/gateway`, `<dir>/mint` */
  dir: string;
  url: string;
  mintUrl: string;
  gw: Gateway;
  server: Server;
  agent: OwlrunAgent;
  close(): Promise<void>;
}

export async function startGatewayBesideMint(
  script: AgentScript,
  opts: Partial<GatewayOptions> = {},
): Promise<GatewayBesideMint> {
  const dir = tempDir();
  const mint = await createMintService({
    dataDir: join(dir, "mint"),
    lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
    log: silentLogger,
  });
  const gw = await createGateway({
    dataDir: join(dir, "gateway"),
    trustedMints: [],
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    log: silentLogger,
    ...opts,
  });
  const app = express();
  app.use("/mint", mint.router);
  app.use(gw.app);
  const server = createServer(app);
  gw.attach(server);
  const url = await listen(server, "127.0.0.1", 0);
  const mintUrl = `${url}/mint`;
  gw.wallet.trust(mintUrl, true);
  const agent = await startAgent(url, script);
  return {
    dir,
    url,
    mintUrl,
    gw,
    server,
    agent,
    async close() {
      await agent.close();
      gw.closeSockets();
      await closeServer(server);
      await gw.close();
      await mint.close();
    },
  };
}
