/**
 * How the wallet reaches a mint: always its HTTP API (NUT endpoints, JSON bodies, NUT-00 errors),
 * over any fetch-compatible function. The composition root hands in one that dispatches into a
 * mint served by the same process without a socket; the wallet cannot tell the difference except
 * that it is told such a mint's signatures need no DLEQ re-check (this process made them).
 */
import {
  HttpResponseError,
  JSONInt,
  MintOperationError,
  NetworkError,
  RateLimitError,
  type RequestFn,
} from "@cashu/cashu-ts";

/** The part of `fetch` a mint client needs; global `fetch` is one. */
export type MintFetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

export interface MintTransport {
  fetch: MintFetch;
  /** the mint runs in this process: its signatures' DLEQ proofs are not verified again */
  sameProcess?: boolean;
}

const parse = (text: string): Record<string, unknown> => {
  try {
    const v = JSONInt.parse(text) as unknown;
    return v && typeof v === "object" ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
};

/** A cashu-ts request function over `fetchFn`, keeping cashu-ts's error contract (NUT-00 codes). */
export function requestVia(fetchFn: MintFetch): RequestFn {
  return async <T>(args: Parameters<RequestFn>[0]): Promise<T> => {
    const body = args.requestBody ? JSONInt.stringify(args.requestBody) : undefined;
    let res: Awaited<ReturnType<MintFetch>>;
    let text: string;
    try {
      res = await fetchFn(args.endpoint, {
        method: args.method ?? "GET",
        headers: {
          Accept: "application/json",
          ...(body ? { "Content-Type": "application/json" } : {}),
          ...args.headers,
        },
        body,
      });
      text = await res.text();
    } catch (err) {
      throw new NetworkError((err as Error)?.message ?? "Network request failed", { cause: err });
    }
    if (!res.ok) {
      const e = parse(text);
      if (res.status === 429) throw new RateLimitError("429 Too Many Requests");
      if (res.status === 400 && typeof e.code === "number" && typeof e.detail === "string")
        throw new MintOperationError(e.code, e.detail);
      const message =
        typeof e.error === "string"
          ? e.error
          : typeof e.detail === "string"
            ? e.detail
            : "HTTP request failed";
      throw new HttpResponseError(message, res.status);
    }
    if (!text) throw new HttpResponseError("bad response", res.status);
    return JSONInt.parse(text) as T;
  };
}
