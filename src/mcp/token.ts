/**
 * The bearer token of `owlrun-mcp http`. Required on /mcp by default: any web page or local process
 * could otherwise open a session and spend the wallet. Made once (32 random bytes, base64url) and
 * kept 0600 in `<dataDir>/mcp-token`; an explicit `--mcp-token` wins; `--no-mcp-token` opts out,
 * and only on a loopback bind.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, privateDir } from "../shared/index.js";

export const MCP_TOKEN_FILE = "mcp-token";

/** The token in `dataDir`, made on first use. */
export function loadOrCreateMcpToken(dataDir: string): string {
  privateDir(dataDir);
  const path = join(dataDir, MCP_TOKEN_FILE);
  if (!existsSync(path)) {
    try {
      writeFileSync(path, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err; // another process made it first
    }
  }
  chmodSync(path, 0o600);
  const token = readFileSync(path, "utf8").trim();
  if (token.length < 16) throw new ConfigError(`${path} holds no usable token; delete it to make a new one`);
  return token;
}

/**
 * The token /mcp requires: `token` when given, none when the operator opted out (`false`), else the
 * stored one. Refuses an opt-out on a non-loopback bind.
 */
export function resolveMcpToken(
  token: string | false | undefined,
  dataDir: string | undefined,
  loopback: boolean,
  host: string,
): string | undefined {
  if (token === false) {
    if (!loopback)
      throw new ConfigError(
        `refusing to serve MCP on ${host} without a bearer token: drop --no-mcp-token (a token is made for you) or bind 127.0.0.1`,
      );
    return undefined;
  }
  if (token) return token;
  if (!dataDir) throw new ConfigError("MCP over HTTP needs a data dir to keep its bearer token in");
  return loadOrCreateMcpToken(dataDir);
}
