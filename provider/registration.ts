/**
 * Registration over HTTP (`POST /v1/gateway/register`) and the reconnect backoff: what a node
 * announces, how a refusal is told from a failure worth retrying, and the gateway's error text.
 */
import type { RegisterBody } from "./protocol.js";

/** Exponential backoff with equal jitter: half the step fixed, half random. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const step = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + random() * (step / 2));
}

export class RegistrationError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
  /** a refusal that retrying will not fix */
  get fatal(): boolean {
    return [400, 401, 403, 404].includes(this.status);
  }
}

/** The message of a gateway error body: `{"error":{"message"}}`, `{"error":"…"}` or text. */
export async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const j = JSON.parse(text) as { error?: string | { message?: string }; message?: string };
    const e = typeof j.error === "string" ? j.error : (j.error?.message ?? j.message);
    if (e) return String(e).slice(0, 300);
  } catch {
    // not JSON
  }
  return text.slice(0, 300) || `HTTP ${res.status}`;
}

/** Posts the registration; throws RegistrationError when the gateway refuses it. */
export async function postRegistration(
  gateway: string,
  apiKey: string,
  body: RegisterBody,
  timeoutMs: number,
): Promise<void> {
  const res = await fetch(`${gateway}/v1/gateway/register`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) {
    throw new RegistrationError(
      `the gateway refused registration (HTTP ${res.status}): ${await errorText(res)}`,
      res.status,
    );
  }
  await res.body?.cancel();
}
