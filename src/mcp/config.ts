/**
 * Flags and environment of `owlrun-mcp [stdio]` and `owlrun-mcp http` (every flag also reads
 * OWLRUN_<FLAG>): gateway URL, mint URL, data dir, spend limits, gateway API key, and for HTTP
 * the bind address, port, bearer token and allowed Host names.
 */
import { parseArgs } from "node:util";
import { DEFAULT_GATEWAY_URL } from "../client/index.js";
import { ConfigError, flagOrEnv, parseNonNegativeInt, parsePort, resolveDataDir } from "../shared/index.js";
import type { McpHttpOptions } from "./http.js";
import type { McpRuntimeOptions } from "./runtime.js";

export const MCP_USAGE = `owlrun-mcp [stdio] | owlrun-mcp http: MCP server with a local Cashu wallet

Options (each also read from OWLRUN_<NAME>, e.g. OWLRUN_GATEWAY_URL):
  --gateway URL          gateway to buy inference from (env OWLRUN_GATEWAY_URL, formerly OWLRUN_GATEWAY;
                         default ${DEFAULT_GATEWAY_URL}, where \`npx owlrun-mcp devnet\` runs one)
  --mint-url URL         mint for top-ups (default: the first mint the gateway trusts)
  --data-dir DIR         wallet data (default $OWLRUN_DATA_DIR or ~/.owlrun)
  --max-per-call N       sats a tool may spend without the user's confirmation (default 1000)
  --max-per-day N        sats all tools may spend per day, never exceeded (default 10000)
  --gateway-url URL      same as --gateway
  --gateway-api-key KEY  sent to the gateway as a Bearer key
  --allow-loopback-lnurl let Lightning addresses resolve on loopback (tests, local networks)
HTTP only:
  --port N               default 8403 (0 picks a free port)
  --host H               bind address (default 127.0.0.1)
  --mcp-token T          the bearer token /mcp requires (default: made on first start, kept 0600 in
                         <data-dir>/mcp-token, printed at start)
  --no-mcp-token         serve /mcp without a token (loopback only: any local process can then spend)
  --allowed-origin URL   a browser origin (scheme://host:port) allowed to call /mcp (repeatable)
  --allowed-host NAME    extra Host names accepted (repeatable; env comma-separated)
  --public-url URL       the URL clients use, for /llms.txt and the server card
`;

export const MCP_FLAGS = {
  gateway: { type: "string" },
  "gateway-url": { type: "string" },
  "mint-url": { type: "string" },
  "data-dir": { type: "string" },
  "max-per-call": { type: "string" },
  "max-per-day": { type: "string" },
  "gateway-api-key": { type: "string" },
  "allow-loopback-lnurl": { type: "boolean" },
  port: { type: "string" },
  host: { type: "string" },
  "mcp-token": { type: "string" },
  "no-mcp-token": { type: "boolean" },
  "allowed-origin": { type: "string", multiple: true },
  "allowed-host": { type: "string", multiple: true },
  "public-url": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function checkUrl(name: string, value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    throw new ConfigError(`invalid ${name} "${value}": expected an http(s) URL`);
  }
  return value.replace(/\/+$/, "");
}

/**
 * The gateway URL and where it came from (the flag or variable named in messages); an invalid
 * value does not stop the server: its tools answer with `error` instead.
 */
function gatewaySetting(values: { gateway?: string; "gateway-url"?: string }, env: NodeJS.ProcessEnv) {
  const sources: [string, string | undefined][] = [
    ["--gateway", values.gateway],
    ["--gateway-url", values["gateway-url"]],
    ["OWLRUN_GATEWAY_URL", env.OWLRUN_GATEWAY_URL],
    ["OWLRUN_GATEWAY (deprecated: use OWLRUN_GATEWAY_URL)", env.OWLRUN_GATEWAY],
  ];
  const found = sources.find(([, v]) => v !== undefined && v !== "");
  if (!found) return { gatewayUrl: DEFAULT_GATEWAY_URL };
  const [source, value] = found as [string, string];
  try {
    return { gatewayUrl: checkUrl(source, value)!, gatewaySource: source };
  } catch (err) {
    const guess = /^[\w.-]+:\d+(\/.*)?$/.test(value) ? ` (did you mean http://${value}?)` : "";
    return {
      gatewayUrl: value,
      gatewaySource: source,
      gatewayConfigError: `${(err as Error).message}${guess}: fix ${source.split(" ")[0]} in this MCP server's configuration and restart it`,
    };
  }
}

export interface ParsedMcpArgs {
  help: boolean;
  runtime: McpRuntimeOptions;
  http: Omit<McpHttpOptions, keyof McpRuntimeOptions>;
}

export function parseMcpArgs(argv: string[]): ParsedMcpArgs {
  const { values, positionals } = parseArgs({ args: argv, options: MCP_FLAGS, allowPositionals: true });
  if (positionals.length > 0)
    throw new ConfigError(`unexpected argument "${positionals[0]}"\n\n${MCP_USAGE}`);
  const env = process.env;
  const boolEnv = (v: string | undefined) => v === "1" || v === "true";
  const runtime: McpRuntimeOptions = {
    ...gatewaySetting(values, env),
    mintUrl: checkUrl("--mint-url", flagOrEnv(values, "mint-url")),
    dataDir: values.help ? "" : resolveDataDir(flagOrEnv(values, "data-dir")),
    maxPerCallSat: parseNonNegativeInt("--max-per-call", flagOrEnv(values, "max-per-call"), 1000),
    maxPerDaySat: parseNonNegativeInt("--max-per-day", flagOrEnv(values, "max-per-day"), 10_000),
    gatewayApiKey: flagOrEnv(values, "gateway-api-key") || undefined,
    allowLoopbackLnurl: values["allow-loopback-lnurl"] ?? boolEnv(env.OWLRUN_ALLOW_LOOPBACK_LNURL),
  };
  const allowed =
    values["allowed-host"] ?? (env.OWLRUN_ALLOWED_HOST ?? env.OWLRUN_ALLOWED_HOSTS ?? "").split(",");
  const origins = values["allowed-origin"] ?? (env.OWLRUN_ALLOWED_ORIGIN ?? "").split(",");
  const noToken = values["no-mcp-token"] ?? boolEnv(env.OWLRUN_NO_MCP_TOKEN);
  const token = flagOrEnv(values, "mcp-token") || undefined;
  if (noToken && token) throw new ConfigError("--mcp-token and --no-mcp-token contradict each other");
  return {
    help: values.help ?? false,
    runtime,
    http: {
      host: flagOrEnv(values, "host") || undefined,
      port: parsePort(flagOrEnv(values, "port"), 8403),
      token: noToken ? false : token,
      allowedHosts: allowed.map((h) => h.trim()).filter(Boolean),
      allowedOrigins: origins.map((o) => o.trim()).filter(Boolean),
      publicUrl: checkUrl("--public-url", flagOrEnv(values, "public-url")),
    },
  };
}

/** The environment the stdio server reads, as the MCP registry's server.json lists it. */
export const MCP_ENV_VARS = [
  { name: "OWLRUN_GATEWAY_URL", description: "Gateway to buy inference from", default: DEFAULT_GATEWAY_URL },
  { name: "OWLRUN_MINT_URL", description: "Mint for top-ups (default: the first mint the gateway trusts)" },
  { name: "OWLRUN_DATA_DIR", description: "Wallet data directory (default ~/.owlrun)" },
  { name: "OWLRUN_MAX_PER_CALL", description: "Sats a tool may spend without confirmation", default: "1000" },
  { name: "OWLRUN_MAX_PER_DAY", description: "Sats all tools may spend per day", default: "10000" },
  { name: "OWLRUN_GATEWAY_API_KEY", description: "rc_ or sk- key sent to the gateway", isSecret: true },
] as const;
