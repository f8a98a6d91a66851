/**
 * The gateway's error shape (Routstr/OpenAI): `{"error":{"message","type","code"}}` with a stable
 * machine word in `type`. Everything that goes wrong on a request ends here as a 4xx/5xx JSON body.
 */
import type { NextFunction, Request, Response } from "express";
import type * as z from "zod";
import { AppError, type Logger } from "../../src/shared/index.js";
import { HoldExistsError, InsufficientBalanceError } from "../ledger/index.js";

export { ErrorBodySchema } from "../../src/shared/discovery/index.js";

export class ApiError extends AppError {
  constructor(
    status: number,
    type: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message, type, status);
  }
}

export function errorBody(
  status: number,
  type: string,
  message: string,
  extra: Record<string, unknown> = {},
) {
  return { error: { message, type, code: status, ...extra } };
}

/** How an error body is shaped: ours (OpenAI/Routstr) by default; the Ollama routes pass theirs. */
export type ErrorRenderer = (
  status: number,
  type: string,
  message: string,
  extra: Record<string, unknown>,
) => unknown;

export function sendError(res: Response, err: ApiError | AppError, render: ErrorRenderer = errorBody): void {
  if (err instanceof ApiError) for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  const extra = (err as { extra?: Record<string, unknown> }).extra ?? {};
  if (err.status === 429 && typeof extra.retry_after === "number")
    res.setHeader("Retry-After", String(extra.retry_after));
  res.status(err.status).json(render(err.status, err.type, err.message, extra));
}

/** Any error thrown by a route as the ApiError/AppError it answers with (unknown ones are logged, 500). */
export function classifyError(err: unknown, log: Logger): ApiError | AppError {
  if (err instanceof ApiError || err instanceof AppError) return err;
  if (err instanceof InsufficientBalanceError) return new ApiError(402, "insufficient_balance", err.message);
  if (err instanceof HoldExistsError)
    return new ApiError(409, "conflict", "that X-Owlrun-Request-Id is already used by another request");
  const e = err as { type?: string; status?: number };
  if (e?.type === "entity.too.large") return new ApiError(413, "request_too_large", "request body too large");
  if (e?.type === "entity.parse.failed" || e?.status === 400) {
    return new ApiError(400, "invalid_request", "malformed JSON body");
  }
  log.error("unexpected gateway error", { err: String((err as Error)?.stack ?? err) });
  return new ApiError(500, "internal_error", "internal error");
}

export function errorMiddleware(log: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    sendError(res, classifyError(err, log));
  };
}

/** Validates input against its zod shape; the first issue becomes a 400 invalid_request. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    throw new ApiError(400, "invalid_request", `invalid request: ${where}${issue?.message ?? "bad input"}`);
  }
  return r.data;
}
