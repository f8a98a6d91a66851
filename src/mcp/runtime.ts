/**
 * What one MCP server process holds: the local wallet, the gateway client, and the money repairs.
 * On start it runs `wallet.recover()`, claims top-ups paid while it was down, and settles X-Cashu
 * requests left open by a crash (change fetched by request id; tokens the gateway never claimed
 * taken back). Settlement retries in the background while requests stay open. None of this needs
 * the gateway to be up: the server starts anyway and the tools explain the way out.
 */
import { randomBytes } from "node:crypto";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { createRequestStateCodec } from "@modelcontextprotocol/server";
import type { ConfirmationState, SettleResult, ToolDeps } from "../../tools/index.js";
import { GatewayClient, GatewayUnavailableError } from "../client/index.js";
import { EcashError, normalizeMintUrl } from "../shared/ecash/index.js";
import { AppError, createLogger, errorMessage, type Logger } from "../shared/index.js";
import { LocalWallet } from "../wallet/index.js";
import { LogRelay } from "./log-relay.js";

export interface McpRuntimeOptions {
  /** gateway base URL (default http://127.0.0.1:8402) */
  gatewayUrl: string;
  /** the flag or variable the URL came from (undefined: nothing configured, the default) */
  gatewaySource?: string;
  /** the configured URL is invalid: the server starts and every gateway call answers with this */
  gatewayConfigError?: string;
  /** mint for top-ups; default: the first mint the gateway's /v1/info trusts */
  mintUrl?: string;
  /** the data dir; the wallet lives in <dataDir>/wallet */
  dataDir: string;
  maxPerCallSat?: number;
  maxPerDaySat?: number;
  /** sent as a Bearer key to the gateway */
  gatewayApiKey?: string;
  /** tests and local networks: Lightning addresses on http://127.0.0.1 */
  allowLoopbackLnurl?: boolean;
  /** how often open requests are settled again (default 30 s) */
  settleIntervalMs?: number;
  /** how long a tool waits for start-up recovery before going ahead (default 15 s) */
  recoveryWaitMs?: number;
  log?: Logger;
}

export interface McpRuntime {
  deps: ToolDeps;
  /** offers this process's log lines to MCP clients (logging capability) */
  logs: LogRelay;
  wallet: LocalWallet;
  gateway: GatewayClient;
  /** resolves when start-up recovery is done (never rejects) */
  recovered: Promise<void>;
  /** settles every open request now (also runs on a timer) */
  settleOpenRequests(): Promise<void>;
  close(): Promise<void>;
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);

/** What to do when nothing answers at the gateway URL, in the user's situation. */
export function unavailableHint(opts: Pick<McpRuntimeOptions, "gatewaySource">): string {
  if (opts.gatewaySource)
    return (
      `the gateway configured by ${opts.gatewaySource} is not answering: ask the user to check that it ` +
      `is running and reachable from this machine, or to change ${opts.gatewaySource.split(" ")[0]} in ` +
      "this MCP server's configuration and restart it"
    );
  return (
    "no gateway is configured and none runs at the default address. To try owlrun locally, the user " +
    "runs `npx owlrun-mcp devnet` in a terminal and leaves it running (a test network on this machine " +
    "with fake Lightning; the tools then work against it). To use a real gateway, the user sets " +
    "OWLRUN_GATEWAY_URL=<gateway URL> in this MCP server's environment (Claude Code: " +
    "`claude mcp add owlrun -e OWLRUN_GATEWAY_URL=<url> -- npx owlrun-mcp`) and restarts it"
  );
}

/** The server instructions' line about the gateway. */
function gatewaySetup(opts: McpRuntimeOptions): string {
  if (opts.gatewayConfigError)
    return `Configuration error: ${opts.gatewayConfigError}. Until then every tool that needs the gateway answers with this; tell the user.`;
  if (opts.gatewaySource)
    return `Gateway: ${opts.gatewayUrl} (set by ${opts.gatewaySource}). If a tool says it is not answering, tell the user that this gateway is down or unreachable.`;
  return `No gateway is configured: the tools try ${opts.gatewayUrl}, where \`npx owlrun-mcp devnet\` runs a local test network. If a tool answers "no gateway", tell the user the two ways out it names: run the devnet in a terminal, or set OWLRUN_GATEWAY_URL to a real gateway.`;
}

/** Open requests whose token the gateway claimed but whose change never shows up are closed after this many tries. */
const GIVE_UP_AFTER = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function openRuntime(opts: McpRuntimeOptions): McpRuntime {
  const logs = new LogRelay();
  const log = logs.wrap(opts.log ?? createLogger("mcp"));
  const wallet = LocalWallet.open(opts.dataDir, log.child("wallet"), {
    limits: { perCallSat: opts.maxPerCallSat, perDaySat: opts.maxPerDaySat },
  });
  if (wallet.createdSeed) {
    // The same data dir, or the command would show (and create) another wallet; the user's shell
    // may not have this server's OWLRUN_DATA_DIR, so only the plain default goes without the flag.
    const isDefault = resolve(opts.dataDir) === join(homedir(), ".owlrun");
    const dirFlag = isDefault ? "" : ` --data-dir ${shellQuote(resolve(opts.dataDir))}`;
    log.info(
      `created a new wallet; run \`npx owlrun-mcp wallet balance${dirFlag}\` once to see its recovery phrase`,
      { dir: opts.dataDir },
    );
  }
  const gateway = new GatewayClient({
    baseUrl: opts.gatewayUrl,
    apiKey: opts.gatewayApiKey,
    unavailableHint: unavailableHint(opts),
    configError: opts.gatewayConfigError,
  });
  const inflight = new Set<string>();
  const unanswered = new Map<string, number>();
  const running = new Map<string, Promise<SettleResult>>();

  let info: { mints: string[]; methods?: string[]; at: number } | undefined;
  const gatewayInfo = async () => {
    if (info && Date.now() - info.at < 60_000) return info;
    const i = await gateway.info();
    info = { mints: i.mints.map(normalizeMintUrl), methods: i.payment_methods, at: Date.now() };
    return info;
  };
  const gatewayMints = async (): Promise<string[]> => (await gatewayInfo()).mints;
  const gatewayPaymentMethods = async () => (await gatewayInfo()).methods;
  const mintUrl = async (): Promise<string> => {
    if (opts.mintUrl) return normalizeMintUrl(opts.mintUrl);
    let mints: string[];
    try {
      mints = await gatewayMints();
    } catch (err) {
      if (err instanceof GatewayUnavailableError)
        throw new AppError(`${err.message}; or set OWLRUN_MINT_URL to use a mint directly`, err.type, 503);
      throw err;
    }
    if (!mints[0]) throw new AppError("the gateway lists no mint; set OWLRUN_MINT_URL", "no_mint", 503);
    return mints[0];
  };

  /** Takes change that may already be ours: a spent change token means it was received before a crash. */
  const takeChange = async (id: string, token: string): Promise<SettleResult> => {
    try {
      return { state: "changed", sats: await wallet.finishRequest(id, token) };
    } catch (err) {
      if (err instanceof EcashError && err.type === "token_spent") {
        await wallet.finishRequest(id);
        return { state: "closed", sats: 0 };
      }
      throw err;
    }
  };

  const settleOnce = async (id: string): Promise<SettleResult> => {
    if (!wallet.openRequests().some((r) => r.id === id)) return { state: "closed", sats: 0 };
    // 1. The gateway never claimed the token: take it back (a swap at the mint decides who wins).
    let claimed = false;
    try {
      const back = await wallet.reclaimRequest(id);
      if (back > 0) return { state: "reclaimed", sats: back };
      claimed = true;
    } catch (err) {
      log.warn("could not reclaim a request token now", { id, err: errorMessage(err) });
    }
    // 2. It was claimed: the change is stored at the gateway under the request id.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const change = await gateway.change(id);
        if (change) return await takeChange(id, change.token);
      } catch (err) {
        log.warn("could not fetch change now", { id, err: errorMessage(err) });
        if (err instanceof GatewayUnavailableError) break;
      }
      if (attempt < 2) await sleep(250 * (attempt + 1));
    }
    if (claimed) {
      const tries = (unanswered.get(id) ?? 0) + 1;
      unanswered.set(id, tries);
      if (tries >= GIVE_UP_AFTER) {
        // Claimed, and the gateway keeps no change for it: the whole token was charged.
        await wallet.finishRequest(id);
        unanswered.delete(id);
        log.warn("closed a request the gateway claimed without change", { id });
        return { state: "closed", sats: 0 };
      }
    }
    return { state: "open", sats: 0 };
  };

  const settleRequest = (id: string): Promise<SettleResult> => {
    let p = running.get(id);
    if (!p) {
      p = settleOnce(id)
        .catch((err): SettleResult => {
          log.warn("settling a request failed; will retry", { id, err: errorMessage(err) });
          return { state: "open", sats: 0 };
        })
        .finally(() => running.delete(id));
      running.set(id, p);
    }
    return p;
  };

  const settleOpenRequests = async () => {
    for (const r of wallet.openRequests()) {
      if (inflight.has(r.id)) continue;
      const s = await settleRequest(r.id);
      if (s.state !== "open") log.info("settled an open request", { id: r.id, ...s });
    }
  };

  let isRecovered = false;
  const recovered = (async () => {
    try {
      const r = await wallet.recover();
      if (r.restoredSat || r.freedSat) log.info("wallet recovered after a crash", r);
    } catch (err) {
      log.warn("wallet recovery failed; will retry on next start", { err: errorMessage(err) });
    }
    for (const t of wallet.pendingTopups()) {
      try {
        const s = await wallet.topupStatus(t.quote);
        if (s.state === "claimed")
          log.info("claimed a top-up paid while the server was away", { sats: s.amountSat });
      } catch (err) {
        log.debug("could not check a pending top-up", { quote: t.quote, err: errorMessage(err) });
      }
    }
    await settleOpenRequests().catch(() => undefined);
  })().finally(() => {
    isRecovered = true;
  });

  let closed = false;
  const timer = setInterval(() => {
    if (closed || wallet.openRequests().length === 0) return;
    void recovered.then(settleOpenRequests).catch(() => undefined);
  }, opts.settleIntervalMs ?? 30_000);
  timer.unref();

  const waitMs = opts.recoveryWaitMs ?? 15_000;
  const ready = async () => {
    if (isRecovered) return;
    await Promise.race([
      recovered,
      new Promise<void>((r) => setTimeout(r, waitMs).unref()).then(() =>
        log.warn("start-up recovery is slow (a mint is not answering); going ahead"),
      ),
    ]);
  };

  const codec = createRequestStateCodec<ConfirmationState>({ key: randomBytes(32), ttlSeconds: 600 });
  const deps: ToolDeps = {
    wallet,
    gateway,
    log: log.child("tools"),
    ready,
    mintUrl,
    gatewayMints,
    gatewayPaymentMethods,
    settleRequest,
    inflight,
    confirmations: { codec, used: new Set() },
    lnurl: { allowLoopbackHttp: opts.allowLoopbackLnurl ?? false },
    gatewaySetup: gatewaySetup(opts),
  };

  return {
    deps,
    logs,
    wallet,
    gateway,
    recovered,
    settleOpenRequests,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await Promise.race([Promise.allSettled([recovered, ...running.values()]), sleep(5_000)]);
      wallet.close();
    },
  };
}
