/**
 * An LND stand-in on loopback speaking its REST shapes: macaroon header checked, POST /v1/invoices,
 * GET /v1/invoice/{hash}, POST /v2/router/send (JSON lines, final state only), GET
 * /v2/router/track/{hash} (current state first, the stream stays open while in flight), LND's
 * refusals ("invoice is already paid", "payment isn't initiated"). Hooks make the next payment
 * fail, lose its answer after paying, or hang in flight as across a node restart.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import bolt11 from "bolt11";
import { listen } from "../../src/shared/index.js";

export interface FakeLndPayment {
  payment_hash: string;
  payment_preimage: string;
  status: "IN_FLIGHT" | "SUCCEEDED" | "FAILED";
  fee_msat: string;
  failure_reason?: string;
}

export interface FakeLnd {
  url: string;
  macaroon: string;
  invoices: Map<string, { preimage: string; request: string; settled: boolean; canceled: boolean }>;
  payments: Map<string, FakeLndPayment>;
  /** how many /v2/router/send requests arrived */
  sends: number;
  /** next payment: fail with this reason */
  failNext?: string;
  /** next payment: pay, then cut the connection instead of answering */
  loseAnswerNext?: boolean;
  /** next payment: stays IN_FLIGHT and the connection is cut (the node restarted mid-payment) */
  hangNext?: boolean;
  /** marks an invoice paid, as a payer on the network would */
  settle(paymentHash: string): void;
  /** ends a hanging payment */
  finish(paymentHash: string, status: "SUCCEEDED" | "FAILED"): void;
  close(): Promise<void>;
}

const NODE_KEY = randomBytes(32).toString("hex");
const MAINNET = { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] };
const sha = (hex: string) => createHash("sha256").update(Buffer.from(hex, "hex")).digest("hex");
const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

async function body(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {};
}

export async function startFakeLnd(): Promise<FakeLnd> {
  const macaroon = randomBytes(32).toString("hex");
  const invoices: FakeLnd["invoices"] = new Map();
  const payments = new Map<string, FakeLndPayment>();
  const tracking = new Map<string, ServerResponse[]>();

  const json = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(`${JSON.stringify(value)}\n`);
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (req.headers["grpc-metadata-macaroon"] !== macaroon)
        return json(res, 401, {
          code: 2,
          message: "verification failed: signature mismatch after caveat verification",
        });
      const path = (req.url ?? "").split("?")[0]!;
      if (req.method === "POST" && path === "/v1/invoices") {
        const b = await body(req);
        const preimage = randomBytes(32).toString("hex");
        const hash = sha(preimage);
        const encoded = bolt11.encode({
          network: MAINNET,
          satoshis: Number(b.value),
          timestamp: Math.floor(Date.now() / 1000),
          tags: [
            { tagName: "payment_hash", data: hash },
            { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
            { tagName: "description", data: String(b.memo ?? "") },
            { tagName: "expire_time", data: Number(b.expiry ?? 3600) },
          ],
        });
        const request = bolt11.sign(encoded, NODE_KEY).paymentRequest!;
        invoices.set(hash, { preimage, request, settled: false, canceled: false });
        return json(res, 200, {
          r_hash: b64(hash),
          payment_request: request,
          add_index: String(invoices.size),
        });
      }
      const inv = /^\/v1\/invoice\/([0-9a-f]{64})$/.exec(path);
      if (req.method === "GET" && inv) {
        const i = invoices.get(inv[1]!);
        if (!i) return json(res, 404, { code: 5, message: "unable to locate invoice" });
        const state = i.settled ? "SETTLED" : i.canceled ? "CANCELED" : "OPEN";
        return json(res, 200, { state, r_preimage: i.settled ? b64(i.preimage) : "", settled: i.settled });
      }
      if (req.method === "POST" && path === "/v2/router/send") {
        fake.sends++;
        const b = await body(req);
        const d = bolt11.decode(String(b.payment_request));
        const hash = d.tagsObject.payment_hash!;
        const earlier = payments.get(hash);
        if (earlier && earlier.status !== "FAILED") {
          const message =
            earlier.status === "SUCCEEDED" ? "invoice is already paid" : "payment is in transition";
          return json(res, 200, { error: { code: 6, message } });
        }
        const preimage = invoices.get(hash)?.preimage ?? randomBytes(32).toString("hex");
        const p: FakeLndPayment = {
          payment_hash: hash,
          payment_preimage: "",
          status: "IN_FLIGHT",
          fee_msat: "0",
        };
        payments.set(hash, p);
        if (fake.hangNext) {
          fake.hangNext = false;
          return req.socket.destroy();
        }
        if (fake.failNext) {
          Object.assign(p, { status: "FAILED", failure_reason: fake.failNext });
          fake.failNext = undefined;
        } else {
          Object.assign(p, { status: "SUCCEEDED", payment_preimage: preimage, fee_msat: "1000" });
          const own = invoices.get(hash);
          if (own) own.settled = true;
        }
        if (fake.loseAnswerNext) {
          fake.loseAnswerNext = false;
          return req.socket.destroy();
        }
        return json(res, 200, { result: p });
      }
      const track = /^\/v2\/router\/track\/([0-9a-f]{64})$/.exec(path);
      if (req.method === "GET" && track) {
        const p = payments.get(track[1]!);
        if (!p) return json(res, 404, { code: 5, message: "payment isn't initiated" });
        res.writeHead(200, { "content-type": "application/json" });
        res.write(`${JSON.stringify({ result: p })}\n`);
        if (p.status !== "IN_FLIGHT") return res.end();
        // Like LND, the stream stays open until the payment ends.
        tracking.set(p.payment_hash, [...(tracking.get(p.payment_hash) ?? []), res]);
        return;
      }
      json(res, 404, { code: 12, message: "Not Found" });
    })().catch(() => req.socket.destroy());
  });
  const url = await listen(server, "127.0.0.1", 0);

  const fake: FakeLnd = {
    url,
    macaroon,
    invoices,
    payments,
    sends: 0,
    settle(hash) {
      const i = invoices.get(hash);
      if (i) i.settled = true;
    },
    finish(hash, status) {
      const p = payments.get(hash);
      if (!p) return;
      Object.assign(
        p,
        status === "SUCCEEDED"
          ? { status, payment_preimage: randomBytes(32).toString("hex"), fee_msat: "2000" }
          : { status, failure_reason: "FAILURE_REASON_NO_ROUTE" },
      );
      for (const r of tracking.get(hash) ?? []) r.end(`${JSON.stringify({ result: p })}\n`);
      tracking.delete(hash);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}
