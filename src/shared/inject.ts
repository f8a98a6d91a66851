/**
 * A fetch-compatible function that dispatches into an HTTP request handler of this process (an
 * express app) without a socket: same routing, parsing and answers as over the network, minus
 * the TCP connection and the HTTP client. Used to call a bundled mint through its HTTP API.
 *
 * The request is a real IncomingMessage fed the body; the response a real ServerResponse whose
 * write/end are captured instead of reaching a socket (nothing else in it is changed).
 */
import { IncomingMessage, ServerResponse } from "node:http";
import { Socket } from "node:net";

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

type Chunk = string | Buffer | Uint8Array;
const toBuffer = (c: Chunk, enc?: unknown) =>
  typeof c === "string"
    ? Buffer.from(c, typeof enc === "string" ? (enc as BufferEncoding) : "utf8")
    : Buffer.from(c);

export function inProcessFetch(handler: RequestHandler) {
  return (url: string, init: { method: string; headers: Record<string, string>; body?: string }) =>
    new Promise<{ ok: boolean; status: number; text(): Promise<string> }>((resolve, reject) => {
      const u = new URL(url);
      const req = new IncomingMessage(new Socket());
      req.method = init.method.toUpperCase();
      req.url = `${u.pathname}${u.search}`;
      const body = init.body === undefined ? undefined : Buffer.from(init.body);
      req.headers = Object.fromEntries(Object.entries(init.headers).map(([k, v]) => [k.toLowerCase(), v]));
      req.headers.host = u.host;
      if (body) req.headers["content-length"] = String(body.length);
      if (body) req.push(body);
      req.push(null);
      const res = new ServerResponse(req);
      const chunks: Buffer[] = [];
      res.write = ((chunk: Chunk, enc?: unknown) => {
        chunks.push(toBuffer(chunk, enc));
        return true;
      }) as ServerResponse["write"];
      res.end = ((chunk?: unknown, enc?: unknown) => {
        if (chunk !== undefined && typeof chunk !== "function") chunks.push(toBuffer(chunk as Chunk, enc));
        const status = res.statusCode;
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ ok: status >= 200 && status < 300, status, text: async () => text });
        res.emit("finish");
        return res;
      }) as ServerResponse["end"];
      try {
        handler(req, res);
      } catch (err) {
        reject(err);
      }
    });
}
