/** `owlrun-mcp gateway`: serves the gateway (with the bundled mint unless --mint-url names one). */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ModelAliases, startGateway } from "../../gateway/index.js";
import { gatewayServerCard } from "../mcp/index.js";
import { GATEWAY_FLAGS, GATEWAY_USAGE } from "../cli-options.js";
import {
  announceListening,
  ConfigError,
  createLogger,
  flagOrEnv,
  onShutdown,
  parseNonNegativeInt,
  parsePort,
  resolveDataDir,
} from "../shared/index.js";
import { bsvFlags, bundledMint, databaseFromFlags, lightningFromFlags, paymentMethodsFlag } from "./flags.js";
import { runGatewayAdmin } from "./gateway-admin.js";

const log = createLogger("cli");

export async function runGateway(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: GATEWAY_FLAGS, allowPositionals: true });
  if (values.help) return void process.stdout.write(GATEWAY_USAGE);
  const root = resolveDataDir(flagOrEnv(values, "data-dir"));
  const dataDir = join(root, "gateway");
  if (await runGatewayAdmin(positionals, values, root, dataDir)) return;
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
