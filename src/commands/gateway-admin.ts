/** The operator's gateway commands on a data dir (or its database): keys, broadcasts, migration. */
import { resolve } from "node:path";
import type { parseArgs } from "node:util";
import {
  adminTokenOf,
  BROADCAST_LEVELS,
  BUSINESS_TIERS,
  type BusinessTier,
  createBusinessKey,
  formatMigrationReport,
  migrateSqliteGateway,
  setBusinessCreditLimit,
  withBroadcasts,
} from "../../gateway/index.js";
import { createProviderKey } from "../../gateway/routing/index.js";
import type { GATEWAY_FLAGS } from "../cli-options.js";
import {
  ConfigError,
  errorMessage,
  flagOrEnv,
  parseNonNegativeInt,
  type PgDatabase,
} from "../shared/index.js";
import { withDatabase } from "./flags.js";

/** `owlrun-mcp gateway`'s parsed flags. */
export type GatewayFlagValues = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof GATEWAY_FLAGS; allowPositionals: true }>
>["values"];

/**
 * The operator's one-shot gateway commands (`provider-key`, `business-key`, `admin-token`,
 * `broadcast`, `migrate-sqlite`); false when `positionals` names none of them.
 */
export async function runGatewayAdmin(
  positionals: string[],
  values: GatewayFlagValues,
  root: string,
  dataDir: string,
): Promise<boolean> {
  if (positionals[0] === "provider-key") {
    const key = await withDatabase(values, (database) => createProviderKey(dataDir, database));
    process.stdout.write(`${key}\n`);
    return true;
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
    return true;
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
    return true;
  }
  if (positionals[0] === "admin-token") {
    const token = await withDatabase(values, (database) => adminTokenOf(dataDir, database));
    process.stdout.write(`${token}\n`);
    return true;
  }
  if (positionals[0] === "broadcast") {
    const out = await withDatabase(values, (database) =>
      broadcastCommand(dataDir, positionals.slice(1), values, database),
    );
    process.stdout.write(out);
    return true;
  }
  if (positionals[0] === "migrate-sqlite") {
    if (!flagOrEnv(values, "database-url"))
      throw new ConfigError("migrate-sqlite needs --database-url postgres://…");
    const from = values.from ? resolve(values.from) : root;
    const report = await withDatabase(values, (database) => migrateSqliteGateway(from, database!));
    process.stdout.write(formatMigrationReport(report));
    return true;
  }
  return false;
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
