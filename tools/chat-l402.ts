/**
 * `chat` against a gateway that takes only L402 (it refuses X-Cashu): read the 402 challenge, pay
 * its Lightning invoice by melting the wallet's ecash, and retry with `L402 <macaroon>:<preimage>`.
 * The credential pays for exactly one served request: it is kept in the wallet until one is
 * served, so a chat that fails after the invoice was paid leaves it for the next chat.
 */
import type { McpServer, ServerContext } from "@modelcontextprotocol/server";
import bolt11 from "bolt11";
import { type ChatMessage, type ChatRequest, GatewayApiError } from "../src/client/index.js";
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
  const invoice = bolt11.decode(challenge.invoice);
  const amount = Number(invoice.satoshis ?? challenge.amountSats ?? 0);
  if (!amount) return fail("the gateway's L402 invoice has no amount");
  const gateway = deps.gateway.baseUrl;
  const send = (credential: string) =>
    deps.gateway.chat(body, { l402: credential }, { signal: ctx.mcpReq.signal });

  // A credential paid earlier for a request that was not served pays this one, at no new cost.
  const kept = deps.wallet.unusedL402(gateway, amount, KEEP_MS);
  if (kept) {
    try {
      const answer = await send(kept.credential);
      deps.wallet.endL402(kept.payment_hash, "used");
      return answered(deps, req.model, answer, kept.payment_hash, {
        paidSat: 0,
        text: `used an L402 credential paid earlier (${sats(kept.amount)})`,
      });
    } catch (err) {
      // Refused as a credential (spent, expired): forget it and pay anew. Any other failure: keep it.
      if (!(err instanceof GatewayApiError && err.status === 401))
        return fail(`${errorText(err)}; the L402 credential paid earlier is kept for your next chat`);
      deps.wallet.endL402(kept.payment_hash, "dead");
    }
  }

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
  const paymentHash = invoice.tagsObject.payment_hash ?? paid.preimage;
  const credential = `${challenge.macaroon}:${paid.preimage}`;
  deps.wallet.saveL402({ payment_hash: paymentHash, gateway, credential, amount });
  let answer;
  try {
    answer = await send(credential);
  } catch (err) {
    return fail(
      `${errorText(err)}; the invoice (${sats(amount)}) was paid and its L402 credential is kept: your next chat uses it`,
    );
  }
  deps.wallet.endL402(paymentHash, "used");
  return answered(deps, req.model, answer, paymentHash, {
    paidSat: paid.paidSat + paid.feeSat,
    text: `paid an L402 invoice of ${sats(amount)} (fee ${sats(paid.feeSat)})`,
  });
}

/** How long a paid, unused credential is worth trying again (the gateway's macaroons live 10 min). */
const KEEP_MS = 10 * 60_000;

function answered(
  deps: ToolDeps,
  model: string,
  answer: Awaited<ReturnType<ToolDeps["gateway"]["chat"]>>,
  paymentHash: string,
  paid: { paidSat: number; text: string },
): ToolResult {
  const out = {
    ...completionView(answer.completion, model),
    cost_sats: answer.costSats ?? 0,
    paid_sats: paid.paidSat,
    change_sats: 0,
    balance_sats: deps.wallet.balance().total_sats,
    request_id: paymentHash,
  };
  return ok(out, `${out.answer}\n\n[${out.model}: ${paid.text}; balance ${sats(out.balance_sats)}]`);
}
