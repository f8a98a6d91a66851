/**
 * The package as users get it: `npm pack`, installed into an empty directory without dev
 * dependencies (so without node-llama-cpp), then run the way the README says: `npx owlrun-mcp
 * --help`, the MCP server over stdio with the real SDK client, `gateway` and `devnet` to
 * `listening`, the devnet once with an Ollama on loopback and once with nothing to serve from.
 * Slow (npm builds better-sqlite3 from source when no prebuilt binary is reachable), so it runs as
 * its own CI step: `npm run test:package`.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TOOL_NAMES } from "../../tools/index.js";
import { tempDir } from "../support/cli-process.js";
import { startOllamaDouble } from "../support/ollama-double.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const DEAD = "http://127.0.0.1:9";

let out: string;
let app: string;
let bin: string;
let tarball: string[];

/** Bytes under a directory (files only, symlinks not followed). */
function sizeOf(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += sizeOf(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

/** Environment for the installed CLI: its own data dir, quiet logs, no Ollama unless given. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  const base = { ...(process.env as Record<string, string>) };
  for (const k of Object.keys(base)) if (k.startsWith("OWLRUN_")) delete base[k];
  return { ...base, OWLRUN_DATA_DIR: tempDir("owlrun-pkg-data-"), OWLRUN_LOG_LEVEL: "warn", ...extra };
}

/** Runs the installed bin until it prints `listening <url>` (then SIGTERM) or exits. */
function runUntilListening(args: string[], extra: Record<string, string> = {}) {
  return new Promise<{ listening?: string; code: number | null; stdout: string; stderr: string }>(
    (resolvePromise) => {
      const child = spawn(bin, args, { cwd: app, env: env(extra), stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      let listening: string | undefined;
      child.stderr.on("data", (d) => (stderr += d));
      child.stdout.on("data", (d) => {
        stdout += d;
        const m = /^listening (\S+)$/m.exec(stdout);
        if (m && !listening) {
          listening = m[1];
          child.kill("SIGTERM");
        }
      });
      child.on("exit", (code) => resolvePromise({ listening, code, stdout, stderr }));
    },
  );
}

beforeAll(async () => {
  out = tempDir("owlrun-pack-");
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", out], { cwd: ROOT });
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  tarball = packed!.files.map((f) => f.path);
  app = join(out, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "owlrun-user", private: true }));
  await run(
    "npm",
    ["install", "--omit=dev", "--prefer-offline", "--no-audit", "--no-fund", join(out, packed!.filename)],
    { cwd: app, maxBuffer: 16 << 20 },
  );
  bin = join(app, "node_modules", ".bin", "owlrun-mcp");
  const mb = sizeOf(join(app, "node_modules")) / 1e6;
  process.stderr.write(`packed ${tarball.length} files; installed node_modules: ${mb.toFixed(1)} MB\n`);
}, 600_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("the packed package, installed without dev dependencies", () => {
  it("ships the built code and no source maps, tests or sources", () => {
    expect(tarball).toContain("dist/src/cli.js");
    expect(tarball).toContain(".well-known/mcp/server-card.json");
    expect(tarball.filter((f) => /\.map$|^test\/|\.ts$|^src\//.test(f))).toEqual([]);
    expect(existsSync(join(app, "node_modules", "node-llama-cpp"))).toBe(false);
  });

  it("npx owlrun-mcp --help prints the usage", async () => {
    const { stdout } = await run("npx", ["--offline", "owlrun-mcp", "--help"], { cwd: app, env: env() });
    expect(stdout).toMatch(/^owlrun-mcp \d+\.\d+\.\d+/);
    expect(stdout).toContain("owlrun-mcp devnet");
  });

  it("serves MCP over stdio: initialize and tools/list with the SDK client", async () => {
    const client = new Client({ name: "pkg-test", version: "0" });
    await client.connect(
      new StdioClientTransport({ command: bin, args: [], cwd: app, env: env({ OWLRUN_GATEWAY_URL: DEAD }) }),
    );
    try {
      expect(client.getServerVersion()?.name).toBeTruthy();
      expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
    } finally {
      await client.close();
    }
  });

  it("starts the gateway with its bundled mint", async () => {
    const r = await runUntilListening(["gateway", "--port", "0"]);
    expect(r.listening, r.stderr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(r.code).toBe(0);
  });

  describe("devnet without node-llama-cpp", () => {
    let ollama: Awaited<ReturnType<typeof startOllamaDouble>>;
    beforeAll(async () => {
      ollama = await startOllamaDouble(["double:1b"]);
    });
    afterAll(() => ollama?.close());

    it("serves from an Ollama that answers", async () => {
      const r = await runUntilListening(["devnet", "--port", "0", "--ollama-url", ollama.url]);
      expect(r.listening, r.stderr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(r.stdout).toMatch(/provider {2}\S+ on ollama: double:1b/);
      expect(r.code).toBe(0);
    });

    it("with no Ollama either, says in one line how to add the embedded backend", async () => {
      const r = await runUntilListening(["devnet", "--port", "0", "--ollama-url", DEAD]);
      expect(r.listening).toBeUndefined();
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split("\n");
      expect(lines.at(-1)).toMatch(/no Ollama at http:\/\/127\.0\.0\.1:9 .*npm i node-llama-cpp/);
    });
  });
});
