/**
 * NUT-17 websocket: JSON-RPC 2.0 subscriptions to mint quotes, melt quotes and proof states.
 * The current state is sent right after subscribing, then every change.
 */
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import * as z from "zod";
import type { CashuMint } from "./mint.js";
import { PointHex, QuoteId } from "./schemas.js";

const MAX_SUBSCRIPTIONS = 100;
const MAX_FILTERS = 100;

const Kind = z.enum(["bolt11_mint_quote", "bolt11_melt_quote", "proof_state"]);
type Kind = z.infer<typeof Kind>;

const RpcRequest = z.object({
  jsonrpc: z.literal("2.0"),
  id: z.union([z.number(), z.string()]),
  method: z.enum(["subscribe", "unsubscribe"]),
  params: z.object({
    kind: Kind.optional(),
    subId: z.string().min(1).max(128),
    filters: z.array(z.string().max(256)).max(MAX_FILTERS).optional(),
  }),
});

interface Subscription {
  kind: Kind;
  filters: Set<string>;
}

function rpcError(id: unknown, code: number, message: string) {
  return JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: id ?? null });
}

/** Serves NUT-17 on `path` of an existing HTTP server. Returns a function that closes every socket. */
export function attachMintWebSocket(server: Server, mint: CashuMint, path: string): () => void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== path) return;
    wss.handleUpgrade(req, socket, head, (ws) => handleConnection(ws));
  };
  server.on("upgrade", onUpgrade);

  const handleConnection = (ws: WebSocket) => {
    const subs = new Map<string, Subscription>();
    const send = (subId: string, payload: unknown) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ jsonrpc: "2.0", method: "subscribe", params: { subId, payload } }));
    };
    const fanOut = (kind: Kind, key: string, payload: unknown) => {
      for (const [subId, s] of subs) if (s.kind === kind && s.filters.has(key)) send(subId, payload);
    };
    const onMint = (q: { quote: string }) => fanOut("bolt11_mint_quote", q.quote, q);
    const onMelt = (q: { quote: string }) => fanOut("bolt11_melt_quote", q.quote, q);
    const onProof = (p: { Y: string }) => fanOut("proof_state", p.Y, p);
    mint.on("mint_quote", onMint);
    mint.on("melt_quote", onMelt);
    mint.on("proof_state", onProof);
    // Backends without push notifications: ask about subscribed unpaid quotes once a second.
    const poll = setInterval(() => {
      for (const s of subs.values()) {
        if (s.kind !== "bolt11_mint_quote") continue;
        for (const q of s.filters) mint.getMintQuote(q).catch(() => undefined);
      }
    }, 1_000);
    poll.unref();
    ws.on("close", () => {
      clearInterval(poll);
      mint.off("mint_quote", onMint);
      mint.off("melt_quote", onMelt);
      mint.off("proof_state", onProof);
    });
    ws.on("error", () => ws.terminate());

    const currentState = async (kind: Kind, filter: string): Promise<unknown | undefined> => {
      try {
        if (kind === "bolt11_mint_quote") return await mint.getMintQuote(QuoteId.parse(filter));
        if (kind === "bolt11_melt_quote") return await mint.getMeltQuote(QuoteId.parse(filter));
        return (await mint.checkState([PointHex.parse(filter)])).states[0];
      } catch {
        return undefined; // unknown quote or bad Y: nothing to report yet
      }
    };

    ws.on("message", async (raw) => {
      let msg: z.infer<typeof RpcRequest>;
      try {
        msg = RpcRequest.parse(JSON.parse(raw.toString()));
      } catch {
        ws.send(rpcError(null, -32600, "Invalid Request"));
        return;
      }
      const { id, method, params } = msg;
      if (method === "unsubscribe") {
        subs.delete(params.subId);
        ws.send(JSON.stringify({ jsonrpc: "2.0", result: { status: "OK", subId: params.subId }, id }));
        return;
      }
      if (!params.kind || !params.filters?.length) {
        ws.send(rpcError(id, -32602, "subscribe needs kind and filters"));
        return;
      }
      if (subs.size >= MAX_SUBSCRIPTIONS) {
        ws.send(rpcError(id, -32000, "Too many subscriptions"));
        return;
      }
      subs.set(params.subId, { kind: params.kind, filters: new Set(params.filters) });
      ws.send(JSON.stringify({ jsonrpc: "2.0", result: { status: "OK", subId: params.subId }, id }));
      for (const f of params.filters) {
        const state = await currentState(params.kind, f);
        if (state !== undefined && subs.has(params.subId)) send(params.subId, state);
      }
    });
  };

  return () => {
    server.off("upgrade", onUpgrade);
    for (const c of wss.clients) c.terminate();
    wss.close();
  };
}
