/**
 * `market_confirm`: ends your side of a task. The buyer confirms a delivery (the escrow goes to the
 * worker) or disputes it (no automatic release); the buyer cancels a task nobody was hired for, the
 * hired worker cancels one they cannot do (the escrow goes back to the buyer).
 */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketTaskSchema } from "../src/client/index.js";
import { keyMissing, TaskId, taskText } from "./market-support.js";
import { fail, guarded, ok, type ToolDeps } from "./support.js";

export const MarketConfirmInput = z.object({
  task_id: TaskId,
  action: z
    .enum(["confirm", "dispute", "cancel"])
    .optional()
    .describe(
      "confirm (default): accept the delivery and release the escrow to the worker; dispute: object to it within " +
        "the review window; cancel: the buyer withdraws an unassigned task, or the hired worker gives it back (refund)",
    ),
  reason: z.string().min(1).max(2_000).optional().describe("why you dispute (required for dispute)"),
});

const DONE = { confirm: "confirmed", dispute: "disputed", cancel: "cancelled" } as const;

export function registerMarketConfirmTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_confirm",
    {
      title: "Confirm, dispute or cancel a task",
      description:
        "Settles a marketplace task. As the buyer: confirm the delivery (releases the escrow to the worker, final), " +
        "or dispute it before the review window ends. cancel: the buyer withdraws a task no quote was accepted for, " +
        "or the hired worker gives the task back and the escrow returns to the buyer.",
      inputSchema: MarketConfirmInput,
      outputSchema: MarketTaskSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async ({ task_id, action = "confirm", reason }) =>
      guarded(deps, "market_confirm", async () => {
        const missing = keyMissing(deps);
        if (missing) return missing;
        if (action === "dispute" && !reason) return fail("a dispute needs a reason");
        const task = await deps.gateway.marketClose(task_id, action, reason);
        return ok(task, `${DONE[action]}:\n${taskText(task)}`);
      }),
  );
}
