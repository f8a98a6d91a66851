#!/usr/bin/env node
/**
 * owlrun-mcp command line: the composition root, the only place that wires the mint, gateway,
 * provider and MCP server together (ARCHITECTURE.md §2).
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createLightningBackend, rotateKeyset, startMintServer } from "../gateway/mint/index.js";
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
  owlrun-mcp gateway [--port N] [--mint-url URL]
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
  gateway: "the gateway",
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
