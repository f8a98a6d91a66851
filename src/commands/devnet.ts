/**
 * `owlrun-mcp devnet`: bundled mint + gateway + one provider + an MCP server on loopback, with a
 * funded demo wallet, so the printed lines work as they stand. `devnet invoice N` prints an invoice.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startGateway } from "../../gateway/index.js";
import { createLightningBackend } from "../../gateway/mint/index.js";
import {
  DEFAULT_OLLAMA_URL,
  EmbeddedUnavailableError,
  SCRIPTED_MODEL_ID,
  startProvider,
} from "../../provider/index.js";
import { gatewayServerCard, mcpClientConfigLines, startMcpHttp } from "../mcp/index.js";
import { devnetInvoice } from "../devnet-invoice.js";
import { DEVNET_FLAGS, DEVNET_USAGE } from "../cli-options.js";
import { EcashStore, EcashWallet, loadOrCreateSeed } from "../shared/ecash/index.js";
import {
  announceListening,
  ConfigError,
  createLogger,
  flagOrEnv,
  onShutdown,
  parseNonNegativeInt,
  parsePort,
  privateDir,
  PACKAGE_ROOT,
  PortMemory,
  resolveDataDir,
} from "../shared/index.js";
import { bundledMint } from "./flags.js";

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

export async function runDevnet(argv: string[]): Promise<void> {
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
