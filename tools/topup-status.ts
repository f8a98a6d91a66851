/**
 * `topup_status`: mints a paid top-up into the wallet. With `wait: true` it polls until the
 * invoice is paid (or the timeout), sending progress notifications meanwhile.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { guarded, ok, progress, sats, type ToolDeps } from "./support.js";

export const TopupStatusInput = z.object({
  quote: z.string().min(1).max(200).describe("the quote id returned by topup"),
  wait: z.boolean().optional().describe("wait for the payment instead of answering at once"),
  timeout_seconds: z
    .number()
    .int()
    .min(1)
    .max(600)
    .optional()
    .describe("how long to wait with wait: true (default 120)"),
});

export const TopupStatusOutput = z.object({
  quote: z.string(),
  state: z.enum(["pending", "claimed"]).describe("claimed: the ecash is in the wallet"),
  amount_sats: z.number().int().nonnegative(),
  mint: z.string(),
  balance_sats: z.number().int().nonnegative(),
});

const POLL_MS = 1000;

export function registerTopupStatusTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "topup_status",
    {
      title: "Claim a paid top-up",
      description:
        "Checks a top-up: once its Lightning invoice is paid, mints the ecash into the wallet (state claimed). " +
        "With wait: true it waits for the payment (progress notifications meanwhile). Safe to call again.",
      inputSchema: TopupStatusInput,
      outputSchema: TopupStatusOutput,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    async ({ quote, wait, timeout_seconds }, ctx) =>
      guarded(deps, "topup_status", async () => {
        await deps.ready();
        const timeoutMs = (timeout_seconds ?? 120) * 1000;
        const started = Date.now();
        let status = await deps.wallet.topupStatus(quote);
        for (let round = 1; wait && status.state === "pending"; round++) {
          const elapsed = Date.now() - started;
          if (elapsed >= timeoutMs || ctx.mcpReq.signal.aborted) break;
          await progress(
            ctx,
            Math.floor(elapsed / 1000),
            Math.ceil(timeoutMs / 1000),
            `waiting for the Lightning payment of ${sats(status.amountSat)}`,
          );
          await new Promise((r) => setTimeout(r, Math.min(POLL_MS, timeoutMs - elapsed)));
          status = await deps.wallet.topupStatus(quote);
        }
        const out = {
          quote,
          state: status.state,
          amount_sats: status.amountSat,
          mint: status.mint,
          balance_sats: deps.wallet.balance().total_sats,
        };
        if (status.state === "claimed") {
          deps.log.info("top-up claimed", { quote, sats: status.amountSat, mint: status.mint });
          await progress(ctx, Math.ceil(timeoutMs / 1000), Math.ceil(timeoutMs / 1000), "paid");
          return ok(
            out,
            `claimed ${sats(status.amountSat)} from ${status.mint}; balance ${sats(out.balance_sats)}`,
          );
        }
        return ok(
          out,
          `not paid yet: the invoice for ${sats(status.amountSat)} is still open` +
            (wait ? ` after ${Math.round((Date.now() - started) / 1000)} s` : "") +
            "; call topup_status again (wait: true waits for it)",
        );
      }),
  );
}
