/**
 * Issue 15 item 10: files that hold spendable ecash (wallet.sqlite, the mint's and the gateway's
 * databases, stored change) were created 0644 (world-readable under the usual umask). Every
 * SQLite file and its -wal/-shm is 0600, every data directory 0700, and files or directories an
 * older version left open are tightened when the process starts.
 */
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getEncodedToken } from "@cashu/cashu-ts";
import { describe, expect, it } from "vitest";
import { startMcpHttp } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { startCli, tempDir } from "../support/cli-process.js";
import { callOk, connect } from "../mcp/harness.js";

/** Every file and directory below `root` with its permission bits. */
function modes(root: string): { path: string; dir: boolean; mode: number }[] {
  const out: { path: string; dir: boolean; mode: number }[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push({ path: p, dir: e.isDirectory(), mode: statSync(p).mode & 0o777 });
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

function expectPrivate(root: string) {
  const all = modes(root);
  const dbs = all.filter((f) => /\.sqlite(-wal|-shm)?$/.test(f.path));
  expect(dbs.length).toBeGreaterThan(0);
  for (const f of dbs) expect(f.mode.toString(8), f.path).toBe("600");
  for (const d of all.filter((f) => f.dir)) expect(d.mode.toString(8), d.path).toBe("700");
  return all;
}

describe("file modes", () => {
  it("a gateway with its bundled mint keeps every database 0600 in 0700 directories, change included", async () => {
    const root = tempDir();
    const gw = await startCli(["gateway", "--port", "0", "--data-dir", root, "--fake-delay-ms", "20"]);
    try {
      // Money moves (an X-Cashu deposit to an account): the wallet and change tables are written.
      const mintUrl = `${gw.url}/mint`;
      const wallet = await newWallet(mintUrl);
      const proofs = await mintProofs(wallet, 64);
      const reg = await fetch(`${gw.url}/v1/auth/register`, { method: "POST" });
      const { api_key } = (await reg.json()) as { api_key: string };
      const topup = await fetch(`${gw.url}/v1/balance/topup`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${api_key}` },
        body: JSON.stringify({ token: getEncodedToken({ mint: mintUrl, proofs }) }),
      });
      expect(topup.status).toBe(200);
      const all = expectPrivate(root);
      expect(all.some((f) => f.path.endsWith("mint/mint.sqlite"))).toBe(true);
      expect(all.some((f) => f.path.endsWith("gateway/wallet/wallet.sqlite-wal"))).toBe(true);
    } finally {
      await gw.stop();
    }
  });

  it("the MCP wallet's files are private, and an old 0755/0644 layout is tightened on start", async () => {
    const root = tempDir();
    const walletDir = join(root, "wallet");
    mkdirSync(walletDir, { mode: 0o755 });
    chmodSync(root, 0o755);
    chmodSync(walletDir, 0o755);
    writeFileSync(join(walletDir, "wallet.sqlite"), "", { mode: 0o644 });
    chmodSync(join(walletDir, "wallet.sqlite"), 0o644);
    const mcp = await startMcpHttp({
      gatewayUrl: "http://127.0.0.1:9",
      dataDir: root,
      port: 0,
      log: silentLogger,
    });
    try {
      const c = await connect(mcp);
      await callOk(c.client, "balance");
      await c.close();
      expectPrivate(root);
      expect(statSync(root).mode & 0o777).toBe(0o700);
    } finally {
      await mcp.close();
    }
  });
});
