import { AppError } from "../errors.js";

/** Failures handling ecash, with the stable machine words the gateway and the MCP tools report. */
export type EcashErrorType =
  "invalid_token" | "token_spent" | "foreign_mint" | "mint_unavailable" | "insufficient_funds";

export class EcashError extends AppError {
  constructor(type: EcashErrorType, message: string, status: number) {
    super(message, type, status);
  }
}
