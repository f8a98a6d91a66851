/**
 * A Core Lightning `clnrest` stand-in on loopback: POST /v1/<method> with a `Rune` header, the
 * JSON shapes of `invoice`, `listinvoices`, `pay` and `listpays`, JSON-RPC errors as HTTP 500
 * `{code, message}`, and CLN's habit of answering `pay` for an invoice it already paid with the old
 * result. Hooks make the next payment fail, lose its answer after paying, or stay pending (node
 * restarted mid-payment).
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import bolt11 from "bolt11";
import { listen } from "../../src/shared/index.js";

export interface FakeClnPay {
  payment_hash: string;
  status: "pending" | "complete" | "failed";
  preimage?: string;
  amount_msat: number;
  amount_sent_msat: number;
}

export interface FakeClnrest {
  url: string;
  rune: string;
  invoices: Map<string, { preimage: string; bolt11: string; paid: boolean }>;
  pays: Map<string, FakeClnPay[]>;
  /** how many `pay` calls arrived */
  payCalls: number;
  failNext?: boolean;
  loseAnswerNext?: boolean;
  hangNext?: boolean;
  settle(paymentHash: string): void;
  finish(paymentHash: string, status: "complete" | "failed"): void;
  close(): Promise<void>;
}

const NODE_KEY = randomBytes(32).toString("hex");
const MAINNET = { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] };
const sha = (hex: string) => createHash("sha256").update(Buffer.from(hex, "hex")).digest("hex");

async function body(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {};
}

export async function startFakeClnrest(): Promise<FakeClnrest> {
  const rune = randomBytes(24).toString("base64url");
  const invoices: FakeClnrest["invoices"] = new Map();
  const pays = new Map<string, FakeClnPay[]>();
  const json = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(value));
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (req.headers.rune !== rune)
        return json(res, 401, { code: 1501, message: "Not authorized: Not a valid rune" });
      const method = /^\/v1\/([a-z_]+)$/.exec(req.url ?? "")?.[1];
      const p = await body(req);
      if (method === "invoice") {
        const preimage = randomBytes(32).toString("hex");
        const hash = sha(preimage);
        const encoded = bolt11.encode({
          network: MAINNET,
          millisatoshis: String(p.amount_msat),
          timestamp: Math.floor(Date.now() / 1000),
          tags: [
            { tagName: "payment_hash", data: hash },
            { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
            { tagName: "description", data: String(p.description ?? "") },
            { tagName: "expire_time", data: Number(p.expiry ?? 3600) },
          ],
        });
        const b11 = bolt11.sign(encoded, NODE_KEY).paymentRequest!;
        invoices.set(hash, { preimage, bolt11: b11, paid: false });
        return json(res, 201, {
          payment_hash: hash,
          bolt11: b11,
          expires_at: Math.floor(Date.now() / 1000) + Number(p.expiry ?? 3600),
        });
      }
      if (method === "listinvoices") {
        const i = invoices.get(p.payment_hash);
        return json(res, 200, {
          invoices: i
            ? [
                {
                  payment_hash: p.payment_hash,
                  status: i.paid ? "paid" : "unpaid",
                  ...(i.paid ? { payment_preimage: i.preimage } : {}),
                },
              ]
            : [],
        });
      }
      if (method === "listpays") return json(res, 201, { pays: pays.get(p.payment_hash) ?? [] });
      if (method === "pay") {
        fake.payCalls++;
        const d = bolt11.decode(String(p.bolt11));
        const hash = d.tagsObject.payment_hash!;
        const earlier = (pays.get(hash) ?? []).find((x) => x.status === "complete");
        if (earlier) return json(res, 201, { ...earlier, payment_preimage: earlier.preimage }); // CLN: the old result
        const amount = Number(d.millisatoshis ?? p.amount_msat);
        const attempt: FakeClnPay = {
          payment_hash: hash,
          status: "pending",
          amount_msat: amount,
          amount_sent_msat: amount,
        };
        pays.set(hash, [...(pays.get(hash) ?? []), attempt]);
        if (fake.hangNext) {
          fake.hangNext = false;
          return req.socket.destroy();
        }
        if (fake.failNext) {
          fake.failNext = false;
          attempt.status = "failed";
          return json(res, 500, { code: 210, message: "Ran out of routes to try after 3 attempts" });
        }
        Object.assign(attempt, {
          status: "complete",
          preimage: invoices.get(hash)?.preimage ?? randomBytes(32).toString("hex"),
          amount_sent_msat: amount + 1000,
        });
        const own = invoices.get(hash);
        if (own) own.paid = true;
        if (fake.loseAnswerNext) {
          fake.loseAnswerNext = false;
          return req.socket.destroy();
        }
        return json(res, 201, { ...attempt, payment_preimage: attempt.preimage });
      }
      json(res, 404, { code: -32601, message: `Unknown command '${method}'` });
    })().catch(() => req.socket.destroy());
  });
  const url = await listen(server, "127.0.0.1", 0);
  const fake: FakeClnrest = {
    url,
    rune,
    invoices,
    pays,
    payCalls: 0,
    settle(hash) {
      const i = invoices.get(hash);
      if (i) i.paid = true;
    },
    finish(hash, status) {
      for (const a of pays.get(hash) ?? []) {
        if (a.status !== "pending") continue;
        a.status = status;
        if (status === "complete")
          Object.assign(a, {
            preimage: randomBytes(32).toString("hex"),
            amount_sent_msat: a.amount_msat + 2000,
          });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}
