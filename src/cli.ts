#!/usr/bin/env node
/**
 * owlrun-mcp command line: the composition root, the only place that wires the mint, gateway,
 * provider and MCP server together (ARCHITECTURE.md §2).
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Express } from "express";
import { type BundledMint, startGateway } from "../gateway/index.js";
import {
  createLightningBackend,
  createMintService,
  type LightningBackend,
  rotateKeyset,
  startMintServer,
} from "../gateway/mint/index.js";
import { createProviderKey } from "../gateway/routing/index.js";
import {
  announceListening,
  ConfigError,
  createLogger,
  errorMessage,
  flagOrEnv,
  onShutdown,
  parseNonNegativeInt,
  parsePort,
  resolveDataDir,
  VERSION,
} from "./shared/index.js";

const USAGE = `owlrun-mcp ${VERSION}: buy and sell LLM inference with Bitcoin ecash

Usage:
  owlrun-mcp [stdio]                 MCP server on stdio
  owlrun-mcp http [--port N]         MCP over Streamable HTTP
  owlrun-mcp gateway [--port N] [--mint-url URL] [--provider-share 95] [--price-feed URL] [--btc-usd N]
  owlrun-mcp gateway provider-key [--data-dir DIR]   mint a provider key (owlr_prov_…)
  owlrun-mcp mint [--port N] [--lightning fake|phoenixd] [--fake-delay-ms N] [--fake-pay-delay-ms N]
                                     [--input-fee-ppk N]
  owlrun-mcp mint rotate-keyset [--data-dir DIR] [--input-fee-ppk N]
  owlrun-mcp provider --gateway URL [--lightning-address A] [--ollama-url URL] [--embedded]
  owlrun-mcp devnet [--reset]
  owlrun-mcp wallet <balance|receive|send|topup|withdraw|restore>

Common flags (also read from OWLRUN_<FLAG> env vars):
  --port N        0 picks a free port          --host H      bind address (default 127.0.0.1)
  --data-dir DIR  default $OWLRUN_DATA_DIR or ~/.owlrun
Lightning (mint): --lightning fake (default) | phoenixd with --phoenixd-url and --phoenixd-password
`;

const log = createLogger("cli");

const COMMON = {
  port: { type: "string" },
  host: { type: "string" },
  "data-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const MINT_FLAGS = {
  ...COMMON,
  lightning: { type: "string" },
  "fake-delay-ms": { type: "string" },
  "fake-pay-delay-ms": { type: "string" },
  "phoenixd-url": { type: "string" },
  "phoenixd-password": { type: "string" },
  "input-fee-ppk": { type: "string" },
} as const;

type MintFlags = { [K in keyof typeof MINT_FLAGS]?: string | boolean };

const GATEWAY_FLAGS = {
  ...MINT_FLAGS,
  "mint-url": { type: "string", multiple: true },
  "provider-share": { type: "string" },
  "price-feed": { type: "string" },
  "btc-usd": { type: "string" },
  "signup-closed": { type: "boolean" },
} as const;

/** The bundled mint inside the gateway's server, at /mint. */
async function bundledMint(
  dataDir: string,
  lightning: LightningBackend,
  inputFeePpk: number,
): Promise<BundledMint> {
  const service = await createMintService({ dataDir, lightning, inputFeePpk, log: createLogger("mint") });
  return {
    path: "/mint",
    mount(app: Express, server) {
      app.use("/mint", service.router);
      const closeWs = service.attachWebSocket(server, "/mint");
      return { closeSockets: closeWs, close: () => service.close() };
    },
    listening(url) {
      service.mint.options.urls = [url];
    },
  };
}

function lightningFromFlags(flags: MintFlags) {
  const kind = flagOrEnv(flags, "lightning") ?? "fake";
  if (kind !== "fake" && kind !== "phoenixd")
    throw new ConfigError(`unknown --lightning "${kind}": use fake or phoenixd`);
  if (kind === "phoenixd") {
    const url = flagOrEnv(flags, "phoenixd-url") ?? "http://127.0.0.1:9740";
    const password = flagOrEnv(flags, "phoenixd-password");
    if (!password)
      throw new ConfigError("--lightning phoenixd needs --phoenixd-password (or OWLRUN_PHOENIXD_PASSWORD)");
    return createLightningBackend("phoenixd", { url, password });
  }
  return createLightningBackend("fake", {
    incomingDelayMs: parseNonNegativeInt("--fake-delay-ms", flagOrEnv(flags, "fake-delay-ms"), 1000),
    outgoingDelayMs: parseNonNegativeInt("--fake-pay-delay-ms", flagOrEnv(flags, "fake-pay-delay-ms"), 0),
  });
}

async function runMint(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: MINT_FLAGS, allowPositionals: true });
  if (values.help) return void process.stdout.write(USAGE);
  const dataDir = join(resolveDataDir(flagOrEnv(values, "data-dir")), "mint");
  const inputFeePpk = parseNonNegativeInt("--input-fee-ppk", flagOrEnv(values, "input-fee-ppk"), 0);
  if (positionals[0] === "rotate-keyset") {
    const { id, previous } = rotateKeyset(dataDir, inputFeePpk);
    process.stdout.write(
      `active keyset ${id}${previous ? ` (previous ${previous} stays valid for redemption)` : ""}\n`,
    );
    return;
  }
  if (positionals.length > 0) throw new ConfigError(`unknown mint command "${positionals[0]}"`);
  const running = await startMintServer({
    dataDir,
    lightning: lightningFromFlags(values),
    inputFeePpk,
    host: flagOrEnv(values, "host"),
    port: parsePort(flagOrEnv(values, "port"), 3338),
    log: createLogger("mint"),
  });
  onShutdown(() => running.close(), log);
  announceListening(running.url);
}

async function runGateway(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: GATEWAY_FLAGS, allowPositionals: true });
  if (values.help) return void process.stdout.write(USAGE);
  const root = resolveDataDir(flagOrEnv(values, "data-dir"));
  const dataDir = join(root, "gateway");
  if (positionals[0] === "provider-key") {
    process.stdout.write(`${createProviderKey(dataDir)}\n`);
    return;
  }
  if (positionals.length > 0) throw new ConfigError(`unknown gateway command "${positionals[0]}"`);
  const external = values["mint-url"] ?? (process.env.OWLRUN_MINT_URL ? [process.env.OWLRUN_MINT_URL] : []);
  const inputFeePpk = parseNonNegativeInt("--input-fee-ppk", flagOrEnv(values, "input-fee-ppk"), 0);
  const running = await startGateway({
    dataDir,
    trustedMints: external,
    providerSharePct: parseNonNegativeInt("--provider-share", flagOrEnv(values, "provider-share"), 95),
    priceFeedUrl: flagOrEnv(values, "price-feed"),
    offlineBtcUsd: parseNonNegativeInt("--btc-usd", flagOrEnv(values, "btc-usd"), 100_000),
    signupOpen: !values["signup-closed"],
    host: flagOrEnv(values, "host"),
    port: parsePort(flagOrEnv(values, "port"), 8402),
    log: createLogger("gateway"),
    bundledMint: external.length
      ? undefined
      : await bundledMint(join(root, "mint"), lightningFromFlags(values), inputFeePpk),
  });
  onShutdown(() => running.close(), log);
  announceListening(running.url);
}

async function runDevnet(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { ...COMMON, reset: { type: "boolean" } },
    allowPositionals: false,
  });
  if (values.help) return void process.stdout.write(USAGE);
  const base = resolve(flagOrEnv(values, "data-dir") ?? ".devnet");
  if (values.reset) {
    const { rmSync } = await import("node:fs");
    rmSync(base, { recursive: true, force: true });
  }
  const mint = await startMintServer({
    dataDir: join(resolveDataDir(base), "mint"),
    lightning: createLightningBackend("fake", { incomingDelayMs: 500 }),
    host: flagOrEnv(values, "host"),
    port: parsePort(flagOrEnv(values, "port"), 0),
    log: createLogger("mint"),
  });
  onShutdown(() => mint.close(), log);
  process.stdout.write(
    [
      "owlrun devnet (so far: the bundled Cashu mint; gateway, provider and MCP server join as they land)",
      `  mint      ${mint.url}  (fake Lightning: invoices pay themselves after 0.5 s)`,
      `  data dir  ${base}`,
      `  try:      curl -s ${mint.url}/v1/info`,
      "",
    ].join("\n"),
  );
  announceListening(mint.url);
}

const NOT_YET: Record<string, string> = {
  stdio: "the MCP server (stdio)",
  http: "the MCP server over Streamable HTTP",
  provider: "the provider node",
  wallet: "the local wallet",
};

export async function main(argv: string[]): Promise<number> {
  const [command = "stdio", ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === "--version" || command === "-v") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (command === "mint") return runMint(rest).then(() => 0);
  if (command === "devnet") return runDevnet(rest).then(() => 0);
  if (command === "gateway") return runGateway(rest).then(() => 0);
  if (command in NOT_YET) {
    process.stderr.write(`owlrun-mcp ${command}: ${NOT_YET[command]} is not available yet in ${VERSION}.\n`);
    return 2;
  }
  process.stderr.write(`owlrun-mcp: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`owlrun-mcp: ${errorMessage(err)}\n`);
    process.exit(
      err instanceof ConfigError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1,
    );
  },
);
