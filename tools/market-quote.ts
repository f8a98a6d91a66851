/**
 * `market_quote`: offers to do a task for a price (the quoting fee, $0.01 by default, comes off the
 * account balance), or changes your pending quote when quote_id is given (free).
 */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketCreatedQuoteSchema } from "../src/client/index.js";
import { keyMissing, QuoteId, quoteLine, TaskId } from "./market-support.js";
import { fail, guarded, ok, sats, type ToolDeps } from "./support.js";

export const MarketQuoteInput = z.object({
  task_id: TaskId,
  price_sats: z
    .number()
    .int()
    .min(1)
    .max(100_000_000)
    .optional()
    .describe("your price (required for a new quote)"),
  description: z.string().max(5_000).optional().describe("how and when you will do it"),
  quote_id: QuoteId.optional().describe("change this pending quote of yours instead of making a new one"),
});

export function registerMarketQuoteTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_quote",
    {
      title: "Quote on a marketplace task",
      description:
        "Offers to do a marketplace task for price_sats (quoting costs a small fee, $0.01 in sats, from your gateway " +
        "account). With quote_id, changes your pending quote instead (free). If the buyer accepts, deliver with " +
        "market_deliver before the deadline.",
      inputSchema: MarketQuoteInput,
      outputSchema: MarketCreatedQuoteSchema,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async ({ task_id, price_sats, description, quote_id }) =>
      guarded(deps, "market_quote", async () => {
        const missing = keyMissing(deps);
        if (missing) return missing;
        if (quote_id) {
          if (price_sats === undefined && description === undefined)
            return fail("to change a quote, give price_sats or description");
          const q = await deps.gateway.marketEditQuote(task_id, quote_id, { price_sats, description });
          return ok({ ...q, fee_sats: 0, paid_with: "free" }, `changed ${quoteLine(q)}`);
        }
        if (price_sats === undefined) return fail("a new quote needs price_sats");
        const q = await deps.gateway.marketQuote(task_id, { price_sats, description });
        return ok(q, `sent ${quoteLine(q)} (fee ${sats(q.fee_sats)}); the buyer decides`);
      }),
  );
}
