/**
 * What every tool shares: the dependencies the MCP server hands them (wallet, gateway client,
 * spend confirmations), the result shapes (structured content plus a human text), and error texts
 * an agent can act on ("insufficient balance: 12 sats, need 40; use topup").
 */
import type {
  CallToolResult,
  ContentBlock,
  InputRequiredResult,
  RequestStateCodec,
  ServerContext,
} from "@modelcontextprotocol/server";
import {
  type ChatCompletion,
  GatewayApiError,
  type GatewayClient,
  GatewayUnavailableError,
} from "../src/client/index.js";
import { EcashError } from "../src/shared/ecash/index.js";
import { AppError, errorMessage, type Logger } from "../src/shared/index.js";
import type { ResolveOptions } from "../src/shared/lnurl.js";
import { type LocalWallet, SpendLimitError } from "../src/wallet/index.js";

/** The signed state a spend confirmation carries between rounds (see confirm.ts). */
export interface ConfirmationState {
  /** single-use nonce */
  n: string;
  /** tool name */
  t: string;
  /** sats */
  a: number;
  /** digest of the arguments the user confirmed */
  h: string;
}

export interface SettleResult {
  /** changed: change fetched from the gateway; reclaimed: the unused token came back; open: try later */
  state: "changed" | "reclaimed" | "closed" | "open";
  sats: number;
}

export interface ToolDeps {
  wallet: LocalWallet;
  gateway: GatewayClient;
  /** one line for the server instructions: which gateway, configured how, and what to do when it is down */
  gatewaySetup?: string;
  log: Logger;
  /** resolves once start-up recovery has finished; wallet-touching tools wait for it */
  ready(): Promise<void>;
  /** where top-ups mint: --mint-url / OWLRUN_MINT_URL, else the first mint the gateway trusts */
  mintUrl(): Promise<string>;
  /** the mints the gateway accepts X-Cashu tokens from (first = preferred) */
  gatewayMints(): Promise<string[]>;
  /** how the gateway takes payment (xcashu, accounts, l402, bsv); undefined when it does not say */
  gatewayPaymentMethods(): Promise<string[] | undefined>;
  /** settles one journaled X-Cashu request: change from the gateway, or the unused token back */
  settleRequest(id: string): Promise<SettleResult>;
  /** X-Cashu requests this process is waiting on (background settlement leaves them alone) */
  inflight: Set<string>;
  /** signs and checks the state of spend confirmations (elicitation) */
  confirmations: { codec: RequestStateCodec<ConfirmationState>; used: Set<string> };
  /** LNURL options for Lightning-address withdrawals (tests allow loopback http) */
  lnurl?: ResolveOptions;
}

export type ToolResult = CallToolResult | InputRequiredResult;

/** A successful result: structured content (validated against the output schema) and the same in words. */
export function ok(
  structured: Record<string, unknown>,
  text: string,
  extra: ContentBlock[] = [],
): CallToolResult {
  return { content: [{ type: "text", text }, ...extra], structuredContent: structured };
}

/** A tool error the agent reads (isError results are for the model, not protocol failures). */
export function fail(text: string): CallToolResult {
  return { isError: true, content: [{ type: "text", text }] };
}

/** The words for a failure, with the way out where there is one. */
export function errorText(err: unknown): string {
  if (err instanceof SpendLimitError) return `refused: ${err.message}`;
  if (err instanceof GatewayUnavailableError) return err.message;
  if (err instanceof GatewayApiError) {
    const retry = err.retryAfterSec ? ` (retry in ${err.retryAfterSec} s)` : "";
    return `the gateway refused: ${err.message}${retry}`;
  }
  if (err instanceof EcashError) {
    if (err.type === "insufficient_funds") return `insufficient balance: ${err.message}; use topup`;
    if (err.type === "mint_unavailable") return `${err.message}; try again later or set OWLRUN_MINT_URL`;
    if (err.type === "token_spent") return "that cashu token was already spent";
    return err.message;
  }
  if (err instanceof AppError) return err.message;
  return `unexpected error: ${errorMessage(err)}`;
}

/** Runs a tool body; anything thrown becomes an isError result with a clear text. */
export async function guarded(
  deps: ToolDeps,
  name: string,
  body: () => Promise<ToolResult>,
): Promise<ToolResult> {
  try {
    return await body();
  } catch (err) {
    if (!(err instanceof AppError))
      deps.log.error(`${name} failed`, { err: String((err as Error)?.stack ?? err) });
    return fail(errorText(err));
  }
}

/** Refuses early, in the words of the contract, when the wallet cannot cover `needSat`. */
export function insufficient(deps: ToolDeps, needSat: number, mint?: string): CallToolResult | null {
  const have = mint ? (deps.wallet.balance().mints[mint] ?? 0) : deps.wallet.balance().total_sats;
  if (have >= needSat) return null;
  const where = mint ? ` at ${mint}` : "";
  return fail(`insufficient balance: ${have} sats${where}, need ${needSat}; use topup`);
}

/** Balance per mint as a list (stable for schemas) plus the total. */
export function balanceView(wallet: LocalWallet): {
  total_sats: number;
  mints: { mint: string; sats: number }[];
} {
  const b = wallet.balance();
  return {
    total_sats: b.total_sats,
    mints: Object.entries(b.mints)
      .map(([mint, sats]) => ({ mint, sats }))
      .sort((x, y) => y.sats - x.sats),
  };
}

/** Sends a progress notification when the client asked for progress (a progressToken in _meta). */
export async function progress(
  ctx: ServerContext,
  value: number,
  total: number | undefined,
  message: string,
): Promise<void> {
  const token = ctx.mcpReq._meta?.progressToken;
  if (token === undefined) return;
  await ctx.mcpReq
    .notify({
      method: "notifications/progress",
      params: { progressToken: token, progress: value, ...(total ? { total } : {}), message },
    })
    .catch(() => undefined);
}

export const sats = (n: number) => `${n} sat${n === 1 ? "" : "s"}`;

/** The answer part of a chat tool result, from the gateway's completion. */
/**
 * Bytes a model produced that are not UTF-8 reach us as U+FFFD: each run of them (with the spaces
 * between) becomes one "[invalid UTF-8]" marker instead of a screen of replacement characters.
 */
export function tidyInvalidUtf8(text: string): string {
  return text.replace(/\uFFFD(?:\s*\uFFFD)*/g, "[invalid UTF-8]");
}

export function completionView(c: ChatCompletion, fallbackModel: string) {
  const choice = c.choices[0]!;
  return {
    answer: tidyInvalidUtf8(choice.message.content ?? ""),
    model: c.model ?? fallbackModel,
    finish_reason: choice.finish_reason ?? null,
    prompt_tokens: c.usage?.prompt_tokens ?? null,
    completion_tokens: c.usage?.completion_tokens ?? null,
  };
}
