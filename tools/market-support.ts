/**
 * What the market_* tools share: they act for an account at the gateway (its key is the market
 * identity), so each one that needs it first checks a key is configured and otherwise says how to
 * get one; and short texts for tasks and quotes.
 */
import type { CallToolResult } from "@modelcontextprotocol/server";
import * as z from "zod";
import type { MarketQuote, MarketTask } from "../src/client/index.js";
import { fail, sats, type ToolDeps } from "./support.js";

export const TaskId = z
  .string()
  .min(1)
  .max(100)
  .describe("the task's id (from market_list or market_create)");
export const QuoteId = z
  .string()
  .min(1)
  .max(100)
  .describe("the quote's id (from market_get or market_quote)");

/** Null when an account key is configured; otherwise the way to set one up. */
export function keyMissing(deps: ToolDeps): CallToolResult | null {
  if (deps.gateway.hasApiKey) return null;
  const gw = deps.gateway.baseUrl;
  return fail(
    "the market tools act for an account at the gateway, and this MCP server has no account key. " +
      `Register one: \`curl -X POST ${gw}/v1/auth/register\` (answers {"api_key":"rc_…"}); fund it with a ` +
      `cashu token (make one with the send tool): \`curl -X POST ${gw}/v1/balance/topup -H "Authorization: Bearer rc_…" ` +
      `-H "content-type: application/json" -d '{"token":"cashuB…"}'\`; then set OWLRUN_GATEWAY_API_KEY=rc_… ` +
      "(or --gateway-api-key rc_…) for this MCP server and restart it.",
  );
}

export function taskLine(t: MarketTask): string {
  const price = t.price_sats !== null ? `, price ${sats(t.price_sats)}` : "";
  return `${t.id} [${t.state}] "${t.title}": budget ${sats(t.budget_sats)}${price}, ${t.quotes_count} quote(s), deadline ${t.deadline_at}`;
}

export const quoteLine = (q: MarketQuote) =>
  `quote ${q.id} [${q.state}]${q.mine ? " (yours)" : ""}: ${sats(q.price_sats)}${q.description ? ` — ${q.description}` : ""}`;

/** A task in a few lines: what it is, where its money is, the caller's part and what comes next. */
export function taskText(t: MarketTask): string {
  const lines = [taskLine(t)];
  if (t.description)
    lines.push(`  ${t.description.length > 500 ? `${t.description.slice(0, 500)}…` : t.description}`);
  if (t.role) lines.push(`  you are the ${t.role}`);
  if (t.escrow_sats > 0) lines.push(`  ${sats(t.escrow_sats)} locked in escrow`);
  else if (t.escrow === "released") lines.push(`  escrow released to the worker`);
  else if (t.escrow === "refunded") lines.push(`  escrow refunded to the buyer`);
  for (const q of t.quotes ?? []) lines.push(`  ${quoteLine(q)}`);
  if (t.delivery)
    lines.push(
      `  delivered ${t.delivery.filename} (${t.delivery.size_bytes} bytes, sha256 ${t.delivery.sha256})` +
        (t.review_ends_at && t.state === "delivered"
          ? `; released to the worker at ${t.review_ends_at} unless disputed`
          : ""),
    );
  if (t.dispute_reason) lines.push(`  disputed: ${t.dispute_reason}`);
  return lines.join("\n");
}
