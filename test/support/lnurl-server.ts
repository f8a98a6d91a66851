/**
 * A Lightning-address (LUD-16 / LNURL-pay LUD-06) server on loopback, for payout tests: answers the
 * well-known payRequest and issues real signed bolt11 invoices for the requested amount.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import bolt11 from "bolt11";

export interface LnurlServer {
  /** e.g. alice@127.0.0.1:PORT */
  address(name: string): string;
  /** amounts (msat) invoices were requested for */
  requests: number[];
  close(): Promise<void>;
}

export async function startLnurlServer(): Promise<LnurlServer> {
  const requests: number[] = [];
  const key = randomBytes(32).toString("hex");
  let base = "";
  const metadata = JSON.stringify([["text/plain", "owlrun test payee"]]);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", base);
    res.setHeader("content-type", "application/json");
    const m = /^\/\.well-known\/lnurlp\/([a-z0-9._-]+)$/.exec(url.pathname);
    if (m) {
      res.end(
        JSON.stringify({
          tag: "payRequest",
          callback: `${base}/cb/${m[1]}`,
          minSendable: 1000,
          maxSendable: 1e11,
          metadata,
        }),
      );
      return;
    }
    if (url.pathname.startsWith("/cb/")) {
      const msat = Number(url.searchParams.get("amount"));
      requests.push(msat);
      const encoded = bolt11.encode({
        network: { bech32: "bc", pubKeyHash: 0, scriptHash: 5, validWitnessVersions: [0, 1] },
        millisatoshis: String(msat),
        timestamp: Math.floor(Date.now() / 1000),
        tags: [
          { tagName: "payment_hash", data: randomBytes(32).toString("hex") },
          { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
          { tagName: "purpose_commit_hash", data: createHash("sha256").update(metadata).digest("hex") },
          { tagName: "expire_time", data: 3600 },
        ],
      });
      res.end(JSON.stringify({ pr: bolt11.sign(encoded, key).paymentRequest, routes: [] }));
      return;
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ status: "ERROR", reason: "not found" }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return {
    address: (name) => `${name}@127.0.0.1:${port}`,
    requests,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
