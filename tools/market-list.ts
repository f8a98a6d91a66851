/** `market_list`: tasks on the marketplace, by default those taking quotes. Read-only, free. */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketTaskListSchema } from "../src/client/index.js";
import { taskLine } from "./market-support.js";
import { guarded, ok, type ToolDeps } from "./support.js";

export const MarketListInput = z.object({
  state: z
    .enum(["open", "quoted", "accepted", "delivered", "disputed", "paid", "cancelled", "expired", "all"])
    .optional()
    .describe("only tasks in this state (default: open and quoted, i.e. taking quotes)"),
  limit: z.number().int().min(1).max(100).optional().describe("at most this many, newest first (default 20)"),
});

export function registerMarketListTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_list",
    {
      title: "List marketplace tasks",
      description:
        "Tasks posted on the gateway's AI-for-hire marketplace, newest first: by default the ones taking quotes. " +
        "Each has a budget in sats and a deadline. Free; needs no account.",
      inputSchema: MarketListInput,
      outputSchema: MarketTaskListSchema,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    async ({ state, limit }) =>
      guarded(deps, "market_list", async () => {
        const tasks = await deps.gateway.marketTasks({ state, limit: limit ?? 20 });
        const text = tasks.length
          ? [`${tasks.length} task(s):`, ...tasks.map((t) => `  ${taskLine(t)}`)].join("\n")
          : `no ${state && state !== "all" ? `${state} ` : "open "}tasks on the marketplace right now`;
        return ok({ tasks }, text);
      }),
  );
}
