export class LedgerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LedgerError";
  }
}

export class InsufficientBalanceError extends LedgerError {
  constructor(
    readonly account: string,
    readonly haveMsat: number,
    readonly needMsat?: number,
  ) {
    super(
      `insufficient balance on ${account}: ${haveMsat} msat${needMsat !== undefined ? `, need ${needMsat}` : ""}`,
    );
    this.name = "InsufficientBalanceError";
  }
}

export class HoldStateError extends LedgerError {
  constructor(holdId: string, state: string) {
    super(`hold ${holdId} is ${state}`);
    this.name = "HoldStateError";
  }
}

/** A hold id that is already taken (a client-chosen request id sent twice). */
export class HoldExistsError extends LedgerError {
  constructor(readonly holdId: string) {
    super(`hold ${holdId} already exists`);
    this.name = "HoldExistsError";
  }
}
