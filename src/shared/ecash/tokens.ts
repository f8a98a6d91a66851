/**
 * Cashu token strings at the gateway's edge: parse what clients send (cashuA / cashuB, optional
 * `cashu:` prefix) and encode change in the same format the client used.
 */
import { getEncodedToken, getTokenMetadata, type Proof } from "@cashu/cashu-ts";
import { EcashError } from "./errors.js";

export type TokenFormat = "A" | "B";

export interface TokenInfo {
  token: string;
  format: TokenFormat;
  mint: string;
  unit: string;
  amountSat: number;
}

const MAX_TOKEN_LENGTH = 64 * 1024;

export function normalizeMintUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

/** Reads a token's mint, unit, amount and format without touching any mint. */
export function inspectToken(raw: string): TokenInfo {
  const token = raw.trim().replace(/^cashu:/i, "");
  if (token.length > MAX_TOKEN_LENGTH) throw new EcashError("invalid_token", "cashu token is too large", 413);
  const m = /^cashu([AB])[A-Za-z0-9_\-+/=]+$/.exec(token);
  if (!m) throw new EcashError("invalid_token", "not a cashu token: expected cashuA… or cashuB…", 400);
  let meta: ReturnType<typeof getTokenMetadata>;
  try {
    meta = getTokenMetadata(token);
  } catch (err) {
    throw new EcashError("invalid_token", `malformed cashu token: ${(err as Error).message}`, 400);
  }
  const amountSat = meta.amount.toNumber();
  if (!Number.isSafeInteger(amountSat) || amountSat <= 0) {
    throw new EcashError("invalid_token", "cashu token carries no value", 400);
  }
  return {
    token,
    format: m[1] as TokenFormat,
    mint: normalizeMintUrl(meta.mint),
    unit: meta.unit ?? "sat",
    amountSat,
  };
}

/** Encodes proofs as cashuB (default) or as the deprecated V3 JSON cashuA, for clients that sent cashuA. */
export function encodeToken(mint: string, proofs: Proof[], format: TokenFormat, memo?: string): string {
  if (format === "B") return getEncodedToken({ mint, proofs, unit: "sat", ...(memo ? { memo } : {}) });
  const v3 = {
    token: [
      {
        mint,
        proofs: proofs.map((p) => ({
          id: p.id,
          amount: Number(p.amount.toString()),
          secret: p.secret,
          C: p.C,
        })),
      },
    ],
    unit: "sat",
    ...(memo ? { memo } : {}),
  };
  return `cashuA${Buffer.from(JSON.stringify(v3)).toString("base64url")}`;
}
