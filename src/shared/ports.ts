/**
 * Ports a long-running setup keeps across restarts (the devnet: its mint URL, and so its stored
 * ecash, and the printed `claude mcp add` line stay valid): the port remembered in a small JSON
 * file, else a default, else — when that one is taken — any free port, which is then remembered.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";

/** True when nothing listens on host:port (a bind test; the caller binds right after). */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const srv = createServer();
    srv.once("error", () => resolvePromise(false));
    srv.listen(port, host, () => srv.close(() => resolvePromise(true)));
  });
}

export class PortMemory {
  private ports: Record<string, number>;

  constructor(private readonly file: string) {
    let stored: unknown = {};
    try {
      if (existsSync(file)) stored = JSON.parse(readFileSync(file, "utf8"));
    } catch {
      stored = {}; // unreadable: start over with the defaults
    }
    this.ports = typeof stored === "object" && stored !== null ? (stored as Record<string, number>) : {};
  }

  /** The port to try for `name`: the remembered one or `preferred` when free, else 0 (any free port). */
  async choose(name: string, preferred: number, host = "127.0.0.1"): Promise<number> {
    const port = Number.isInteger(this.ports[name]) ? this.ports[name]! : preferred;
    return (await portIsFree(host, port)) ? port : 0;
  }

  /** Remembers the port `name` got. */
  remember(name: string, url: string): void {
    this.ports[name] = Number(new URL(url).port);
    writeFileSync(this.file, `${JSON.stringify(this.ports)}\n`, { mode: 0o600 });
  }
}
