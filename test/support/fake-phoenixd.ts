/**
 * A phoenixd stand-in on loopback (the edge we cannot run here): Basic auth with an empty user,
 * form-encoded writes, the JSON shapes of /createinvoice, /payinvoice, /payments/incoming/{hash},
 * /payments/outgoingbyhash/{hash}, /getbalance, and the /websocket push of payment_received.
 * Test hooks make payments fail or lose their answer on purpose.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import bolt11 from "bolt11";
import { WebSocketServer } from "ws";

export interface FakePhoenixd {
  url: string;
  password: string;
  markPaid(paymentHash: string): void;
  failNextPayment(): void;
  /** the next payment goes through, but its HTTP answer is lost */
  dropNextPaymentAnswer(): void;
  outgoing: Map<
    string,
    { isPaid: boolean; fees: number; preimage: string | null; completedAt: number | null }
  >;
  close(): Promise<void>;
}

const NET = { bech32: "bc", pubKeyHash: 0, scriptHash: 5, validWitnessVersions: [0, 1] };

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  let body = "";
  for await (const c of req) body += c;
  return new URLSearchParams(body);
}

export async function startFakePhoenixd(password = "secret"): Promise<FakePhoenixd> {
  const nodeKey = randomBytes(32).toString("hex");
  const incoming = new Map<string, { amountSat: number; isPaid: boolean; serialized: string }>();
  const outgoing: FakePhoenixd["outgoing"] = new Map();
  let failNext = false;
  let dropNext = false;
  const expected = `Basic ${Buffer.from(`:${password}`).toString("base64")}`;

  const server: Server = createServer(async (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    };
    if (req.headers.authorization !== expected) return send(401, "Unauthorized");
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "POST" && url.pathname === "/createinvoice") {
      const f = await form(req);
      const amountSat = Number(f.get("amountSat"));
      const preimage = randomBytes(32);
      const paymentHash = createHash("sha256").update(preimage).digest("hex");
      const encoded = bolt11.encode({
        network: NET,
        satoshis: amountSat,
        timestamp: Math.floor(Date.now() / 1000),
        tags: [
          { tagName: "payment_hash", data: paymentHash },
          { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
          { tagName: "description", data: f.get("description") ?? "" },
          { tagName: "expire_time", data: Number(f.get("expirySeconds") ?? 3600) },
        ],
      });
      const serialized = bolt11.sign(encoded, nodeKey).paymentRequest!;
      incoming.set(paymentHash, { amountSat, isPaid: false, serialized });
      return send(200, { amountSat, paymentHash, serialized });
    }
    if (req.method === "GET" && url.pathname.startsWith("/payments/incoming/")) {
      const hash = url.pathname.split("/").pop()!;
      const inv = incoming.get(hash);
      if (!inv) return send(404, "not found");
      return send(200, {
        paymentHash: hash,
        isPaid: inv.isPaid,
        receivedSat: inv.isPaid ? inv.amountSat : 0,
        fees: 0,
        invoice: inv.serialized,
      });
    }
    if (req.method === "POST" && url.pathname === "/payinvoice") {
      const f = await form(req);
      const d = bolt11.decode(f.get("invoice") ?? "");
      const hash = d.tags.find((t) => t.tagName === "payment_hash")!.data as string;
      if (failNext) {
        failNext = false;
        outgoing.set(hash, { isPaid: false, fees: 0, preimage: null, completedAt: Date.now() });
        return send(400, "payment failed: no route");
      }
      const preimage = randomBytes(32).toString("hex");
      outgoing.set(hash, { isPaid: true, fees: 1000, preimage, completedAt: Date.now() });
      if (dropNext) {
        dropNext = false;
        req.socket.destroy(); // it was paid, but the caller never hears about it
        return;
      }
      return send(200, {
        recipientAmountSat: Number(d.satoshis),
        routingFeeSat: 1,
        paymentId: randomBytes(8).toString("hex"),
        paymentHash: hash,
        paymentPreimage: preimage,
      });
    }
    if (req.method === "GET" && url.pathname.startsWith("/payments/outgoingbyhash/")) {
      const hash = url.pathname.split("/").pop()!;
      const p = outgoing.get(hash);
      if (!p) return send(404, "not found");
      return send(200, { paymentHash: hash, ...p, sent: 0 });
    }
    if (req.method === "GET" && url.pathname === "/getbalance")
      return send(200, { balanceSat: 1_000_000, feeCreditSat: 0 });
    send(404, "not found");
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    if (req.headers.authorization !== expected || !req.url?.startsWith("/websocket")) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    password,
    outgoing,
    markPaid(paymentHash) {
      const inv = incoming.get(paymentHash);
      if (!inv) throw new Error("unknown invoice");
      inv.isPaid = true;
      for (const c of wss.clients)
        c.send(JSON.stringify({ type: "payment_received", amountSat: inv.amountSat, paymentHash }));
    },
    failNextPayment: () => void (failNext = true),
    dropNextPaymentAnswer: () => void (dropNext = true),
    close: () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
