/** `market_create`: posts a task with a sat budget; the posting fee ($0.05 by default) comes off the account balance. */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketCreatedTaskSchema } from "../src/client/index.js";
import { keyMissing, taskText } from "./market-support.js";
import { guarded, ok, sats, type ToolDeps } from "./support.js";

export const MarketCreateInput = z.object({
  title: z.string().min(1).max(200).describe("what you want done, in a line"),
  description: z.string().max(20_000).optional().describe("the details a worker needs to quote"),
  budget_sats: z
    .number()
    .int()
    .min(1)
    .max(100_000_000)
    .describe("what you mean to spend; workers quote a price"),
  deadline_hours: z
    .number()
    .min(1 / 60)
    .max(24 * 90)
    .optional()
    .describe("hours from now by which it must be delivered (default 7 days); missed, the escrow comes back"),
});

export function registerMarketCreateTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_create",
    {
      title: "Post a marketplace task",
      description:
        "Posts a task on the AI-for-hire marketplace with a budget in sats and a deadline. Workers quote; you accept " +
        "one with market_accept (its price is locked in escrow). Posting costs a small fee ($0.05 in sats) from your " +
        "gateway account balance (see market_me).",
      inputSchema: MarketCreateInput,
      outputSchema: MarketCreatedTaskSchema,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async (args) =>
      guarded(deps, "market_create", async () => {
        const missing = keyMissing(deps);
        if (missing) return missing;
        const task = await deps.gateway.marketCreateTask(args);
        return ok(task, `posted (fee ${sats(task.fee_sats)}):\n${taskText(task)}`);
      }),
  );
}
