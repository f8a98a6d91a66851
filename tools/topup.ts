/**
 * `topup`: a Lightning invoice from the mint (NUT-04) as text and as a QR code (PNG image
 * content). Once it is paid, `topup_status` mints the ecash into the wallet.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import QRCode from "qrcode";
import * as z from "zod";
import { normalizeMintUrl } from "../src/shared/ecash/index.js";
import { guarded, ok, sats, type ToolDeps } from "./support.js";

export const TopupInput = z.object({
  amount_sats: z.number().int().min(1).max(10_000_000).describe("sats to add to the wallet"),
  mint_url: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe("Cashu mint to mint at (default: the first mint the gateway trusts)"),
});

export const TopupOutput = z.object({
  quote: z.string().describe("pass this to topup_status"),
  invoice: z.string().describe("bolt11 Lightning invoice to pay"),
  amount_sats: z.number().int().nonnegative(),
  mint: z.string(),
  expires_at: z.string().nullable().describe("ISO time the invoice expires"),
});

/** A QR code of the invoice as a base64 PNG (uppercase bech32 makes a smaller code). */
export async function invoiceQrPng(invoice: string): Promise<string> {
  const png = await QRCode.toBuffer(`lightning:${invoice.toUpperCase()}`, {
    type: "png",
    errorCorrectionLevel: "M",
    margin: 2,
    scale: 4,
  });
  return png.toString("base64");
}

export function registerTopupTool(server: McpServer, deps: ToolDeps): void {
  server.registerTool(
    "topup",
    {
      title: "Top up with Lightning",
      description:
        "Creates a Lightning invoice for amount_sats at the mint. Show it to the user (text and QR image) " +
        "to pay; then call topup_status with the quote (wait: true waits for the payment) to mint the ecash.",
      inputSchema: TopupInput,
      outputSchema: TopupOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async ({ amount_sats, mint_url }) =>
      guarded(deps, "topup", async () => {
        await deps.ready();
        const mint = normalizeMintUrl(mint_url ?? (await deps.mintUrl()));
        const q = await deps.wallet.topup(mint, amount_sats);
        const out = {
          quote: q.quote,
          invoice: q.request,
          amount_sats,
          mint,
          expires_at: q.expiry ? new Date(q.expiry * 1000).toISOString() : null,
        };
        const text = [
          `Pay this Lightning invoice to add ${sats(amount_sats)} to the wallet (mint ${mint}):`,
          q.request,
          out.expires_at ? `expires ${out.expires_at}` : "",
          `then call topup_status with quote "${q.quote}" (wait: true waits for the payment).`,
        ]
          .filter(Boolean)
          .join("\n");
        return ok(out, text, [{ type: "image", data: await invoiceQrPng(q.request), mimeType: "image/png" }]);
      }),
  );
}
