/**
 * A phoenixd stand-in on loopback (the real one needs a Lightning peer): Basic auth (any user, the
 * password checked), form-encoded writes, and the JSON shapes of phoenixd >= 0.5 for /createinvoice,
 * /payinvoice, /payments/incoming/{hash}, /payments/outgoing[/{id}], /payments/outgoingbyhash/{hash},
 * /getinfo, /getbalance, plus the /websocket push of payment_received. Like phoenixd it omits null
 * fields, answers a failed payment with HTTP 200 {paymentHash, reason}, and says "Not found" (404) for
 * an unknown payment but "Unknown endpoint" (404) for an unknown route.
 * Test hooks make payments fail, hang, or lose their answer on purpose.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import bolt11 from "bolt11";
import { type WebSocket, WebSocketServer } from "ws";

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  /** the form fields of a POST */
  form: Record<string, string>;
}

export interface IncomingRecord {
  paymentHash: string;
  preimage: string;
  amountSat: number;
  description: string;
  invoice: string;
  isPaid: boolean;
  expiresAt: number; // ms
  createdAt: number; // ms
  completedAt?: number;
}

export interface OutgoingRecord {
  paymentId: string;
  paymentHash: string;
  preimage?: string;
  isPaid: boolean;
  sent: number; // sat
  fees: number; // msat
  invoice: string;
  createdAt: number;
  completedAt?: number;
}

export interface FakePhoenixd {
  url: string;
  password: string;
  /** every HTTP request, oldest first (failed auth included) */
  requests: RecordedRequest[];
  incoming: Map<string, IncomingRecord>;
  /** by payment hash */
  outgoing: Map<string, OutgoingRecord>;
  /** routing fee phoenixd reports per payment, whole sats (default 1) */
  routingFeeSat: number;
  /**
   * An invoice from another node of this fake network: paying it reveals its true preimage. Other
   * invoices (nobody here knows their preimage) are "paid" with a random stand-in preimage.
   */
  remoteInvoice(amountSat: number): string;
  /** settles an invoice and pushes payment_received to the websocket clients */
  markPaid(paymentHash: string): void;
  /** the next /payinvoice fails the way phoenixd reports it: HTTP 200 {paymentHash, reason} */
  failNextPayment(reason?: string): void;
  /** the next payment goes through, but the connection drops before the answer */
  dropConnectionOnNextPay(): void;
  /** the next /payinvoice answers HTTP 500 before paying anything */
  errorOnNextPay(): void;
  /** the next payment stays pending (request held open) until releaseHeldPayment() */
  holdNextPayment(): void;
  /** settles the held payment as paid and answers its request */
  releaseHeldPayment(): void;
  /** how many websocket clients are connected */
  websocketClients(): number;
  /** cuts every websocket connection (clients should reconnect); resolves once they are gone */
  dropWebsockets(): Promise<void>;
  close(): Promise<void>;
}

const MAINNET = { bech32: "bc", pubKeyHash: 0, scriptHash: 5, validWitnessVersions: [0, 1] };
const HEX32 = /^[0-9a-f]{64}$/;
const sha256hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function signedInvoice(
  nodeKey: string,
  paymentHash: string,
  amountSat: number,
  description: string,
  expiry: number,
) {
  const encoded = bolt11.encode({
    network: MAINNET,
    satoshis: amountSat,
    timestamp: Math.floor(Date.now() / 1000),
    tags: [
      { tagName: "payment_hash", data: paymentHash },
      { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
      { tagName: "description", data: description },
      { tagName: "expire_time", data: expiry },
    ],
  });
  return bolt11.sign(encoded, nodeKey).paymentRequest!;
}

async function readForm(req: IncomingMessage): Promise<Record<string, string>> {
  let body = "";
  for await (const c of req) body += c;
  if (!req.headers["content-type"]?.startsWith("application/x-www-form-urlencoded")) return {};
  return Object.fromEntries(new URLSearchParams(body));
}

function passwordOf(header: string | undefined): string | undefined {
  if (!header?.startsWith("Basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

export async function startFakePhoenixd(password = "secret"): Promise<FakePhoenixd> {
  const nodeKey = randomBytes(32).toString("hex");
  const requests: RecordedRequest[] = [];
  const incoming = new Map<string, IncomingRecord>();
  const outgoing = new Map<string, OutgoingRecord>();
  const remoteNodeKey = randomBytes(32).toString("hex");
  const remotePreimages = new Map<string, string>(); // payment hash -> preimage
  let next: "fail" | "drop" | "error" | "hold" | undefined;
  let failReason = "";
  let held: { record: OutgoingRecord; res: ServerResponse } | undefined;

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain" : "application/json" });
    res.end(text);
  };
  const incomingJson = (p: IncomingRecord) => ({
    type: "incoming_payment",
    subType: "lightning",
    paymentHash: p.paymentHash,
    preimage: p.preimage,
    description: p.description,
    invoice: p.invoice,
    isPaid: p.isPaid,
    isExpired: Date.now() > p.expiresAt,
    requestedSat: p.amountSat,
    receivedSat: p.isPaid ? p.amountSat : 0,
    fees: 0,
    expiresAt: p.expiresAt,
    completedAt: p.completedAt,
    createdAt: p.createdAt,
  });
  const outgoingJson = (p: OutgoingRecord) => ({ type: "outgoing_payment", subType: "lightning", ...p });
  const paymentSent = (p: OutgoingRecord) => ({
    recipientAmountSat: p.sent,
    routingFeeSat: Math.floor(p.fees / 1000),
    paymentId: p.paymentId,
    paymentHash: p.paymentHash,
    paymentPreimage: p.preimage,
  });

  const settle = (record: OutgoingRecord) =>
    Object.assign(record, {
      isPaid: true,
      preimage: remotePreimages.get(record.paymentHash) ?? randomBytes(32).toString("hex"),
      fees: api.routingFeeSat * 1000,
      completedAt: Date.now(),
    });

  async function payInvoice(req: IncomingMessage, res: ServerResponse, form: Record<string, string>) {
    let d: ReturnType<typeof bolt11.decode>;
    try {
      d = bolt11.decode(form.invoice ?? "");
    } catch {
      return send(res, 400, "Invalid parameter invoice: expected bolt11invoice");
    }
    const hash = d.tagsObject.payment_hash!;
    const amountSat = d.satoshis ?? Number(form.amountSat);
    if (!Number.isInteger(amountSat)) return send(res, 400, "Missing parameter amountSat");
    const hook = next;
    next = undefined;
    if (hook === "error") return send(res, 500, "internal error");
    if (outgoing.get(hash)?.isPaid)
      return send(res, 200, { paymentHash: hash, reason: "invoice already paid" });
    const record: OutgoingRecord = {
      paymentId: randomUUID(),
      paymentHash: hash,
      isPaid: false,
      sent: amountSat,
      fees: 0,
      invoice: form.invoice!,
      createdAt: Date.now(),
    };
    outgoing.set(hash, record); // phoenixd records the attempt before sending it
    if (hook === "hold") return void (held = { record, res });
    if (hook === "fail") {
      record.completedAt = Date.now();
      return send(res, 200, { paymentHash: hash, reason: failReason });
    }
    settle(record);
    if (hook === "drop") return void req.socket.destroy(); // paid, but the caller never hears about it
    send(res, 200, paymentSent(record));
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const form = req.method === "POST" ? await readForm(req) : {};
    requests.push({
      method: req.method ?? "",
      path: url.pathname,
      authorization: req.headers.authorization,
      contentType: req.headers["content-type"],
      form,
    });
    if (passwordOf(req.headers.authorization) !== password)
      return send(
        res,
        401,
        "Invalid authentication (use basic auth with the http password set in phoenix.conf)",
      );
    const [, first, second, third] = url.pathname.split("/");
    const route = `${req.method} /${first}${second ? `/${second}` : ""}`;

    if (route === "POST /createinvoice") {
      if (form.description === undefined)
        return send(res, 400, "Must provide either a description or descriptionHash");
      if (form.description.length > 128) return send(res, 400, "Request parameter description is too long");
      const amountSat = Number(form.amountSat);
      const expirySeconds = Number(form.expirySeconds ?? 3600);
      const preimage = randomBytes(32);
      const paymentHash = sha256hex(preimage);
      const now = Date.now();
      const invoice = signedInvoice(nodeKey, paymentHash, amountSat, form.description, expirySeconds);
      incoming.set(paymentHash, {
        paymentHash,
        preimage: preimage.toString("hex"),
        amountSat,
        description: form.description,
        invoice,
        isPaid: false,
        expiresAt: now + expirySeconds * 1000,
        createdAt: now,
      });
      return send(res, 200, { amountSat, paymentHash, serialized: invoice });
    }
    if (route === "POST /payinvoice") return payInvoice(req, res, form);
    if (route === "GET /payments/incoming" && third) {
      if (!HEX32.test(third)) return send(res, 400, "Invalid parameter paymentHash: expected hex32");
      const p = incoming.get(third);
      return p ? send(res, 200, incomingJson(p)) : send(res, 404, "Not found");
    }
    if (route === "GET /payments/outgoingbyhash" && third) {
      if (!HEX32.test(third)) return send(res, 400, "Invalid parameter paymentHash: expected hex32");
      const p = outgoing.get(third);
      return p ? send(res, 200, outgoingJson(p)) : send(res, 404, "Not found");
    }
    if (route === "GET /payments/outgoing" && third) {
      const p = [...outgoing.values()].find((o) => o.paymentId === third);
      return p ? send(res, 200, outgoingJson(p)) : send(res, 404, "Not found");
    }
    if (route === "GET /payments/outgoing")
      return send(res, 200, [...outgoing.values()].filter((o) => o.isPaid).map(outgoingJson));
    if (route === "GET /getbalance") return send(res, 200, { balanceSat: 1_000_000, feeCreditSat: 0 });
    if (route === "GET /getinfo")
      return send(res, 200, {
        nodeId: "02".padEnd(66, "0"),
        channels: [],
        chain: "mainnet",
        version: "fake",
      });
    send(res, 404, "Unknown endpoint (check api doc)");
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    if (
      passwordOf(req.headers.authorization) !== password ||
      new URL(req.url ?? "/", "http://x").pathname !== "/websocket"
    ) {
      socket.end("HTTP/1.1 401 Unauthorized\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => wss.emit("connection", ws, req));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));

  const api: FakePhoenixd = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    password,
    requests,
    incoming,
    outgoing,
    routingFeeSat: 1,
    remoteInvoice(amountSat) {
      const preimage = randomBytes(32);
      const paymentHash = sha256hex(preimage);
      remotePreimages.set(paymentHash, preimage.toString("hex"));
      return signedInvoice(remoteNodeKey, paymentHash, amountSat, "remote test invoice", 3600);
    },
    markPaid(paymentHash) {
      const p = incoming.get(paymentHash);
      if (!p) throw new Error(`fake phoenixd: unknown invoice ${paymentHash}`);
      p.isPaid = true;
      p.completedAt = Date.now();
      const event = { type: "payment_received", timestamp: Date.now(), amountSat: p.amountSat, paymentHash };
      for (const c of wss.clients) c.send(JSON.stringify(event));
    },
    failNextPayment(reason = "payment failed: no route to recipient") {
      next = "fail";
      failReason = reason;
    },
    dropConnectionOnNextPay: () => void (next = "drop"),
    errorOnNextPay: () => void (next = "error"),
    holdNextPayment: () => void (next = "hold"),
    releaseHeldPayment() {
      if (!held) throw new Error("fake phoenixd: no held payment");
      const { record, res } = held;
      held = undefined;
      settle(record);
      if (!res.destroyed) send(res, 200, paymentSent(record));
    },
    websocketClients: () => wss.clients.size,
    dropWebsockets: () =>
      Promise.all(
        [...wss.clients].map((c) => {
          const closed = new Promise((r) => c.once("close", r));
          c.terminate();
          return closed;
        }),
      ).then(() => undefined),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return api;
}
