/**
 * `market_collect`: pays market earnings (the gateway account balance) to a bolt11 invoice through
 * the gateway's mint. Money leaves: limits and confirmation apply.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { MarketCollectSchema } from "../src/client/index.js";
import { approveSpend } from "./confirm.js";
import { keyMissing } from "./market-support.js";
import { fail, guarded, ok, sats, type ToolDeps } from "./support.js";
import { feeAllowance, invoiceAmount } from "./withdraw.js";

export const MarketCollectInput = z.object({
  invoice: z.string().min(10).max(4096).describe("a bolt11 Lightning invoice (lnbc…) with an amount"),
  amount_sats: z
    .number()
    .int()
    .min(1)
    .max(100_000_000)
    .optional()
    .describe("must match the invoice's amount"),
});

export function registerMarketCollectTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "market_collect",
    {
      title: "Collect market earnings over Lightning",
      description:
        "Pays from your gateway account balance (market earnings) to a bolt11 Lightning invoice, through the " +
        "gateway's mint; the routing fee also comes off the balance. To move it into this wallet, make the invoice " +
        "with topup and claim it with topup_status.",
      inputSchema: MarketCollectInput,
      outputSchema: MarketCollectSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx) =>
      guarded(deps, "market_collect", async () => {
        const missing = keyMissing(deps);
        if (missing) return missing;
        const invoice = args.invoice.trim().replace(/^lightning:/i, "");
        const amount = invoiceAmount(invoice);
        if (amount === "invalid") return fail("that is not a bolt11 invoice (lnbc…)");
        if (amount === null)
          return fail("invoices without an amount are not supported; ask for one with an amount");
        if (args.amount_sats && args.amount_sats !== amount)
          return fail(`the invoice is for ${sats(amount)}, not ${sats(args.amount_sats)}`);
        const budget = amount + feeAllowance(amount);
        const pending = await approveSpend(server, deps, ctx, {
          tool: "market_collect",
          amountSat: budget,
          what: `pay ${sats(amount)} from your gateway account to a Lightning invoice (up to ${sats(budget - amount)} fee)`,
          args,
        });
        if (pending) return pending;
        const r = await deps.gateway.marketCollect({ invoice, amount_sats: amount });
        deps.wallet.recordSpend("market_collect", r.amount_sats + (r.fee_sats ?? 0));
        const text =
          r.state === "paid"
            ? `paid ${sats(r.amount_sats)} (fee ${sats(r.fee_sats ?? 0)}); gateway balance ${sats(r.balance_sats)}`
            : `the mint is still sending ${sats(r.amount_sats)}; it is set aside from your balance until it settles`;
        return ok(r, text);
      }),
  );
}
