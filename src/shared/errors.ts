/** Base class for errors that carry a stable machine word and an HTTP status. */
export class AppError extends Error {
  constructor(
    message: string,
    readonly type: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Raised for bad command-line or environment configuration. */
export class ConfigError extends AppError {
  constructor(message: string) {
    super(message, "invalid_config", 400);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
