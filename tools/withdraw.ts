/**
 * `withdraw`: pays a bolt11 invoice, or an amount to a Lightning address (LNURL-pay), from the
 * wallet through the mint's melt (NUT-05). A spend: limits and confirmation apply.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import bolt11 from "bolt11";
import * as z from "zod";
import { normalizeMintUrl } from "../src/shared/ecash/index.js";
import { LIGHTNING_ADDRESS } from "../src/shared/lnurl.js";
import { approveSpend } from "./confirm.js";
import { fail, guarded, insufficient, ok, sats, type ToolDeps } from "./support.js";

export const WithdrawInput = z.object({
  destination: z
    .string()
    .min(3)
    .max(4096)
    .describe("a bolt11 Lightning invoice (lnbc…) or a Lightning address (name@domain)"),
  amount_sats: z
    .number()
    .int()
    .min(1)
    .max(10_000_000)
    .optional()
    .describe("sats to pay; required for a Lightning address, must match an invoice's amount"),
  mint_url: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe("pay from the ecash at this mint (default: the mint holding the most)"),
});

export const WithdrawOutput = z.object({
  paid_sats: z.number().int().nonnegative(),
  fee_sats: z.number().int().nonnegative().describe("Lightning routing fee charged by the mint"),
  preimage: z.string().nullable().describe("payment proof, when the mint reports it"),
  state: z.enum(["paid", "pending"]).describe("pending: the mint is still sending the payment"),
  mint: z.string(),
  balance_sats: z.number().int().nonnegative(),
});

/** The fee the mint may reserve on top of the amount: budgeted before paying so limits hold. */
export const feeAllowance = (amountSat: number) => Math.max(2, Math.ceil(amountSat * 0.01));

/** The invoice's amount in sats, null when it has none, "invalid" when it is not a bolt11 invoice. */
export function invoiceAmount(invoice: string): number | null | "invalid" {
  try {
    const d = bolt11.decode(invoice);
    if (d.millisatoshis) return Math.ceil(Number(d.millisatoshis) / 1000);
    return d.satoshis ?? null;
  } catch {
    return "invalid";
  }
}

export function registerWithdrawTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "withdraw",
    {
      title: "Withdraw over Lightning",
      description:
        "Pays a bolt11 Lightning invoice, or amount_sats to a Lightning address (name@domain), with the " +
        "wallet's ecash through the mint. The mint may charge a small routing fee.",
      inputSchema: WithdrawInput,
      outputSchema: WithdrawOutput,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx) =>
      guarded(deps, "withdraw", async () => {
        await deps.ready();
        const destination = args.destination.trim().replace(/^lightning:/i, "");
        let amount: number;
        if (LIGHTNING_ADDRESS.test(destination)) {
          if (!args.amount_sats) return fail("paying a Lightning address needs amount_sats");
          amount = args.amount_sats;
        } else {
          const fromInvoice = invoiceAmount(destination);
          if (fromInvoice === "invalid")
            return fail(
              "destination is neither a bolt11 invoice (lnbc…) nor a Lightning address (name@domain)",
            );
          if (fromInvoice === null)
            return fail("invoices without an amount are not supported; ask for one with an amount");
          if (args.amount_sats && args.amount_sats !== fromInvoice)
            return fail(`the invoice is for ${sats(fromInvoice)}, not ${sats(args.amount_sats)}`);
          amount = fromInvoice;
        }
        const mint = args.mint_url ? normalizeMintUrl(args.mint_url) : deps.wallet.pickMint();
        const budget = amount + feeAllowance(amount);
        const short = insufficient(deps, budget, mint);
        if (short) return short;
        const pending = await approveSpend(server, deps, ctx, {
          tool: "withdraw",
          amountSat: budget,
          what: `pay ${sats(amount)} over Lightning to ${destination.length > 40 ? `${destination.slice(0, 37)}…` : destination} (up to ${sats(budget - amount)} fee)`,
          args,
        });
        if (pending) return pending;
        const r = await deps.wallet.withdraw(destination, { amountSat: amount, mint, lnurl: deps.lnurl });
        const state = r.paidSat > 0 ? ("paid" as const) : ("pending" as const);
        const out = {
          paid_sats: r.paidSat,
          fee_sats: r.feeSat,
          preimage: r.preimage,
          state,
          mint: r.mint,
          balance_sats: deps.wallet.balance().total_sats,
        };
        deps.log.info("withdrawal", { state, paid_sats: r.paidSat, fee_sats: r.feeSat, mint: r.mint });
        const text =
          state === "paid"
            ? `paid ${sats(r.paidSat)} (fee ${sats(r.feeSat)}) from ${r.mint}; balance ${sats(out.balance_sats)}`
            : `the mint is still sending the payment of ${sats(amount)}; the ecash stays reserved until it settles (it is checked again on the next start)`;
        return ok(out, text);
      }),
  );
}
