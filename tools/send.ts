/**
 * `send`: takes sats out of the wallet as a cashu token to hand to someone. Whoever holds the
 * token can claim it, so it is a spend: limits and confirmation apply.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { normalizeMintUrl } from "../src/shared/ecash/index.js";
import { approveSpend } from "./confirm.js";
import { guarded, insufficient, ok, sats, type ToolDeps } from "./support.js";

export const SendInput = z.object({
  amount_sats: z.number().int().min(1).max(10_000_000).describe("sats to put in the token"),
  mint_url: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe("take the sats from this mint (default: the mint holding the most)"),
  lock_to_pubkey: z
    .string()
    .regex(/^0[23][0-9a-fA-F]{64}$/, "a 33-byte compressed public key in hex (02… or 03…)")
    .optional()
    .describe(
      "lock the token to this public key (NUT-11 P2PK): only its holder can claim it, e.g. another wallet's `owlrun-mcp wallet pubkey`",
    ),
});

export const SendOutput = z.object({
  token: z.string().describe("cashuB token; whoever holds it can claim the sats"),
  amount_sats: z.number().int().nonnegative(),
  mint: z.string(),
  balance_sats: z.number().int().nonnegative(),
  locked_to: z.string().optional().describe("the public key the token is locked to, when locked"),
});

export function registerSendTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "send",
    {
      title: "Send ecash",
      description:
        "Makes a cashu token of amount_sats from the wallet, to give to another person or agent (they claim it " +
        "with their wallet's receive). Anyone holding the token can spend it: treat it like cash. With " +
        "lock_to_pubkey only the holder of that key can claim it.",
      inputSchema: SendInput,
      outputSchema: SendOutput,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx) =>
      guarded(deps, "send", async () => {
        await deps.ready();
        const mint = args.mint_url ? normalizeMintUrl(args.mint_url) : undefined;
        const short = insufficient(deps, args.amount_sats, mint);
        if (short) return short;
        const pending = await approveSpend(server, deps, ctx, {
          tool: "send",
          amountSat: args.amount_sats,
          what: `send a ${args.amount_sats}-sat cashu token${args.lock_to_pubkey ? ` locked to ${args.lock_to_pubkey}` : ""}`,
          args,
        });
        if (pending) return pending;
        const lockTo = args.lock_to_pubkey?.toLowerCase();
        const { token, mint: from } = await deps.wallet.send(args.amount_sats, mint, "B", lockTo);
        const out = {
          token,
          amount_sats: args.amount_sats,
          mint: from,
          balance_sats: deps.wallet.balance().total_sats,
          ...(lockTo ? { locked_to: lockTo } : {}),
        };
        const locked = lockTo ? `, locked to ${lockTo}: only that key's holder can claim it` : "";
        return ok(
          out,
          `token for ${sats(args.amount_sats)} (mint ${from}${locked}); balance now ${sats(out.balance_sats)}:\n${token}`,
        );
      }),
  );
}
