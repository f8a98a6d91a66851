import { AppError } from "../../src/shared/index.js";

/**
 * Payment failures with the stable machine words of ARCHITECTURE.md §3
 * (`{"error":{"message","type","code"}}`).
 */
export type PaymentErrorType =
  | "payment_required"
  | "invalid_request"
  | "invalid_token"
  | "token_spent"
  | "foreign_mint"
  | "insufficient_balance"
  | "mint_unavailable"
  | "invalid_key"
  | "rate_limited"
  | "quota_exceeded"
  | "spend_limit"
  | "conflict";

export class PaymentError extends AppError {
  constructor(
    type: PaymentErrorType,
    message: string,
    status: number,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message, type, status);
  }
}
