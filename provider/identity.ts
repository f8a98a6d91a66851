/**
 * The node's identity in its data dir: `<dir>/node.json` (mode 0600) holds its node id and its
 * provider key for each gateway it joined. Without a key, the node signs up by itself
 * (`POST /v1/gateway/signup` → `{"api_key":"owlr_prov_…"}`) and keeps the key.
 */
import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as z from "zod";
import { ConfigError, type Logger } from "../src/shared/index.js";

const NodeFile = z.looseObject({
  node_id: z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/),
  /** gateway base URL → provider key */
  keys: z.record(z.string(), z.string().min(1).max(256)).default({}),
});
type NodeFile = z.infer<typeof NodeFile>;

const SignupAnswer = z.looseObject({ api_key: z.string().min(1).max(256) });

export interface Identity {
  nodeId: string;
  apiKey: string;
  /** where it is kept */
  path: string;
  /** true when this start signed up for the key */
  signedUp: boolean;
}

export interface IdentityOptions {
  /** the provider's own directory (`<data-dir>/provider`) */
  dir: string;
  gateway: string;
  /** a key given on the command line or in OWLRUN_PROVIDER_KEY; kept for this gateway */
  apiKey?: string;
  log: Logger;
  /** signup retries on network errors before giving up (default 5, 1 s apart, doubling) */
  signupAttempts?: number;
}

function read(path: string): NodeFile | undefined {
  if (!existsSync(path)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new ConfigError(`${path} is not valid JSON: fix or remove it`);
  }
  // An older layout kept one key: { api_key, gateway, node_id }.
  const old = json as { api_key?: unknown; gateway?: unknown; keys?: unknown };
  if (typeof old.api_key === "string" && typeof old.gateway === "string" && old.keys === undefined) {
    json = { ...(json as object), keys: { [old.gateway]: old.api_key } };
  }
  const parsed = NodeFile.safeParse(json);
  if (!parsed.success) throw new ConfigError(`${path} is not a node identity file: fix or remove it`);
  return parsed.data;
}

function write(path: string, file: NodeFile): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const { node_id, keys } = file;
  writeFileSync(tmp, `${JSON.stringify({ node_id, keys }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

async function signup(gateway: string, log: Logger, attempts: number): Promise<string> {
  let delay = 1000;
  for (let i = 1; ; i++) {
    let res: Response;
    try {
      res = await fetch(`${gateway}/v1/gateway/signup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      if (i >= attempts) {
        throw new ConfigError(
          `could not reach the gateway at ${gateway} to sign up: ${(err as Error).message}`,
        );
      }
      log.warn(`gateway unreachable for signup; retrying in ${delay / 1000} s`, { gateway });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30_000);
      continue;
    }
    const answer = SignupAnswer.safeParse(await res.json().catch(() => undefined));
    if (res.ok && answer.success) return answer.data.api_key;
    throw new ConfigError(
      `the gateway at ${gateway} did not issue a provider key (HTTP ${res.status}): ` +
        "pass --api-key or set OWLRUN_PROVIDER_KEY (its operator can mint one with `owlrun-mcp gateway provider-key`)",
    );
  }
}

/** Loads (or creates) the node id and the key for `gateway`, signing up when there is none. */
export async function loadIdentity(opts: IdentityOptions): Promise<Identity> {
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const path = join(opts.dir, "node.json");
  const stored = read(path);
  const file: NodeFile = stored ?? { node_id: `owlrun-${randomUUID()}`, keys: {} };
  let apiKey = opts.apiKey ?? file.keys[opts.gateway];
  let signedUp = false;
  if (!apiKey) {
    apiKey = await signup(opts.gateway, opts.log, opts.signupAttempts ?? 5);
    signedUp = true;
    opts.log.info("signed up at the gateway; provider key stored", { gateway: opts.gateway, path });
  }
  if (!stored || file.keys[opts.gateway] !== apiKey) {
    file.keys[opts.gateway] = apiKey;
    write(path, file);
  } else {
    chmodSync(path, 0o600);
  }
  return { nodeId: file.node_id, apiKey, path, signedUp };
}
