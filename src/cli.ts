#!/usr/bin/env node
/**
 * owlrun-mcp command line: the composition root, the only place that wires the mint, gateway,
 * provider and MCP server together (ARCHITECTURE.md §2).
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  BUSINESS_TIERS,
  type BusinessTier,
  createBusinessKey,
  PAYMENT_METHODS,
  type PaymentMethod,
  startGateway,
} from "../gateway/index.js";
import {
  createBundledMint,
  createClnLightning,
  createLightningBackend,
  createLndLightning,
  type LightningBackend,
  rotateKeyset,
  startMintServer,
} from "../gateway/mint/index.js";
import { createProviderKey } from "../gateway/routing/index.js";
import { runProviderCommand, SCRIPTED_MODEL_ID, startProvider } from "../provider/index.js";
import { gatewayServerCard, runMcpCommand, startMcpHttp } from "./mcp/index.js";
import { runWalletCommand } from "./wallet/cli.js";
import { EcashStore, EcashWallet, loadOrCreateSeed } from "./shared/ecash/index.js";
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
                                     [--payment-methods xcashu,accounts,l402,bsv]
                                     [--bsv-chain-api URL --bsv-address ADDR [--bsv-per-sat N]]
                                     [--public-url URL] [--mcp-url URL]   (for /llms.txt, /openapi.json, the MCP card)
  owlrun-mcp gateway provider-key [--data-dir DIR]   mint a provider key (owlr_prov_…)
  owlrun-mcp gateway business-key --tier internal|partner|external [--name N] [--data-dir DIR]
  owlrun-mcp mint [--port N] [--lightning fake|phoenixd] [--fake-delay-ms N] [--fake-pay-delay-ms N]
                                     [--input-fee-ppk N]
  owlrun-mcp mint rotate-keyset [--data-dir DIR] [--input-fee-ppk N]
  owlrun-mcp provider --gateway URL [--lightning-address A] [--ollama-url URL] [--embedded]
  owlrun-mcp devnet [--reset] [--btc-usd N]
  owlrun-mcp wallet <balance|pubkey|receive|send|topup|withdraw|restore>

Common flags (also read from OWLRUN_<FLAG> env vars):
  --port N        0 picks a free port          --host H      bind address (default 127.0.0.1)
  --data-dir DIR  default $OWLRUN_DATA_DIR or ~/.owlrun
Lightning (mint): --lightning fake (default) | phoenixd with --phoenixd-url and --phoenixd-password
                  | lnd with --lnd-url, --lnd-macaroon-file (or --lnd-macaroon HEX) and --lnd-cert-file
                  | cln with --cln-url, --cln-rune and --cln-cert-file (Core Lightning's clnrest)
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
  "lnd-url": { type: "string" },
  "lnd-macaroon": { type: "string" },
  "lnd-macaroon-file": { type: "string" },
  "lnd-cert-file": { type: "string" },
  "cln-url": { type: "string" },
  "cln-rune": { type: "string" },
  "cln-cert-file": { type: "string" },
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
  "payout-threshold-sats": { type: "string" },
  "payout-interval-ms": { type: "string" },
  "allow-loopback-lnurl": { type: "boolean" },
  "payment-methods": { type: "string" },
  "bsv-chain-api": { type: "string" },
  "bsv-address": { type: "string" },
  "bsv-per-sat": { type: "string" },
  tier: { type: "string" },
  name: { type: "string" },
  "public-url": { type: "string" },
  "mcp-url": { type: "string" },
} as const;

/** --payment-methods a,b,c → the gateway's list (undefined: its default). */
function paymentMethodsFlag(value: string | undefined): PaymentMethod[] | undefined {
  if (value === undefined) return undefined;
  const list = value
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean);
  const bad = list.find((m) => !(PAYMENT_METHODS as readonly string[]).includes(m));
  if (bad || list.length === 0)
    throw new ConfigError(`--payment-methods: use a comma list of ${PAYMENT_METHODS.join(", ")}`);
  return list as PaymentMethod[];
}

function bsvFlags(values: { [k: string]: string | boolean | string[] | undefined }) {
  const chainApiUrl = flagOrEnv(values, "bsv-chain-api");
  const address = flagOrEnv(values, "bsv-address");
  if (!chainApiUrl && !address) return undefined;
  if (!chainApiUrl || !address)
    throw new ConfigError("BSV payments need both --bsv-chain-api and --bsv-address");
  const perSat = Number(flagOrEnv(values, "bsv-per-sat") ?? "1");
  if (!Number.isFinite(perSat) || perSat <= 0)
    throw new ConfigError("--bsv-per-sat must be a positive number");
  return { chainApiUrl, address, bsvPerSat: perSat };
}

/** The bundled mint inside the gateway's server, at /mint. */
const bundledMint = (dataDir: string, lightning: LightningBackend, inputFeePpk: number) =>
  createBundledMint({ dataDir, lightning, inputFeePpk, log: createLogger("mint") });

function lightningFromFlags(flags: MintFlags) {
  const kind = flagOrEnv(flags, "lightning") ?? "fake";
  if (kind !== "fake" && kind !== "phoenixd" && kind !== "lnd" && kind !== "cln")
    throw new ConfigError(`unknown --lightning "${kind}": use fake, phoenixd, lnd or cln`);
  if (kind === "cln") {
    const url = flagOrEnv(flags, "cln-url") ?? "https://127.0.0.1:3010";
    const rune = flagOrEnv(flags, "cln-rune");
    if (!rune) throw new ConfigError("--lightning cln needs --cln-rune (or OWLRUN_CLN_RUNE)");
    const cert = flagOrEnv(flags, "cln-cert-file");
    return createClnLightning({ url, rune, tlsCert: cert ? readFileSync(cert, "utf8") : undefined });
  }
  if (kind === "lnd") {
    const url = flagOrEnv(flags, "lnd-url") ?? "https://127.0.0.1:8080";
    const file = flagOrEnv(flags, "lnd-macaroon-file");
    const macaroon = file ? readFileSync(file).toString("hex") : flagOrEnv(flags, "lnd-macaroon");
    if (!macaroon)
      throw new ConfigError(
        "--lightning lnd needs --lnd-macaroon-file (admin.macaroon) or --lnd-macaroon HEX",
      );
    const cert = flagOrEnv(flags, "lnd-cert-file");
    return createLndLightning({ url, macaroon, tlsCert: cert ? readFileSync(cert, "utf8") : undefined });
  }
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
  if (positionals[0] === "business-key") {
    const tier = flagOrEnv(values, "tier");
    if (!tier || !(BUSINESS_TIERS as readonly string[]).includes(tier))
      throw new ConfigError(`business-key needs --tier ${BUSINESS_TIERS.join("|")}`);
    process.stdout.write(
      `${createBusinessKey(dataDir, tier as BusinessTier, flagOrEnv(values, "name") ?? null)}\n`,
    );
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
    payoutThresholdSat: parseNonNegativeInt(
      "--payout-threshold-sats",
      flagOrEnv(values, "payout-threshold-sats"),
      1000,
    ),
    payoutIntervalMs: parseNonNegativeInt(
      "--payout-interval-ms",
      flagOrEnv(values, "payout-interval-ms"),
      60_000,
    ),
    allowLoopbackLnurl: values["allow-loopback-lnurl"] ?? false,
    paymentMethods: paymentMethodsFlag(flagOrEnv(values, "payment-methods")),
    bsv: bsvFlags(values),
    publicUrl: flagOrEnv(values, "public-url"),
    // The card of owlrun-mcp pointed at this gateway; --mcp-url also advertises a running `owlrun-mcp http`.
    mcpServerCard: (url) => gatewayServerCard(url, flagOrEnv(values, "mcp-url")),
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

/** A demo wallet for the devnet, funded over the fake Lightning backend, so the printed curl line just works. */
async function fundDemoWallet(
  dir: string,
  mint: string,
  sats: number,
): Promise<{ wallet: EcashWallet; balance: number }> {
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const wallet = new EcashWallet(
    new EcashStore(join(dir, "wallet.sqlite")),
    loadOrCreateSeed(dir),
    createLogger("demo-wallet"),
  );
  await wallet.recover();
  if (wallet.balance(mint) < sats / 2) {
    const q = await wallet.createMintQuote(mint, sats, "devnet demo wallet");
    for (let i = 0; i < 100 && !(await wallet.mintPaid(mint, q.quote, sats)); i++)
      await new Promise((r) => setTimeout(r, 100));
  }
  return { wallet, balance: wallet.balance(mint) };
}

async function runDevnet(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...COMMON,
      reset: { type: "boolean" },
      embedded: { type: "boolean" },
      "btc-usd": { type: "string" },
    },
    allowPositionals: false,
  });
  if (values.help) return void process.stdout.write(USAGE);
  const base = resolve(flagOrEnv(values, "data-dir") ?? ".devnet");
  if (values.reset) {
    const { rmSync } = await import("node:fs");
    rmSync(base, { recursive: true, force: true });
  }
  resolveDataDir(base);
  const log = createLogger("devnet");
  // A fixed port keeps the mint URL (and so the stored ecash) valid across runs.
  const devnetMcp: { url?: string } = {}; // known once the MCP server below listens
  const gateway = await startGateway({
    dataDir: join(base, "gateway"),
    trustedMints: [],
    // A fixed BTC/USD rate (no price feed on a devnet); a low one makes prompts cost more than 2 sats.
    offlineBtcUsd: parseNonNegativeInt("--btc-usd", flagOrEnv(values, "btc-usd"), 100_000),
    mcpServerCard: (url) => gatewayServerCard(url, devnetMcp.url),
    host: flagOrEnv(values, "host"),
    port: parsePort(flagOrEnv(values, "port"), 8402),
    log: createLogger("gateway"),
    bundledMint: await bundledMint(
      join(base, "mint"),
      createLightningBackend("fake", { incomingDelayMs: 300 }),
      0,
    ),
  });
  const mintUrl = `${gateway.url}/mint`;
  const provider = await startProvider({
    gateway: gateway.url,
    dataDir: join(base, "provider"),
    embedded: values.embedded,
    log: createLogger("provider"),
  });
  const demo = await fundDemoWallet(join(base, "demo-wallet"), mintUrl, 1000);
  // The MCP server an agent connects to, with a wallet of its own funded from the demo wallet.
  const mcp = await startMcpHttp({
    gatewayUrl: gateway.url,
    mintUrl,
    dataDir: join(base, "mcp"),
    port: 0,
    log: createLogger("mcp"),
  });
  devnetMcp.url = mcp.mcpUrl;
  await mcp.runtime.recovered;
  if (mcp.runtime.wallet.balance().total_sats < 100)
    await mcp.runtime.wallet.receive(await demo.wallet.pay(mintUrl, 200));
  const token = await demo.wallet.pay(mintUrl, 50);
  const model = (await provider.backend.listModels()).includes(SCRIPTED_MODEL_ID)
    ? SCRIPTED_MODEL_ID
    : (await provider.backend.listModels())[0];
  // A live status line (stderr), from the gateway's own public stats.
  let lastLine = "";
  const status = setInterval(async () => {
    try {
      const s = (await (await fetch(`${gateway.url}/v1/stats`)).json()) as {
        nodes_online: number;
        jobs_24h: number;
        tokens_24h: number;
      };
      const line = `devnet: ${s.nodes_online} provider(s) online · ${s.jobs_24h} jobs · ${s.tokens_24h} tokens in 24 h · demo wallet ${demo.wallet.balance(mintUrl)} sats`;
      if (line !== lastLine) process.stderr.write(`${line}\n`);
      lastLine = line;
    } catch {
      // shutting down
    }
  }, 5_000);
  status.unref();
  onShutdown(async () => {
    clearInterval(status);
    await mcp.close();
    await provider.close();
    await gateway.close();
  }, log);
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "Hello!" }], stream: true });
  process.stdout.write(
    [
      "owlrun devnet: bundled mint + gateway + one provider, all on loopback (fake Lightning: invoices pay themselves)",
      `  gateway   ${gateway.url}   (OpenAI-compatible: ${gateway.url}/v1)`,
      `  mint      ${mintUrl}`,
      `  provider  ${provider.nodeId} on ${provider.backend.name}: ${(await provider.backend.listModels()).join(", ")}`,
      `  data      ${base}   (npm run devnet -- --reset starts clean)`,
      `  demo wallet balance: ${demo.wallet.balance(mintUrl)} sats (a 50-sat token is in the line below)`,
      "",
      "Pay one streamed chat with ecash (change comes back as the last event):",
      `  curl -sN ${gateway.url}/v1/chat/completions -H 'Content-Type: application/json' -H 'X-Cashu: ${token}' -d '${body}'`,
      "",
      "From the openai SDK (Node):",
      `  new OpenAI({ baseURL: "${gateway.url}/v1", apiKey: "<rc_ key or cashu token>" })`,
      "",
      `MCP server (Streamable HTTP): ${mcp.mcpUrl}  — its wallet holds ${mcp.runtime.wallet.balance().total_sats} sats`,
      `  claude mcp add --transport http owlrun-devnet ${mcp.mcpUrl}`,
      `  or stdio: claude mcp add owlrun -e OWLRUN_GATEWAY_URL=${gateway.url} -- npx owlrun-mcp`,
      `  JSON: {"mcpServers":{"owlrun":{"type":"http","url":"${mcp.mcpUrl}"}}}`,
      "",
    ].join("\n"),
  );
  announceListening(gateway.url);
}

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
  if (command === "provider") return runProviderCommand(rest).then(() => 0);
  if (command === "stdio" || command === "http") return runMcpCommand(command, rest).then(() => 0);
  if (command === "wallet") return runWalletCommand(rest).then(() => 0);
  if (command.startsWith("--")) return runMcpCommand("stdio", argv).then(() => 0);
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
