/**
 * A scripted gateway for provider tests: signup/register over HTTP and the node WebSocket, where the
 * test sends any frame it likes (jobs for unknown models, garbage) and reads what the node answers.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { type WebSocket, WebSocketServer } from "ws";

export interface FakeGateway {
  url: string;
  received: Record<string, unknown>[];
  registrations: Record<string, unknown>[];
  send(msg: unknown): void;
  waitFor(
    pred: (m: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startFakeGateway(): Promise<FakeGateway> {
  const received: Record<string, unknown>[] = [];
  const registrations: Record<string, unknown>[] = [];
  const app = express();
  app.use(express.json());
  app.post("/v1/gateway/signup", (_req, res) => {
    res.status(201).json({ api_key: "owlr_prov_fake" });
  });
  app.post("/v1/gateway/register", (req, res) => {
    registrations.push(req.body);
    res.status(201).json({ status: "registered" });
  });
  app.get("/v1/gateway/jobs/:id/proxy/request", (_req, res) => {
    res.json({
      model: "owlrun-test-scripted:tiny",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      max_tokens: 8,
    });
  });
  const server: Server = createServer(app);
  const wss = new WebSocketServer({ server, path: "/v1/gateway/ws" });
  let socket: WebSocket | undefined;
  const waiters: (() => void)[] = [];
  wss.on("connection", (ws) => {
    socket = ws;
    ws.on("message", (raw) => {
      received.push(JSON.parse(raw.toString()));
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    registrations,
    send: (msg) => socket?.send(typeof msg === "string" ? msg : JSON.stringify(msg)),
    async waitFor(pred, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = received.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(received)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
    close: () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        server.close(() => r());
      }),
  };
}
