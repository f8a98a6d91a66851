/**
 * `market_accept`: the buyer accepts a quote; its price moves from the gateway account into escrow
 * until the buyer confirms the delivery (or the deadline passes and it comes back). A spend: limits
 * and confirmation apply.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketTaskSchema } from "../src/client/index.js";
import { approveSpend } from "./confirm.js";
import { keyMissing, QuoteId, TaskId, taskText } from "./market-support.js";
import { fail, guarded, ok, sats, type ToolDeps } from "./support.js";

export const MarketAcceptInput = z.object({ task_id: TaskId, quote_id: QuoteId });

export function registerMarketAcceptTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_accept",
    {
      title: "Accept a quote (escrow)",
      description:
        "Accepts a worker's quote on your task: the quoted price is locked in escrow from your gateway account. " +
        "It goes to the worker when you confirm the delivery (market_confirm), or after the review window unless " +
        "you dispute; it comes back if nothing is delivered by the deadline.",
      inputSchema: MarketAcceptInput,
      outputSchema: MarketTaskSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx) =>
      guarded(deps, "market_accept", async () => {
        const missing = keyMissing(deps);
        if (missing) return missing;
        const quote = (await deps.gateway.marketTask(args.task_id)).quotes?.find(
          (q) => q.id === args.quote_id,
        );
        if (!quote)
          return fail(
            `no quote ${args.quote_id} among your task's quotes; market_get ${args.task_id} lists them`,
          );
        const pending = await approveSpend(server, deps, ctx, {
          tool: "market_accept",
          amountSat: quote.price_sats,
          what: `lock ${sats(quote.price_sats)} in escrow for task ${args.task_id}`,
          args,
        });
        if (pending) return pending;
        const task = await deps.gateway.marketAccept(args.task_id, args.quote_id, quote.price_sats);
        deps.wallet.recordSpend("market_escrow", quote.price_sats);
        return ok(task, `accepted; ${sats(quote.price_sats)} locked in escrow:\n${taskText(task)}`);
      }),
  );
}
