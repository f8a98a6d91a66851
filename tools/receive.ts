/** `receive`: swaps a cashu token into the wallet (afterwards the sender can no longer spend it). */
import type { McpServer } from "@modelcontextprotocol/server";
import * as z from "zod";
import { guarded, ok, sats, type ToolDeps } from "./support.js";

export const ReceiveInput = z.object({
  token: z.string().min(10).max(65_536).describe("a cashu token (cashuA… or cashuB…)"),
  preimage: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "32 bytes in hex")
    .optional()
    .describe("for an HTLC-locked token (NUT-14): the preimage of its hash lock"),
});

export const ReceiveOutput = z.object({
  received_sats: z.number().int().nonnegative(),
  mint: z.string(),
  balance_sats: z.number().int().nonnegative(),
});

export function registerReceiveTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "receive",
    {
      title: "Receive ecash",
      description:
        "Claims a cashu token (cashuA… or cashuB…) into the local wallet by swapping it at its mint. Tokens " +
        "locked to this wallet's public key (P2PK) are signed for; HTLC tokens need `preimage`; tokens locked " +
        "to someone else are refused before anything is sent to the mint.",
      inputSchema: ReceiveInput,
      outputSchema: ReceiveOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async ({ token, preimage }) =>
      guarded(deps, "receive", async () => {
        await deps.ready();
        const r = await deps.wallet.receive(token, { preimage });
        const out = {
          received_sats: r.amountSat,
          mint: r.mint,
          balance_sats: deps.wallet.balance().total_sats,
        };
        return ok(out, `received ${sats(r.amountSat)} from ${r.mint}; balance ${sats(out.balance_sats)}`);
      }),
  );
}
