/**
 * NUT-17 websocket: JSON-RPC 2.0 subscriptions to mint quotes, melt quotes and proof states.
 * The current state is sent right after subscribing, then every change. When several processes
 * share the mint's state (PostgreSQL), changes made elsewhere raise no event here: each subscribed
 * filter's state is then read once a second and sent when it differs from the last one sent.
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

/** What a notification says has changed: the state (and, for a melt, whether change is there). */
function stateOf(payload: unknown): string {
  const p = payload as { state?: string; change?: unknown[] };
  return `${p.state ?? ""}/${p.change ? p.change.length : ""}`;
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
    /** `${subId}\n${filter}` → the state last sent (only kept when the state is shared) */
    const lastSent = new Map<string, unknown>();
    const shared = mint.store.shared;
    const send = (subId: string, payload: unknown, filter?: string) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (shared && filter !== undefined) lastSent.set(`${subId}\n${filter}`, stateOf(payload));
      ws.send(JSON.stringify({ jsonrpc: "2.0", method: "subscribe", params: { subId, payload } }));
    };
    const fanOut = (kind: Kind, key: string, payload: unknown) => {
      for (const [subId, s] of subs) if (s.kind === kind && s.filters.has(key)) send(subId, payload, key);
    };
    const onMint = (q: { quote: string }) => fanOut("bolt11_mint_quote", q.quote, q);
    const onMelt = (q: { quote: string }) => fanOut("bolt11_melt_quote", q.quote, q);
    const onProof = (p: { Y: string }) => fanOut("proof_state", p.Y, p);
    mint.on("mint_quote", onMint);
    mint.on("melt_quote", onMelt);
    mint.on("proof_state", onProof);
    // Backends without push notifications: ask about subscribed unpaid quotes once a second.
    const poll = setInterval(() => {
      if (shared) {
        void pollShared();
        return;
      }
      for (const s of subs.values()) {
        if (s.kind !== "bolt11_mint_quote") continue;
        for (const q of s.filters) mint.getMintQuote(q).catch(() => undefined);
      }
    }, 1_000);
    let polling = false;
    const pollShared = async () => {
      if (polling) return; // a slow round is not stacked on
      polling = true;
      try {
        for (const [subId, s] of [...subs]) {
          for (const f of s.filters) {
            const state = await currentState(s.kind, f);
            if (state === undefined || !subs.has(subId)) continue;
            if (lastSent.get(`${subId}\n${f}`) !== stateOf(state)) send(subId, state, f);
          }
        }
      } finally {
        polling = false;
      }
    };
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
        for (const k of lastSent.keys()) if (k.startsWith(`${params.subId}\n`)) lastSent.delete(k);
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
        if (state !== undefined && subs.has(params.subId)) send(params.subId, state, f);
      }
    });
  };

  return () => {
    server.off("upgrade", onUpgrade);
    for (const c of wss.clients) c.terminate();
    wss.close();
  };
}
