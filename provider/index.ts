/**
 * The Owlrun provider node (`owlrun-mcp provider`). Never imports the gateway: it talks to one only
 * over the wire. Picks Ollama when one answers, else the embedded backend with the generated test
 * models (or `--model-file`).
 */
import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import {
  ConfigError,
  createLogger,
  flagOrEnv,
  type Logger,
  onShutdown,
  resolveDataDir,
  VERSION,
} from "../src/shared/index.js";
import { createEmbeddedBackend } from "./backends/embedded.js";
import type { Backend } from "./backends/types.js";
import { ensureTestModels } from "./gguf/models.js";
import { ProviderNode } from "./node.js";

export { SCRIPTED_ANSWER, SCRIPTED_MODEL_ID, RANDOM_MODEL_ID, ensureTestModels } from "./gguf/models.js";
export type { Backend } from "./backends/types.js";
export { createEmbeddedBackend } from "./backends/embedded.js";
export { createOllamaBackend } from "./backends/ollama.js";
export { startOllamaFacade } from "./facade.js";

interface Identity {
  api_key: string;
  node_id: string;
  gateway: string;
}

/** The node's key and id, kept in `<dir>/node.json` (0600); signs up by itself on first start. */
async function identity(
  dir: string,
  gateway: string,
  apiKey: string | undefined,
  log: Logger,
): Promise<Identity> {
  const path = join(dir, "node.json");
  const stored = existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Identity) : undefined;
  let key = apiKey ?? (stored?.gateway === gateway ? stored.api_key : undefined);
  if (!key) {
    const res = await fetch(`${gateway}/v1/gateway/signup`, {
      method: "POST",
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    if (!res || res.status !== 201) {
      throw new ConfigError(
        `could not sign up at ${gateway}${res ? ` (HTTP ${res.status})` : ""}: pass --api-key (ask the operator: owlrun-mcp gateway provider-key)`,
      );
    }
    key = ((await res.json()) as { api_key: string }).api_key;
    log.info("signed up at the gateway; key stored", { path });
  }
  // A node id belongs to the key that first registered it: another gateway means a new identity.
  const sameGateway = stored?.gateway === gateway;
  const id: Identity = {
    api_key: key,
    node_id: sameGateway && stored ? stored.node_id : `owlrun-${randomUUID()}`,
    gateway,
  };
  writeFileSync(path, `${JSON.stringify(id, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return id;
}

export interface ProviderOptions {
  gateway: string;
  dataDir: string;
  apiKey?: string;
  lightningAddress?: string;
  /** force the embedded backend (else Ollama when one answers) */
  embedded?: boolean;
  ollamaUrl?: string;
  modelFiles?: string[];
  heartbeatMs?: number;
  log?: Logger;
}

export interface RunningProvider {
  node: ProviderNode;
  backend: Backend;
  nodeId: string;
  close(): Promise<void>;
}

async function ollamaAnswers(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/api/version`, { signal: AbortSignal.timeout(1_500) })).ok;
  } catch {
    return false;
  }
}

export async function chooseBackend(opts: ProviderOptions, log: Logger): Promise<Backend> {
  const ollamaUrl = opts.ollamaUrl ?? "http://127.0.0.1:11434";
  if (!opts.embedded && (await ollamaAnswers(ollamaUrl))) {
    const { createOllamaBackend } = await import("./backends/ollama.js");
    return createOllamaBackend({ url: ollamaUrl, log });
  }
  const models = opts.modelFiles?.length
    ? Object.fromEntries(opts.modelFiles.map((f) => [basename(f).replace(/\.gguf$/i, ""), f]))
    : ensureTestModels(join(opts.dataDir, "models"));
  return createEmbeddedBackend({ models, log });
}

export async function startProvider(opts: ProviderOptions): Promise<RunningProvider> {
  const log = opts.log ?? createLogger("provider");
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const gateway = opts.gateway.replace(/\/+$/, "");
  const id = await identity(opts.dataDir, gateway, opts.apiKey, log);
  const backend = await chooseBackend(opts, log);
  const node = new ProviderNode({
    gateway,
    apiKey: id.api_key,
    nodeId: id.node_id,
    backend,
    lightningAddress: opts.lightningAddress,
    heartbeatMs: opts.heartbeatMs,
    version: `owlrun-mcp/${VERSION}`,
    log,
  });
  await node.start();
  return {
    node,
    backend,
    nodeId: id.node_id,
    async close() {
      await node.close();
      await backend.close();
    },
  };
}

export function summary(p: RunningProvider): string {
  const s = p.node.stats;
  const payout = s.lastPayout
    ? `${s.lastPayout.amount_sats ?? "?"} at ${String(s.lastPayout.timestamp ?? "?")}`
    : "none yet";
  return `served ${s.jobs} jobs, ${s.tokens} tokens, rejected ${s.rejected}; earned ${s.earnedTotalSats} sats (balance ${s.balanceSats}); last payout: ${payout}`;
}

const FLAGS = {
  gateway: { type: "string" },
  "lightning-address": { type: "string" },
  "ollama-url": { type: "string" },
  embedded: { type: "boolean" },
  "model-file": { type: "string", multiple: true },
  "data-dir": { type: "string" },
  "api-key": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** `owlrun-mcp provider --gateway URL [--lightning-address A] [--ollama-url URL] [--embedded] [--model-file F]` */
export async function runProviderCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: FLAGS, allowPositionals: false });
  if (values.help) {
    process.stdout.write(
      "owlrun-mcp provider --gateway URL [--lightning-address A] [--ollama-url URL] [--embedded] [--model-file F.gguf] [--api-key K] [--data-dir D]\n",
    );
    return;
  }
  const gateway = flagOrEnv(values, "gateway");
  if (!gateway) throw new ConfigError("--gateway URL is required (or OWLRUN_GATEWAY)");
  const log = createLogger("provider");
  const running = await startProvider({
    gateway,
    dataDir: join(resolveDataDir(flagOrEnv(values, "data-dir")), "provider"),
    apiKey: flagOrEnv(values, "api-key") ?? process.env.OWLRUN_PROVIDER_KEY,
    lightningAddress: flagOrEnv(values, "lightning-address"),
    embedded: values.embedded ?? process.env.OWLRUN_EMBEDDED === "1",
    ollamaUrl: flagOrEnv(values, "ollama-url"),
    modelFiles: values["model-file"],
    log,
  });
  onShutdown(async () => {
    process.stderr.write(`${summary(running)}\n`);
    await running.close();
  }, log);
  process.stdout.write(
    `provider connected ${gateway} as ${running.nodeId} (${running.backend.name}: ${(await running.backend.models()).join(", ")})\n`,
  );
}
