/**
 * `chat` against a gateway that takes only L402 (it refuses X-Cashu): read the 402 challenge, pay
 * its Lightning invoice by melting the wallet's ecash, and retry with `L402 <macaroon>:<preimage>`.
 * The credential pays for exactly one served request, so a retry after a failure reuses it.
 */
import type { McpServer, ServerContext } from "@modelcontextprotocol/server";
import bolt11 from "bolt11";
import type { ChatMessage, ChatRequest } from "../src/client/index.js";
import { approveSpend } from "./confirm.js";
import {
  errorText,
  fail,
  insufficient,
  ok,
  sats,
  type ToolDeps,
  type ToolResult,
  completionView,
} from "./support.js";
import { feeAllowance } from "./withdraw.js";

export async function chatWithL402(
  server: McpServer,
  deps: ToolDeps,
  ctx: ServerContext,
  args: Record<string, unknown>,
  req: { model: string; messages: ChatMessage[]; maxTokens: number; temperature?: number },
): Promise<ToolResult> {
  const body: ChatRequest = {
    model: req.model,
    messages: req.messages,
    max_tokens: req.maxTokens,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
  };
  const challenge = await deps.gateway.l402Challenge(body, { signal: ctx.mcpReq.signal });
  const amount = Number(bolt11.decode(challenge.invoice).satoshis ?? challenge.amountSats ?? 0);
  if (!amount) return fail("the gateway's L402 invoice has no amount");
  const budget = amount + feeAllowance(amount);
  const short = insufficient(deps, budget);
  if (short) return short;
  const pending = await approveSpend(server, deps, ctx, {
    tool: "chat",
    amountSat: budget,
    what: `pay a ${sats(amount)} L402 invoice for a chat request to ${req.model} (up to ${sats(budget - amount)} fee)`,
    args,
  });
  if (pending) return pending;
  const paid = await deps.wallet.withdraw(challenge.invoice);
  if (!paid.preimage)
    return fail(
      "the mint is still paying the L402 invoice; the ecash stays reserved until it settles — try again later",
    );
  let answer;
  try {
    answer = await deps.gateway.chat(
      body,
      { l402: `${challenge.macaroon}:${paid.preimage}` },
      { signal: ctx.mcpReq.signal },
    );
  } catch (err) {
    return fail(`${errorText(err)}; the invoice (${sats(amount)}) was paid`);
  }
  const out = {
    ...completionView(answer.completion, req.model),
    cost_sats: answer.costSats ?? amount,
    paid_sats: paid.paidSat + paid.feeSat,
    change_sats: 0,
    balance_sats: deps.wallet.balance().total_sats,
    request_id: bolt11.decode(challenge.invoice).tagsObject.payment_hash ?? "",
  };
  const footer = `[${out.model}: paid an L402 invoice of ${sats(amount)} (fee ${sats(paid.feeSat)}); balance ${sats(out.balance_sats)}]`;
  return ok(out, `${out.answer}\n\n${footer}`);
}
