/** NUT-00 error: HTTP 400 with `{detail, code}`; codes from the NUTs' error_codes table. */
export const MintErrorCode = {
  BadRequest: 0,
  ProofVerificationFailed: 10001,
  ProofsAlreadySpent: 11001,
  ProofsPending: 11002,
  OutputsAlreadySigned: 11003,
  OutputsPending: 11004,
  TransactionNotBalanced: 11005,
  AmountOutsideLimit: 11006,
  DuplicateInputs: 11007,
  DuplicateOutputs: 11008,
  MultipleUnits: 11009,
  UnitMismatch: 11010,
  AmountlessInvoiceUnsupported: 11011,
  AmountMismatch: 11012,
  UnitUnsupported: 11013,
  MaxInputsExceeded: 11014,
  MaxOutputsExceeded: 11015,
  KeysetUnknown: 12001,
  KeysetInactive: 12002,
  QuoteNotPaid: 20001,
  QuoteAlreadyIssued: 20002,
  LightningPaymentFailed: 20004,
  QuotePending: 20005,
  InvoiceAlreadyPaid: 20006,
  QuoteExpired: 20007,
  QuoteSignatureInvalid: 20008,
  QuotePubkeyRequired: 20009,
  /**
   * A NUT-10 condition not met (witness missing, bad signature or preimage). The spec's table has no
   * code for it; CDK answers 20008 and cashu-ts's integration suite expects that.
   */
  WitnessMissingOrInvalid: 20008,
} as const;
export type MintErrorCode = (typeof MintErrorCode)[keyof typeof MintErrorCode];

export class MintError extends Error {
  constructor(
    readonly code: MintErrorCode,
    readonly detail: string,
    readonly status = 400,
  ) {
    super(detail);
    this.name = "MintError";
  }

  toJSON(): { detail: string; code: number } {
    return { detail: this.detail, code: this.code };
  }
}

export class QuoteNotFoundError extends MintError {
  constructor(kind: "mint" | "melt") {
    super(MintErrorCode.BadRequest, `${kind} quote not found`, 404);
  }
}
