import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "./log.js";

/** Listens on host:port (0 = any free port) and resolves with the base URL. */
export function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const addr = server.address() as AddressInfo;
      const h = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
      resolvePromise(`http://${h}:${addr.port}`);
    });
  });
}

/** The one line a supervisor (devnet, tests) waits for. */
export function announceListening(url: string): void {
  process.stdout.write(`listening ${url}\n`);
}

/**
 * Runs `close` once on SIGINT/SIGTERM, then exits 0. A second signal forces exit, so a stuck close
 * never traps the operator.
 */
export function onShutdown(close: () => Promise<void>, log: Logger): void {
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) process.exit(130);
    closing = true;
    log.info(`${signal}: shutting down`);
    close()
      .then(() => process.exit(0))
      .catch((err) => {
        log.error("shutdown failed", { err: String(err) });
        process.exit(1);
      });
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

/**
 * Requests Node rejects before any route sees them (oversized headers, malformed HTTP) still get the
 * JSON error shape instead of a bare status line.
 */
export function jsonClientErrors(server: Server): void {
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const overflow = err.code === "HPE_HEADER_OVERFLOW";
    const status = overflow ? 431 : 400;
    const body = JSON.stringify({
      error: {
        message: overflow ? "request headers too large" : "malformed HTTP request",
        type: overflow ? "request_too_large" : "invalid_request",
        code: status,
      },
    });
    socket.end(
      `HTTP/1.1 ${status} ${overflow ? "Request Header Fields Too Large" : "Bad Request"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

/** Closes an HTTP server, ending idle keep-alive sockets so close() does not hang. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolvePromise) => {
    server.close(() => resolvePromise());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  });
}
