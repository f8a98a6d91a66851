/** `balance`: spendable ecash per mint, what was spent today and the spend limits. Read-only. */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { balanceView, guarded, ok, sats, type ToolDeps } from "./support.js";

export const BalanceOutput = z.object({
  total_sats: z.number().int().nonnegative().describe("spendable sats across all mints"),
  mints: z
    .array(z.object({ mint: z.string(), sats: z.number().int().nonnegative() }))
    .describe("sats held per mint"),
  spent_today_sats: z.number().int().nonnegative(),
  limits: z.object({
    per_call_sats: z.number().int().nonnegative(),
    per_day_sats: z.number().int().nonnegative(),
  }),
  open_requests: z
    .number()
    .int()
    .nonnegative()
    .describe("paid chat requests whose change is still being settled"),
  lock_pubkey: z
    .string()
    .describe(
      "this wallet's public key: senders lock ecash to it (send's lock_to_pubkey) so only this wallet can receive it",
    ),
});

export function registerBalanceTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "balance",
    {
      title: "Wallet balance",
      description:
        "Spendable ecash in the local Cashu wallet, in sats, per mint; also what was spent today and the spend limits.",
      inputSchema: z.object({}),
      outputSchema: BalanceOutput,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async () =>
      guarded(deps, "balance", async () => {
        await deps.ready();
        const view = balanceView(deps.wallet);
        const out = {
          ...view,
          spent_today_sats: deps.wallet.spentToday(),
          limits: {
            per_call_sats: deps.wallet.limits.perCallSat,
            per_day_sats: deps.wallet.limits.perDaySat,
          },
          open_requests: deps.wallet.openRequests().length,
          lock_pubkey: deps.wallet.lockPubkey(),
        };
        const lines = [
          `balance: ${sats(out.total_sats)}`,
          ...view.mints.map((m) => `  ${m.mint}: ${sats(m.sats)}`),
          `spent today: ${out.spent_today_sats} of ${sats(out.limits.per_day_sats)} (per call: up to ${sats(out.limits.per_call_sats)} without confirmation)`,
        ];
        if (out.total_sats === 0)
          lines.push("the wallet is empty: use topup (Lightning) or receive (a cashu token)");
        if (out.open_requests > 0)
          lines.push(`${out.open_requests} paid request(s) still settling their change`);
        return ok(out, lines.join("\n"));
      }),
  );
}
