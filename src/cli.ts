#!/usr/bin/env node
/**
 * owlrun-mcp command line: the composition root, the only place that wires the mint, gateway,
 * provider and MCP server together (ARCHITECTURE.md §2).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  adminTokenOf,
  BROADCAST_LEVELS,
  BUSINESS_TIERS,
  type BusinessTier,
  createBusinessKey,
  formatMigrationReport,
  migrateSqliteGateway,
  setBusinessCreditLimit,
  ModelAliases,
  withBroadcasts,
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
import {
  DEFAULT_OLLAMA_URL,
  EmbeddedUnavailableError,
  runProviderCommand,
  SCRIPTED_MODEL_ID,
  startProvider,
} from "../provider/index.js";
import { gatewayServerCard, mcpClientConfigLines, runMcpCommand, startMcpHttp } from "./mcp/index.js";
import { runWalletCommand } from "./wallet/cli.js";
import { devnetInvoice } from "./devnet-invoice.js";
import {
  DEVNET_FLAGS,
  DEVNET_USAGE,
  GATEWAY_FLAGS,
  GATEWAY_USAGE,
  MINT_FLAGS,
  MINT_USAGE,
  type MintFlags,
  USAGE,
} from "./cli-options.js";
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
  PgDatabase,
  privateDir,
  PACKAGE_ROOT,
  PortMemory,
  resolveDataDir,
  VERSION,
} from "./shared/index.js";

const log = createLogger("cli");

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
const bundledMint = (
  dataDir: string,
  lightning: LightningBackend,
  inputFeePpk: number,
  database: PgDatabase | undefined,
) => createBundledMint({ dataDir, lightning, inputFeePpk, database, log: createLogger("mint") });

/** `--database-url` / OWLRUN_DATABASE_URL: one pool per process, closed at shutdown after the servers. */
async function databaseFromFlags(flags: MintFlags, app: string): Promise<PgDatabase | undefined> {
  const url = flagOrEnv(flags, "database-url");
  if (!url) return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError("--database-url must be a postgres:// URL");
  try {
    return await PgDatabase.open(url, { applicationName: app });
  } catch (err) {
    throw new ConfigError(`--database-url: cannot connect (${errorMessage(err)})`);
  }
}

/** Runs a one-shot command on the operator's database (if any), closing the pool afterwards. */
async function withDatabase<T>(
  flags: MintFlags,
  fn: (database: PgDatabase | undefined) => Promise<T>,
): Promise<T> {
  const database = await databaseFromFlags(flags, "owlrun-cli");
  try {
    return await fn(database);
  } finally {
    await database?.close();
  }
}

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
  if (values.help) return void process.stdout.write(MINT_USAGE);
  const dataDir = join(resolveDataDir(flagOrEnv(values, "data-dir")), "mint");
  const inputFeePpk = parseNonNegativeInt("--input-fee-ppk", flagOrEnv(values, "input-fee-ppk"), 0);
  if (positionals.length > 0 && positionals[0] !== "rotate-keyset")
    throw new ConfigError(`unknown mint command "${positionals[0]}"`);
  const database = await databaseFromFlags(values, "owlrun-mint");
  if (positionals[0] === "rotate-keyset") {
    try {
      const { id, previous } = await rotateKeyset(dataDir, inputFeePpk, database);
      process.stdout.write(
        `active keyset ${id}${previous ? ` (previous ${previous} stays valid for redemption)` : ""}\n`,
      );
    } finally {
      await database?.close();
    }
    return;
  }
  const running = await startMintServer({
    dataDir,
    database,
    lightning: lightningFromFlags(values),
    inputFeePpk,
    host: flagOrEnv(values, "host"),
    port: parsePort(flagOrEnv(values, "port"), 3338),
    log: createLogger("mint"),
  });
  onShutdown(async () => {
    await running.close();
    await database?.close();
  }, log);
  announceListening(running.url);
}

async function runGateway(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: GATEWAY_FLAGS, allowPositionals: true });
  if (values.help) return void process.stdout.write(GATEWAY_USAGE);
  const root = resolveDataDir(flagOrEnv(values, "data-dir"));
  const dataDir = join(root, "gateway");
  if (positionals[0] === "provider-key") {
    const key = await withDatabase(values, (database) => createProviderKey(dataDir, database));
    process.stdout.write(`${key}\n`);
    return;
  }
  if (positionals[0] === "business-key" && values["set-credit-limit"] !== undefined) {
    const limit = parseNonNegativeInt("--set-credit-limit", values["set-credit-limit"], 0);
    const id = values["key-id"];
    if (!id) throw new ConfigError("--set-credit-limit needs --key-id ID (printed when the key was made)");
    const done = await withDatabase(values, (database) =>
      setBusinessCreditLimit(dataDir, id, limit, database),
    );
    if (!done) throw new ConfigError(`no business key has id ${id}`);
    process.stdout.write(`credit limit of ${id}: ${limit} sats\n`);
    return;
  }
  if (positionals[0] === "business-key") {
    const tier = flagOrEnv(values, "tier");
    if (!tier || !(BUSINESS_TIERS as readonly string[]).includes(tier))
      throw new ConfigError(`business-key needs --tier ${BUSINESS_TIERS.join("|")}`);
    const creditLimit = parseNonNegativeInt("--credit-limit-sats", values["credit-limit-sats"], 0);
    const made = await withDatabase(values, (database) =>
      createBusinessKey(
        dataDir,
        tier as BusinessTier,
        flagOrEnv(values, "name") ?? null,
        database,
        creditLimit,
      ),
    );
    process.stderr.write(
      `key id: ${made.id}${creditLimit ? ` (metered, credit limit ${creditLimit} sats)` : ""}\n`,
    );
    process.stdout.write(`${made.key}\n`);
    return;
  }
  if (positionals[0] === "admin-token") {
    const token = await withDatabase(values, (database) => adminTokenOf(dataDir, database));
    process.stdout.write(`${token}\n`);
    return;
  }
  if (positionals[0] === "broadcast") {
    const out = await withDatabase(values, (database) =>
      broadcastCommand(dataDir, positionals.slice(1), values, database),
    );
    process.stdout.write(out);
    return;
  }
  if (positionals[0] === "migrate-sqlite") {
    if (!flagOrEnv(values, "database-url"))
      throw new ConfigError("migrate-sqlite needs --database-url postgres://…");
    const from = values.from ? resolve(values.from) : root;
    const report = await withDatabase(values, (database) => migrateSqliteGateway(from, database!));
    process.stdout.write(formatMigrationReport(report));
    return;
  }
  if (positionals.length > 0) throw new ConfigError(`unknown gateway command "${positionals[0]}"`);
  const external = values["mint-url"] ?? (process.env.OWLRUN_MINT_URL ? [process.env.OWLRUN_MINT_URL] : []);
  const inputFeePpk = parseNonNegativeInt("--input-fee-ppk", flagOrEnv(values, "input-fee-ppk"), 0);
  const database = await databaseFromFlags(values, "owlrun-gateway");
  const running = await startGateway({
    dataDir,
    database,
    trustedMints: external,
    providerSharePct: parseNonNegativeInt("--provider-share", flagOrEnv(values, "provider-share"), 95),
    priceFeedUrl: flagOrEnv(values, "price-feed"),
    // Only the operator's own rate stands in for the feed; with a feed and no --btc-usd there is no
    // rate until a sane sample arrives (paid requests answer 503), never an invented one.
    offlineBtcUsd: flagOrEnv(values, "btc-usd")
      ? parseNonNegativeInt("--btc-usd", flagOrEnv(values, "btc-usd"), 100_000)
      : undefined,
    signupOpen: !values["signup-closed"],
    freeTier: {
      maxTokens: parseNonNegativeInt("--free-max-tokens", flagOrEnv(values, "free-max-tokens"), 256),
      dailyBudgetSat: parseNonNegativeInt(
        "--free-daily-budget-sats",
        flagOrEnv(values, "free-daily-budget-sats"),
        1000,
      ),
    },
    accountSignupsPerHour: parseNonNegativeInt(
      "--account-signups-per-hour",
      flagOrEnv(values, "account-signups-per-hour"),
      20,
    ),
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
    staleHoldMs: parseNonNegativeInt("--stale-hold-ms", flagOrEnv(values, "stale-hold-ms"), 600_000),
    sweepIntervalMs: parseNonNegativeInt(
      "--sweep-interval-ms",
      flagOrEnv(values, "sweep-interval-ms"),
      60_000,
    ),
    allowLoopbackLnurl: values["allow-loopback-lnurl"] ?? false,
    challengesPerMinute: parseNonNegativeInt(
      "--challenges-per-minute",
      flagOrEnv(values, "challenges-per-minute"),
      60,
    ),
    paymentMethods: paymentMethodsFlag(flagOrEnv(values, "payment-methods")),
    bsv: bsvFlags(values),
    publicUrl: flagOrEnv(values, "public-url"),
    modelAliases: ModelAliases.parse(
      values["model-alias"] ?? (process.env.OWLRUN_MODEL_ALIAS ? [process.env.OWLRUN_MODEL_ALIAS] : []),
    ),
    pricesFile: flagOrEnv(values, "prices"),
    upstreamsFile: flagOrEnv(values, "upstream"),
    defaultModel: flagOrEnv(values, "default-model"),
    // The card of owlrun-mcp pointed at this gateway; --mcp-url also advertises a running `owlrun-mcp http`.
    mcpServerCard: (url) => gatewayServerCard(url, flagOrEnv(values, "mcp-url")),
    host: flagOrEnv(values, "host"),
    port: parsePort(flagOrEnv(values, "port"), 8402),
    log: createLogger("gateway"),
    bundledMint: external.length
      ? undefined
      : await bundledMint(join(root, "mint"), lightningFromFlags(values), inputFeePpk, database),
  });
  onShutdown(async () => {
    await running.close();
    await database?.close();
  }, log);
  announceListening(running.url);
}

/** "90" (seconds), "90s", "15m", "2h", "7d" → seconds. */
function durationSeconds(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) throw new ConfigError(`--expires-in: use seconds or 15m, 2h, 7d (got "${text}")`);
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "" | "s" | "m" | "h" | "d"];
}

/** `gateway broadcast "<message>" | list | expire <id>`: the operator's announcements. */
async function broadcastCommand(
  dataDir: string,
  args: string[],
  values: { level?: string; "expires-in"?: string; "expires-at"?: string },
  database: PgDatabase | undefined,
): Promise<string> {
  if (args[0] === "list") {
    const all = await withBroadcasts(dataDir, (s) => s.all(), database);
    return (
      all
        .map((b) => `${b.id}  ${b.level}  until ${b.expires_at ?? "expired by hand"}  ${b.message}`)
        .join("\n") + "\n"
    );
  }
  if (args[0] === "expire") {
    if (!args[1]) throw new ConfigError("broadcast expire needs the broadcast id");
    if (!(await withBroadcasts(dataDir, (s) => s.expire(args[1]!), database)))
      throw new ConfigError(`no live broadcast has the id ${args[1]}`);
    return `expired ${args[1]}\n`;
  }
  const message = args.join(" ").trim();
  if (!message) throw new ConfigError('broadcast needs a message: gateway broadcast "…" [--expires-in 2h]');
  const level = values.level ?? "info";
  if (!(BROADCAST_LEVELS as readonly string[]).includes(level))
    throw new ConfigError(`--level: use ${BROADCAST_LEVELS.join(", ")}`);
  const b = await withBroadcasts(
    dataDir,
    async (s) => {
      try {
        return await s.publish({
          message,
          level: level as (typeof BROADCAST_LEVELS)[number],
          expires_at: values["expires-at"],
          expires_in_seconds: values["expires-in"] ? durationSeconds(values["expires-in"]) : undefined,
        });
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        throw new ConfigError(`broadcast: ${errorMessage(err)}`);
      }
    },
    database,
  );
  return `${b.id}\n`;
}

/** A demo wallet for the devnet, funded over the fake Lightning backend, so the printed curl line just works. */
async function fundDemoWallet(
  dir: string,
  mint: string,
  sats: number,
): Promise<{ wallet: EcashWallet; balance: number }> {
  privateDir(dir);
  const wallet = new EcashWallet(
    new EcashStore(join(dir, "wallet.sqlite")),
    loadOrCreateSeed(dir),
    createLogger("demo-wallet"),
  );
  await wallet.recover();
  if ((await wallet.balance(mint)) < sats / 2) {
    const q = await wallet.createMintQuote(mint, sats, "devnet demo wallet");
    for (let i = 0; i < 100 && !(await wallet.mintPaid(mint, q.quote, sats)); i++)
      await new Promise((r) => setTimeout(r, 100));
  }
  return { wallet, balance: await wallet.balance(mint) };
}

/** How to start this very MCP server on stdio: from a clone (not yet published) its built CLI. */
function stdioCommand(): string {
  const fromClone = existsSync(join(PACKAGE_ROOT, "src", "cli.ts"));
  return fromClone ? `node ${join(PACKAGE_ROOT, "dist", "src", "cli.js")}` : "npx owlrun-mcp";
}

async function runDevnet(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: DEVNET_FLAGS,
    allowPositionals: true,
  });
  if (values.help) return void process.stdout.write(DEVNET_USAGE);
  if (positionals[0] === "invoice") {
    process.stdout.write(`${devnetInvoice(Number(positionals[1]))}\n`);
    return;
  }
  if (positionals.length > 0) throw new ConfigError(`unknown devnet command "${positionals[0]}"`);
  const base = resolve(flagOrEnv(values, "data-dir") ?? ".devnet");
  if (values.reset) {
    const { rmSync } = await import("node:fs");
    rmSync(base, { recursive: true, force: true });
  }
  resolveDataDir(base);
  const log = createLogger("devnet");
  // Stable ports keep the mint URL (and so the stored ecash) and the printed MCP line valid across
  // runs: the ones this data dir used last, first 8402/8403, a free one when taken. An explicit
  // --port (tests pass one) leaves the MCP server on a free port unless this data dir has one.
  const host = flagOrEnv(values, "host") ?? "127.0.0.1";
  const ports = new PortMemory(join(base, "ports.json"));
  const portFlag = flagOrEnv(values, "port");
  const gatewayPort =
    portFlag !== undefined ? parsePort(portFlag, 8402) : await ports.choose("gateway", 8402, host);
  const mcpPort = await ports.choose("mcp", portFlag !== undefined ? 0 : 8403);
  const devnetMcp: { url?: string } = {}; // known once the MCP server below listens
  const gateway = await startGateway({
    dataDir: join(base, "gateway"),
    trustedMints: [],
    // A fixed BTC/USD rate (no price feed on a devnet); a low one makes prompts cost more than 2 sats.
    offlineBtcUsd: parseNonNegativeInt("--btc-usd", flagOrEnv(values, "btc-usd"), 100_000),
    mcpServerCard: (url) => gatewayServerCard(url, devnetMcp.url),
    // The scripted test model answers in words; the random one in bytes that are not text.
    defaultModel: SCRIPTED_MODEL_ID,
    host,
    port: gatewayPort,
    log: createLogger("gateway"),
    bundledMint: await bundledMint(
      join(base, "mint"),
      createLightningBackend("fake", { incomingDelayMs: 300 }),
      0,
      undefined,
    ),
  });
  if (portFlag === undefined) ports.remember("gateway", gateway.url);
  const mintUrl = `${gateway.url}/mint`;
  const ollamaUrl = flagOrEnv(values, "ollama-url") ?? DEFAULT_OLLAMA_URL;
  const provider = await startProvider({
    gateway: gateway.url,
    dataDir: join(base, "provider"),
    embedded: values.embedded,
    ollamaUrl,
    // The devnet's own node also serves free-tier keys, so an rc_ key works out of the box.
    freeTierPct: 100,
    log: createLogger("provider"),
  }).catch(async (err: unknown) => {
    await gateway.close();
    if (!(err instanceof EmbeddedUnavailableError)) throw err;
    // Installed without the optional peer (npx owlrun-mcp): one line that says what to do.
    throw new ConfigError(
      `${values.embedded ? "--embedded" : `no Ollama at ${ollamaUrl}`} and no embedded backend: ` +
        "add it with `npm i node-llama-cpp` next to owlrun-mcp, or start Ollama (or pass --ollama-url URL)",
    );
  });
  const demo = await fundDemoWallet(join(base, "demo-wallet"), mintUrl, 1000);
  // The MCP server an agent connects to, with a wallet of its own funded from the demo wallet.
  const mcp = await startMcpHttp({
    gatewayUrl: gateway.url,
    mintUrl,
    dataDir: join(base, "mcp"),
    port: mcpPort,
    log: createLogger("mcp"),
  });
  ports.remember("mcp", mcp.url);
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
      const line = `devnet: ${s.nodes_online} provider(s) online · ${s.jobs_24h} jobs · ${s.tokens_24h} tokens in 24 h · demo wallet ${await demo.wallet.balance(mintUrl)} sats`;
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
      `  demo wallet balance: ${await demo.wallet.balance(mintUrl)} sats (a 50-sat token is in the line below)`,
      "",
      "Pay one streamed chat with ecash (change comes back as the last event):",
      `  curl -sN ${gateway.url}/v1/chat/completions -H 'Content-Type: application/json' -H 'X-Cashu: ${token}' -d '${body}'`,
      "",
      "From the openai SDK (Node):",
      `  new OpenAI({ baseURL: "${gateway.url}/v1", apiKey: "<rc_ key or cashu token>" })`,
      "",
      `MCP server (Streamable HTTP): ${mcp.mcpUrl}  — its wallet holds ${mcp.runtime.wallet.balance().total_sats} sats`,
      ...mcpClientConfigLines("owlrun-devnet", mcp.mcpUrl, mcp.token),
      `  or stdio: claude mcp add owlrun -e OWLRUN_GATEWAY_URL=${gateway.url} -- ${stdioCommand()}`,
      "",
      "Try withdraw: `owlrun-mcp devnet invoice 100` prints an invoice the fake Lightning backend pays as external.",
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
