/**
 * Holds the gateway's own routes until restart repair has finished. The server listens before the
 * repair (the bundled mint's URL depends on the port, and the repair calls that mint in-process),
 * but on SQLite the repair also sees this process's live requests' counter ranges, reserved proofs
 * and claim records: a paid request served meanwhile could lose its value or be refunded and
 * served. Requests wait for the repair up to a bound, then get a 503 with Retry-After.
 */
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "../../src/shared/index.js";
import { anthropicError } from "./anthropic/index.js";
import { ApiError, type ErrorRenderer, errorBody, sendError } from "./errors.js";
import { isOllamaPath, ollamaError } from "./ollama-meta.js";

export const RECOVERY_WAIT_MS = 15_000;

export interface RecoveryGate {
  /** express middleware: passes at once when the repair is over, else waits for it (bounded) */
  middleware(req: Request, res: Response, next: NextFunction): void;
  /** runs the repair; the gate opens when it ends, also when it throws (the error goes on) */
  run<T>(repair: () => Promise<T>): Promise<T>;
}

/** The error shape of the route family the client called. */
function rendererFor(path: string): ErrorRenderer {
  if (isOllamaPath(path)) return ollamaError;
  if (path === "/v1/messages" || path.startsWith("/v1/messages/")) return anthropicError;
  return errorBody;
}

export function recoveryGate(log: Logger, waitMs = RECOVERY_WAIT_MS): RecoveryGate {
  let open = false;
  let opened!: () => void;
  const whenOpen = new Promise<void>((resolve) => (opened = resolve));
  return {
    middleware(req, res, next) {
      if (open) return next();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), waitMs);
        timer.unref();
      });
      void Promise.race([whenOpen.then(() => false), timedOut]).then((late) => {
        clearTimeout(timer);
        if (!late) return next();
        const retryAfter = Math.ceil(waitMs / 1000);
        sendError(
          res,
          new ApiError(503, "recovering", "the gateway is finishing its restart repair; retry shortly", {
            "Retry-After": String(retryAfter),
          }),
          rendererFor(req.path),
        );
      });
    },
    async run(repair) {
      try {
        return await repair();
      } catch (err) {
        // The caller sees the error as before the gate; requests are no longer held for it.
        log.error("restart recovery failed; serving requests anyway", { err: String(err) });
        throw err;
      } finally {
        open = true;
        opened();
      }
    },
  };
}
