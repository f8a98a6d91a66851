/**
 * The floor under bench/relay.ts: a bare relay on this box, with no gateway logic. It speaks just
 * enough of the node protocol for the same load child (bench/relay-load.ts) and topology: signup,
 * register and body pull answer fixed JSON, the node's WebSocket is a `ws` server with the gateway's
 * options, a client's POST offers the job to the node, and each proxy_chunk frame is parsed (the
 * envelope must be read to find the job) and its SSE text written to that client with one chunked
 * `res.write` per completed event (one per token). No auth, no payment, no checks, no counting:
 * what it costs is what the I/O alone costs here, and the gateway's figure minus this is its own.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { MAX_FRAME_BYTES } from "../gateway/routing/index.js";

export interface FloorRelay {
  url: string;
  server: import("node:http").Server;
  close(): Promise<void>;
}

/** `model`: what the job offers name (the load child's node serves only its own model). */
export async function startFloorRelay(model: string): Promise<FloorRelay> {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
  let node: WebSocket | undefined;
  const jobs = new Map<string, { res: ServerResponse; pending: string }>();

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!;
    req.resume();
    req.on("end", () => {
      if (path === "/v1/gateway/signup") return json(res, 201, { api_key: "owlr_prov_floor" });
      if (path === "/v1/gateway/register") return json(res, 201, { ok: true });
      if (path.endsWith("/proxy/request")) return json(res, 200, { messages: [] });
      if (path === "/v1/chat/completions" && node) {
        const id = randomUUID();
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        res.flushHeaders();
        jobs.set(id, { res, pending: "" });
        res.on("close", () => jobs.delete(id));
        node.send(
          JSON.stringify({
            type: "job",
            job_id: id,
            model,
            vram_required_mb: 0,
            buyer_region: "",
            free_tier: false,
          }),
        );
        return;
      }
      json(res, 404, { error: "not here" });
    });
  };

  const server = createServer(onRequest);
  server.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      node = ws;
      ws.on("message", (raw) => {
        const msg = JSON.parse(String(raw)) as { type: string; job_id?: string; data?: string };
        const job = msg.job_id ? jobs.get(msg.job_id) : undefined;
        if (!job) return;
        if (msg.type === "proxy_chunk") {
          job.pending += msg.data ?? "";
          const end = job.pending.lastIndexOf("\n\n");
          if (end >= 0) {
            job.res.write(job.pending.slice(0, end + 2));
            job.pending = job.pending.slice(end + 2);
          }
        } else if (msg.type === "proxy_done") {
          jobs.delete(msg.job_id!);
          job.res.end(job.pending);
        }
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
