/**
 * A small OpenAI-compatible server on loopback, standing in for an upstream provider (OpenAI,
 * OpenRouter, vLLM…): `POST {base}/chat/completions` streams `chat.completion.chunk` SSE with the
 * usage chunk last when `stream_options.include_usage` asks for it (or answers one JSON object),
 * `POST {base}/embeddings` answers vectors, and a Bearer key is required as OpenAI does (401 with
 * OpenAI's error shape). Tests script its failure modes per request: 500, 429 with Retry-After,
 * hanging before the headers or after them, dying mid-stream, inflated usage, an error chunk.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface UpstreamScript {
  /** what to do with the request (default serve) */
  action?: "serve" | "status" | "hang" | "hang-after-headers" | "json";
  /** for `status`: the HTTP status (500, 429, 401…) */
  status?: number;
  /** for a 429: the Retry-After header */
  retryAfter?: string;
  /** an error body to send with `status` (default OpenAI's shape) */
  errorBody?: string;
  /** content deltas, one per SSE event */
  words?: string[];
  /** tool calls after the words (finish_reason tool_calls), each sent in two fragments */
  toolCalls?: { id: string; name: string; arguments: string }[];
  /** pause before each delta */
  delayMs?: number;
  /** usage to report (default the true counts: one token per delta, prompt 11); null: none */
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  /** destroy the connection after this many deltas */
  dieAfterWords?: number;
  /** send an `{"error": …}` chunk with this message after the deltas instead of finishing */
  errorChunk?: string;
}

export interface SeenRequest {
  path: string;
  authorization?: string;
  body: Record<string, unknown>;
}

export interface OpenAIUpstream {
  /** the base URL to configure (`…/v1`) */
  baseUrl: string;
  key: string;
  /** every request it got, in order */
  seen: SeenRequest[];
  /** scripts for the next requests, in order; afterwards `fallback` */
  queue: UpstreamScript[];
  fallback: UpstreamScript;
  /** requests being held open (`hang`), for tests that wait on it */
  hanging: number;
  /** streams the client closed before the end */
  closed: number;
  close(): Promise<void>;
}

export const UPSTREAM_WORDS = ["Hello", " from", " the", " upstream", "."];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startOpenAIUpstream(
  key: string,
  fallback: UpstreamScript = {},
): Promise<OpenAIUpstream> {
  const sockets = new Set<Socket>();
  const state: OpenAIUpstream = {
    baseUrl: "",
    key,
    seen: [],
    queue: [],
    fallback,
    hanging: 0,
    closed: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? "/", "http://upstream");
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
    } catch {
      // recorded as empty
    }
    state.seen.push({ path: url.pathname, authorization: req.headers.authorization, body });
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "Content-Type": "application/json", ...headers });
      res.end(JSON.stringify(value));
    };
    if (req.headers.authorization !== `Bearer ${key}`) {
      return json(401, {
        error: {
          message: "Incorrect API key provided.",
          type: "invalid_request_error",
          code: "invalid_api_key",
        },
      });
    }
    const script = state.queue.shift() ?? state.fallback;
    if (script.action === "hang") {
      state.hanging++;
      return; // never answers; the client gives up
    }
    if (script.action === "status") {
      const status = script.status ?? 500;
      res.writeHead(status, {
        "Content-Type": "application/json",
        ...(script.retryAfter !== undefined ? { "Retry-After": script.retryAfter } : {}),
      });
      return res.end(
        script.errorBody ??
          JSON.stringify({ error: { message: `upstream error ${status}`, type: "server_error" } }),
      );
    }
    if (url.pathname === "/v1/embeddings") {
      const input = body.input;
      const texts = typeof input === "string" ? [input] : Array.isArray(input) ? input.map(String) : [];
      return json(200, {
        object: "list",
        model: body.model,
        data: texts.map((t, index) => ({
          object: "embedding",
          index,
          embedding: [t.length, 0.5, -0.25],
        })),
        usage: { prompt_tokens: texts.join("").length, total_tokens: texts.join("").length },
      });
    }
    if (url.pathname !== "/v1/chat/completions") return json(404, { error: { message: "not found" } });

    const words = script.words ?? UPSTREAM_WORDS;
    const calls = script.toolCalls ?? [];
    const base = {
      id: "chatcmpl-upstream",
      object: "chat.completion.chunk",
      created: 1_700_000_000,
      model: body.model,
    };
    const usage =
      script.usage === undefined
        ? { prompt_tokens: 11, completion_tokens: words.length + calls.length * 2 }
        : script.usage;
    if (script.action === "json" || body.stream !== true) {
      return json(200, {
        id: "chatcmpl-upstream",
        object: "chat.completion",
        created: 1_700_000_000,
        model: body.model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: words.join(""),
              ...(calls.length
                ? {
                    tool_calls: calls.map((c) => ({
                      id: c.id,
                      type: "function",
                      function: { name: c.name, arguments: c.arguments },
                    })),
                  }
                : {}),
            },
            finish_reason: calls.length ? "tool_calls" : "stop",
          },
        ],
        ...(usage
          ? { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }
          : {}),
      });
    }
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    res.flushHeaders();
    res.on("close", () => {
      if (!res.writableFinished) state.closed++;
    });
    if (script.action === "hang-after-headers") {
      state.hanging++;
      return;
    }
    const send = (chunk: unknown) => res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    send({
      ...base,
      choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }],
    });
    for (const [i, w] of words.entries()) {
      if (script.dieAfterWords !== undefined && i >= script.dieAfterWords) {
        // Dies once what it sent has left (a crash after streaming, not a send cut short).
        await new Promise<void>((resolve) => res.write("", () => resolve()));
        await sleep(100);
        res.socket?.destroy();
        return;
      }
      if (script.delayMs) await sleep(script.delayMs);
      if (res.destroyed) return;
      send({ ...base, choices: [{ index: 0, delta: { content: w }, finish_reason: null }] });
    }
    for (const [index, c] of calls.entries()) {
      const half = Math.ceil(c.arguments.length / 2);
      send({
        ...base,
        choices: [
          {
            index: 0,
            delta: {
              tool_calls: [
                {
                  index,
                  id: c.id,
                  type: "function",
                  function: { name: c.name, arguments: c.arguments.slice(0, half) },
                },
              ],
            },
            finish_reason: null,
          },
        ],
      });
      send({
        ...base,
        choices: [
          {
            index: 0,
            delta: { tool_calls: [{ index, function: { arguments: c.arguments.slice(half) } }] },
            finish_reason: null,
          },
        ],
      });
    }
    if (script.errorChunk !== undefined) {
      send({ error: { message: script.errorChunk, type: "server_error" } });
      return res.end();
    }
    send({
      ...base,
      choices: [{ index: 0, delta: {}, finish_reason: calls.length ? "tool_calls" : "stop" }],
    });
    const include = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    if (include && usage) {
      send({
        ...base,
        choices: [],
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      });
    }
    res.write("data: [DONE]\n\n");
    res.end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return state;
}

/** A port nothing listens on (bound, then released): connection refused. */
export async function refusedBaseUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}
