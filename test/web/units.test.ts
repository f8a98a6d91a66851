/** The page's pure parts, in Node: markdown sanitising of untrusted answers and the SSE reader. */
import { describe, expect, it } from "vitest";
import { renderMarkdown } from "../../web/markdown.js";
import { sseEvents } from "../../web/stream.js";
import { createServer } from "node:http";
import express from "express";
import { errorMiddleware } from "../../gateway/api/errors.js";
import { contentSecurityPolicy, webRouter } from "../../gateway/api/web.js";
import { closeServer, createLogger, listen } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";

const streamOf = (...parts: string[]) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) c.enqueue(new TextEncoder().encode(p));
      c.close();
    },
  });

async function collect(body: ReadableStream<Uint8Array>) {
  const out: unknown[] = [];
  for await (const e of sseEvents(body)) out.push(e);
  return out;
}

describe("markdown of answers", () => {
  it("renders markdown but shows raw HTML as text", () => {
    const html = renderMarkdown(
      "**bold** and `code`\n\n<script>alert(1)</script><img src=x onerror=alert(1)>",
    );
    expect(html).toContain("<strong>bold</strong>");
    expect(html).toContain("<code>code</code>");
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain("&lt;script&gt;");
  });

  it("keeps http(s) links, drops javascript: links and turns images into links", () => {
    expect(renderMarkdown("[ok](https://example.com)")).toContain('<a href="https://example.com"');
    const bad = renderMarkdown("[click](javascript:alert(1))");
    expect(bad).not.toContain("href");
    expect(bad).toContain("click");
    const img = renderMarkdown("![cat](https://example.com/cat.png)");
    expect(img).not.toContain("<img");
    expect(img).toContain('<a href="https://example.com/cat.png"');
  });
});

describe("SSE reader", () => {
  it("joins events split across chunks and reads past the usage chunk to the change and [DONE]", async () => {
    const events = await collect(
      streamOf(
        'data: {"choices":[{"delta":{"content":"Hel',
        'lo"}}]}\n\ndata: {"choices":[],"usage":{"cost":{"sats":2}}}\r\n\r\n',
        ': a comment\n\ndata: {"type":"cashu_change","token":"cashuBxyz","change_sats":48}\n\ndata: [DONE]\n\n',
      ),
    );
    expect(events).toEqual([
      { choices: [{ delta: { content: "Hello" } }] },
      { choices: [], usage: { cost: { sats: 2 } } },
      { type: "cashu_change", token: "cashuBxyz", change_sats: 48 },
      "[DONE]",
    ]);
  });

  it("yields a last event without its blank line and skips data that is not JSON", async () => {
    expect(await collect(streamOf('data: not json\n\ndata: {"a":1}'))).toEqual([{ a: 1 }]);
  });
});

describe("Content-Security-Policy of the page", () => {
  it("allows this origin and the trusted mints (REST and websocket) only", () => {
    const csp = contentSecurityPolicy(["https://mint.example.com/", "http://127.0.0.1:3338"]);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain(
      "connect-src 'self' https://mint.example.com wss://mint.example.com http://127.0.0.1:3338 ws://127.0.0.1:3338",
    );
    expect(csp).not.toMatch(/unsafe|\*/);
  });
});

describe("the page's route", () => {
  it("answers a JSON 404 naming the fix when the bundle was not built", async () => {
    const app = express();
    app.use(webRouter({ dir: tempDir(), mints: () => [] }));
    app.use(errorMiddleware(createLogger("test")));
    const server = createServer(app);
    const url = await listen(server, "127.0.0.1", 0);
    try {
      const res = await fetch(`${url}/`);
      expect(res.status).toBe(404);
      const body = (await res.json()) as any;
      expect(body.error.type).toBe("not_found");
      expect(body.error.message).toMatch(/npm run build/);
    } finally {
      await closeServer(server);
    }
  });
});
