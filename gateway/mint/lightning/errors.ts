/** A Lightning backend answered something we cannot use (bad status, unexpected JSON, unreachable). */
export class LightningBackendError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LightningBackendError";
  }
}
