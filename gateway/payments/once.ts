/**
 * A request's payment ends exactly once (settled or refunded); the ledger refuses a second end of
 * a hold anyway, and this catches the programming error before any money code runs.
 */
export abstract class EndsOnce {
  private ended = false;

  protected end(): void {
    if (this.ended) throw new Error("payment already ended");
    this.ended = true;
  }
}
