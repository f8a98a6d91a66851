/**
 * Starting a provider node: identity from the data dir (signing up when needed), a backend (Ollama
 * when one answers, else the embedded llama.cpp on `--model-file`s or the generated test models),
 * the node connection, and optionally the Ollama-compatible facade over the same backend.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { ConfigError, createLogger, type Logger, VERSION } from "../src/shared/index.js";
import { createEmbeddedBackend, modelIdForFile } from "./backends/embedded.js";
import type { Backend } from "./backends/types.js";
import { type Facade, startOllamaFacade } from "./facade.js";
import { ensureTestModels } from "./gguf/models.js";
import { loadIdentity } from "./identity.js";
import { type NodeStats, ProviderNode } from "./node.js";

export const DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434";

export interface ProviderOptions {
  /** gateway base URL */
  gateway: string;
  /** the provider's own directory (`<data-dir>/provider`): node.json and generated test models */
  dataDir: string;
  /** provider key; else the stored one; else the node signs up */
  apiKey?: string;
  lightningAddress?: string;
  /** share of work offered to free-tier jobs (karma, not sats); default 0 */
  freeTierPct?: number;
  /** use the embedded backend even when an Ollama answers */
  embedded?: boolean;
  /** default http://127.0.0.1:11434 */
  ollamaUrl?: string;
  /** GGUF files for the embedded backend (default: the generated test models) */
  modelFiles?: string[];
  /** serve the Ollama-compatible facade over the backend on this port (0 = any free port) */
  facadePort?: number;
  facadeHost?: string;
  /** embedded backend: concurrent jobs per model (context sequences); default 4 (test models) or 2 */
  sequences?: number;
  /** embedded backend: CPU threads; default 1 for the test models, else all cores but one */
  threads?: number;
  heartbeatMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  maxJobs?: number;
  /** one line per job (default: the logger at info) */
  onStatus?: (line: string) => void;
  log?: Logger;
}

export interface RunningProvider {
  nodeId: string;
  gateway: string;
  node: ProviderNode;
  /**
   * The backend serving jobs. `models()` is a deprecated alias of `listModels()`, kept until
   * src/cli.ts (devnet) calls `listModels()`.
   */
  backend: Backend & { models(): Promise<string[]> };
  /** the Ollama-compatible facade's URL, when `facadePort` was given */
  facadeUrl?: string;
  readonly stats: NodeStats;
  /** "served N jobs, T tokens, …": what the operator sees on shutdown */
  summary(): string;
  close(): Promise<void>;
}

async function ollamaAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/api/version`, { signal: AbortSignal.timeout(1_500) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Ollama when one answers at `ollamaUrl` (unless `embedded`), else the embedded backend. */
export async function chooseBackend(
  opts: Pick<ProviderOptions, "embedded" | "ollamaUrl" | "modelFiles" | "dataDir" | "sequences" | "threads">,
  log: Logger,
): Promise<Backend> {
  const ollamaUrl = (opts.ollamaUrl ?? DEFAULT_OLLAMA_URL).replace(/\/+$/, "");
  if (!opts.embedded) {
    if (await ollamaAnswers(ollamaUrl)) {
      const { createOllamaBackend } = await import("./backends/ollama.js");
      return createOllamaBackend({ url: ollamaUrl, log });
    }
    log.info(`no Ollama at ${ollamaUrl}; using the embedded backend`);
  }
  if (!opts.modelFiles?.length) {
    // The generated test models: tiny, so one thread (more made them ~100× slower on 2 cores).
    return createEmbeddedBackend({
      models: ensureTestModels(join(opts.dataDir, "models")),
      sequences: opts.sequences ?? 4,
      // Claude Code's system prompt and turns alone are ~17k characters (one token each here).
      contextSize: TEST_MODEL_CONTEXT,
      threads: opts.threads ?? 1,
      log,
    });
  }
  const models: Record<string, string> = {};
  for (const file of opts.modelFiles) {
    const path = resolve(file);
    if (!existsSync(path)) throw new ConfigError(`--model-file ${file}: no such file`);
    const id = modelIdForFile(path);
    if (models[id]) throw new ConfigError(`two --model-file names give the model id ${id}`);
    models[id] = path;
  }
  // Real models: a longer context, fewer sequences (memory), all cores but one.
  return createEmbeddedBackend({
    models,
    sequences: opts.sequences ?? 2,
    contextSize: 4096,
    threads: opts.threads ?? Math.max(1, availableParallelism() - 1),
    log,
  });
}

/**
 * Tokens per sequence for the generated test models: room for a Claude Code turn (~48 KB with its
 * tools) in their character-level tokenizer. The KV cache stays small (2 layers × 64 dims: ~17 MB
 * per sequence).
 */
export const TEST_MODEL_CONTEXT = 32_768;

export function summarize(stats: NodeStats): string {
  const p = stats.lastPayout;
  const payout = p
    ? `${p.sats} sats${p.at ? ` at ${p.at}` : ""}${p.paymentHash ? ` (${p.paymentHash})` : ""}`
    : "none yet";
  return (
    `served ${stats.jobs} jobs, ${stats.tokens} tokens, rejected ${stats.rejected}, failed ${stats.failed}; ` +
    `earned ${stats.earnedTotalSats} sats (today ${stats.earnedTodaySats}, balance ${stats.balanceSats}); ` +
    `last payout: ${payout}`
  );
}

export async function startProvider(opts: ProviderOptions): Promise<RunningProvider> {
  const log = opts.log ?? createLogger("provider");
  const gateway = opts.gateway.replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]/.test(gateway))
    throw new ConfigError(`--gateway must be an http(s) URL, got "${gateway}"`);
  const id = await loadIdentity({ dir: opts.dataDir, gateway, apiKey: opts.apiKey, log });
  const backend = await chooseBackend(opts, log);
  let facade: Facade | undefined;
  const node = new ProviderNode({
    gateway,
    apiKey: id.apiKey,
    nodeId: id.nodeId,
    backend,
    version: `owlrun-mcp/${VERSION}`,
    lightningAddress: opts.lightningAddress,
    freeTierPct: opts.freeTierPct,
    ollamaUrl: "url" in backend && typeof backend.url === "string" ? backend.url : undefined,
    heartbeatMs: opts.heartbeatMs,
    minBackoffMs: opts.minBackoffMs,
    maxBackoffMs: opts.maxBackoffMs,
    maxJobs: opts.maxJobs,
    onStatus: opts.onStatus,
    log,
  });
  try {
    if (opts.facadePort !== undefined) {
      facade = await startOllamaFacade(backend, { host: opts.facadeHost, port: opts.facadePort });
    }
    await node.start();
  } catch (err) {
    await node.close();
    await facade?.close();
    await backend.close();
    const status = (err as { status?: unknown }).status;
    if (status === 401 || status === 403) {
      throw new ConfigError(
        `${(err as Error).message} (key ${opts.apiKey ? "given" : `from ${id.path}`}; ` +
          "pass another with --api-key, or remove it from that file to sign up again)",
      );
    }
    throw err;
  }
  return {
    nodeId: id.nodeId,
    gateway,
    node,
    backend: { ...backend, models: () => backend.listModels() },
    facadeUrl: facade?.url,
    get stats() {
      return node.stats;
    },
    summary: () => summarize(node.stats),
    async close() {
      await node.close();
      await facade?.close();
      await backend.close();
    },
  };
}
