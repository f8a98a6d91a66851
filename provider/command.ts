/**
 * `owlrun-mcp provider`: flags as the Owlrun agent's (`--gateway`, `--lightning-address`,
 * `--ollama-url`) plus ours; every flag also reads `OWLRUN_<FLAG>` from the environment.
 */
import { delimiter, join } from "node:path";
import { parseArgs } from "node:util";
import {
  announceListening,
  ConfigError,
  createLogger,
  flagOrEnv,
  onShutdown,
  parseNonNegativeInt,
  parsePort,
  resolveDataDir,
} from "../src/shared/index.js";
import { startProvider } from "./start.js";

export const PROVIDER_USAGE = `owlrun-mcp provider --gateway URL [options]: serve inference for sats

  --gateway URL            the gateway to serve (env OWLRUN_GATEWAY_URL; OWLRUN_GATEWAY is a deprecated alias)
  --lightning-address A    where the gateway pays your earnings (user@domain)
  --free-tier-pct N        take free-tier jobs too (0-100; they earn karma, not sats; default 0)
  --ollama-url URL         Ollama to serve from (default http://127.0.0.1:11434)
  --embedded               in-process llama.cpp instead of Ollama (needs node-llama-cpp)
  --model-file PATH        a GGUF file for the embedded backend (repeatable; default: generated test models)
  --api-key K              provider key (OWLRUN_PROVIDER_KEY); without one the node signs up by itself
  --data-dir DIR           default $OWLRUN_DATA_DIR or ~/.owlrun; the node keeps DIR/provider/node.json
  --facade-port N          also serve an Ollama-compatible API over the backend (0 = any free port)
  --host H                 bind address of the facade (default 127.0.0.1)

Without --embedded the node uses Ollama when one answers at --ollama-url, else the embedded backend.
Prints "provider connected <gateway>" (or "listening <facade url>" with --facade-port) once connected;
one line per job on stderr, and a summary on SIGINT/SIGTERM.
`;

export const PROVIDER_FLAGS = {
  gateway: { type: "string" },
  "lightning-address": { type: "string" },
  "free-tier-pct": { type: "string" },
  "ollama-url": { type: "string" },
  embedded: { type: "boolean" },
  "model-file": { type: "string", multiple: true },
  "data-dir": { type: "string" },
  "api-key": { type: "string" },
  "facade-port": { type: "string" },
  host: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v);

/** Runs the provider node until SIGINT/SIGTERM; resolves once it is connected. */
export async function runProviderCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: PROVIDER_FLAGS, allowPositionals: false });
  if (values.help) return void process.stdout.write(PROVIDER_USAGE);
  // One name across commands: OWLRUN_GATEWAY_URL; OWLRUN_GATEWAY still works (deprecated).
  const gateway = values.gateway ?? (process.env.OWLRUN_GATEWAY_URL || process.env.OWLRUN_GATEWAY);
  if (!gateway) throw new ConfigError("--gateway URL is required (or OWLRUN_GATEWAY_URL)");
  const envFiles = process.env.OWLRUN_MODEL_FILE?.split(delimiter).filter(Boolean);
  const facadePort = flagOrEnv(values, "facade-port");
  const log = createLogger("provider");
  const running = await startProvider({
    gateway,
    dataDir: join(resolveDataDir(flagOrEnv(values, "data-dir")), "provider"),
    apiKey: flagOrEnv(values, "api-key") ?? process.env.OWLRUN_PROVIDER_KEY,
    lightningAddress: flagOrEnv(values, "lightning-address"),
    freeTierPct: Math.min(100, parseNonNegativeInt("--free-tier-pct", flagOrEnv(values, "free-tier-pct"), 0)),
    embedded: values.embedded ?? truthy(process.env.OWLRUN_EMBEDDED),
    ollamaUrl: flagOrEnv(values, "ollama-url"),
    modelFiles: values["model-file"] ?? envFiles,
    facadePort: facadePort === undefined ? undefined : parsePort(facadePort, 0),
    facadeHost: flagOrEnv(values, "host"),
    onStatus: (line) => process.stderr.write(`${line}\n`),
    log,
  });
  onShutdown(async () => {
    process.stderr.write(`${running.summary()}\n`);
    await running.close();
  }, log);
  log.info("provider ready", {
    gateway: running.gateway,
    node: running.nodeId,
    backend: running.backend.name,
    models: await running.backend.listModels(),
    ...(running.facadeUrl ? { facade: running.facadeUrl } : {}),
  });
  if (running.facadeUrl) announceListening(running.facadeUrl);
  else process.stdout.write(`provider connected ${running.gateway}\n`);
}
