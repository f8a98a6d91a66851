/**
 * A loopback HTTP proxy in front of a mint that can lose answers, like a network that drops a
 * connection after the request arrived: `dropAnswers` (e.g. "/v1/swap") forwards the request,
 * lets the mint finish it, then cuts the client's connection instead of answering; `refuse` cuts
 * the connection without forwarding at all (the mint is unreachable for that path); `hold` makes a
 * path's requests wait (a slow mint).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { listen } from "../../src/shared/index.js";

export interface FlakyProxy {
  url: string;
  /** paths whose next answers are lost, with how many are left to lose */
  dropAnswers: Map<string, number>;
  /** paths in `dropAnswers` whose next answers still get through first, with how many */
  passFirst: Map<string, number>;
  /** paths refused outright (connection cut before forwarding); an entry ending in `*` is a prefix */
  refuse: Set<string>;
  /** called when an answer has just been lost (e.g. to make the mint unreachable from then on) */
  onDrop?: (path: string) => void;
  /** paths whose requests wait for this promise before they are forwarded (a slow mint) */
  hold: Map<string, Promise<unknown>>;
  /** called when a request for a held path has arrived and is waiting */
  onHeld?: (path: string) => void;
  close(): Promise<void>;
}

const body = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });

export async function startFlakyProxy(target: string): Promise<FlakyProxy> {
  const dropAnswers = new Map<string, number>();
  const passFirst = new Map<string, number>();
  const refuse = new Set<string>();
  const hold = new Map<string, Promise<unknown>>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? "/").split("?")[0]!;
      const sub = path.replace(new URL(target).pathname.replace(/\/$/, ""), "");
      const refused = [...refuse].some((r) => (r.endsWith("*") ? sub.startsWith(r.slice(0, -1)) : r === sub));
      if (refused) return req.socket.destroy();
      const payload = await body(req);
      const held = hold.get(sub);
      if (held) {
        proxy.onHeld?.(sub);
        await held;
      }
      const answer = await fetch(`${new URL(target).origin}${req.url}`, {
        method: req.method,
        headers: { "content-type": req.headers["content-type"] ?? "application/json" },
        body: req.method === "GET" || req.method === "HEAD" ? undefined : payload,
      });
      const text = Buffer.from(await answer.arrayBuffer());
      const left = dropAnswers.get(sub) ?? 0;
      const passing = passFirst.get(sub) ?? 0;
      if (left > 0 && passing > 0) passFirst.set(sub, passing - 1);
      else if (left > 0) {
        dropAnswers.set(sub, left - 1);
        proxy.onDrop?.(sub);
        return req.socket.destroy(); // the mint did the work; the answer is lost
      }
      res.writeHead(answer.status, {
        "content-type": answer.headers.get("content-type") ?? "application/json",
      });
      res.end(text);
    })().catch(() => req.socket.destroy());
  });
  const url = await listen(server, "127.0.0.1", 0);
  const proxy: FlakyProxy = {
    url: `${url}${new URL(target).pathname.replace(/\/$/, "")}`,
    dropAnswers,
    passFirst,
    refuse,
    hold,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
