/**
 * Flags shared by the commands, turned into what the parts take: the database pool, the Lightning
 * backend, the bundled mint, payment methods and BSV settings. Bad values are `ConfigError`s (exit 2).
 */
import { readFileSync } from "node:fs";
import { PAYMENT_METHODS, type PaymentMethod } from "../../gateway/index.js";
import {
  createBundledMint,
  createClnLightning,
  createLightningBackend,
  createLndLightning,
  type LightningBackend,
} from "../../gateway/mint/index.js";
import type { MintFlags } from "../cli-options.js";
import {
  ConfigError,
  createLogger,
  errorMessage,
  flagOrEnv,
  parseNonNegativeInt,
  PgDatabase,
} from "../shared/index.js";

/** --payment-methods a,b,c → the gateway's list (undefined: its default). */
export function paymentMethodsFlag(value: string | undefined): PaymentMethod[] | undefined {
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

export function bsvFlags(values: { [k: string]: string | boolean | string[] | undefined }) {
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
export const bundledMint = (
  dataDir: string,
  lightning: LightningBackend,
  inputFeePpk: number,
  database: PgDatabase | undefined,
) => createBundledMint({ dataDir, lightning, inputFeePpk, database, log: createLogger("mint") });

/** `--database-url` / OWLRUN_DATABASE_URL: one pool per process, closed at shutdown after the servers. */
export async function databaseFromFlags(flags: MintFlags, app: string): Promise<PgDatabase | undefined> {
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
export async function withDatabase<T>(
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

export function lightningFromFlags(flags: MintFlags) {
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
