/**
 * The provider command as a process: self signup on first start, the identity kept in the data dir,
 * the embedded fallback when no Ollama answers, the facade's `listening` line, a status line per job
 * and the summary on SIGINT; a second start reuses the key and prints `provider connected`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RANDOM_MODEL_ID, SCRIPTED_ANSWER, SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { tempDir } from "../support/cli-process.js";
import { type FakeGateway, startFakeGateway } from "../support/fake-gateway.js";

const FIXTURE = resolve(import.meta.dirname, "fixtures/provider-cli.ts");
const NO_OLLAMA = "http://127.0.0.1:9";

interface Proc {
  child: ChildProcess;
  line: string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<Proc> {
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, ...args], {
    env: { ...process.env, OWLRUN_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no ${ready} within 30 s; stderr:\n${err}`));
    }, 30_000);
    void exit.then((code) => reject(new Error(`exited with ${code}; stderr:\n${err}`)));
    child.stdout!.on("data", (d) => {
      out += d;
      const m = ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolvePromise({ child, line: m[0], stderr: () => err, exit });
    });
  });
}

let fake: FakeGateway;
const dataDir = tempDir();
beforeAll(async () => {
  fake = await startFakeGateway();
});
afterAll(async () => {
  await fake?.close();
});

describe("owlrun-mcp provider", () => {
  it("signs up, falls back to the embedded backend, serves, prints status lines and a summary on SIGINT", async () => {
    const p = await run(
      [
        "--gateway",
        fake.url,
        "--data-dir",
        dataDir,
        "--ollama-url",
        NO_OLLAMA,
        "--facade-port",
        "0",
        "--lightning-address",
        "op@example.com",
      ],
      /^listening (http:\/\/127\.0\.0\.1:\d+)$/m,
    );
    try {
      expect(fake.signups).toHaveLength(1);
      const file = join(dataDir, "provider", "node.json");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const stored = JSON.parse(readFileSync(file, "utf8"));
      expect(stored.keys[fake.url]).toBe(fake.signups[0]);
      expect(fake.registrations[0]!.body).toMatchObject({
        node_id: stored.node_id,
        api_key: fake.signups[0],
        lightning_address: "op@example.com",
        models: [RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort(),
      });
      // the facade serves the same backend
      const facade = new Ollama({ host: p.line.slice("listening ".length) });
      expect((await facade.list()).models).toHaveLength(2);

      const r = await fake.offer(SCRIPTED_MODEL_ID, { messages: [{ role: "user", content: "hi" }] }).result;
      expect(r.text).toBe(SCRIPTED_ANSWER);
      await fake.until(() => /job job-\w{4} owlrun-test-scripted:tiny 6 tokens in \d+ ms/.test(p.stderr()));
    } finally {
      p.child.kill("SIGINT");
    }
    expect(await p.exit).toBe(0);
    expect(p.stderr()).toMatch(/served 1 jobs, 6 tokens, rejected 0, failed 0; earned 0 sats/);
  });

  it("starts again with the stored key and node id, and prints `provider connected`", async () => {
    const p = await run(["--data-dir", dataDir, "--embedded"], /^provider connected (\S+)$/m, {
      OWLRUN_GATEWAY: fake.url,
    });
    expect(p.line).toBe(`provider connected ${fake.url}`);
    expect(fake.signups).toHaveLength(1);
    expect(fake.registrations.at(-1)!.body.node_id).toBe(fake.registrations[0]!.body.node_id);
    p.child.kill("SIGTERM");
    expect(await p.exit).toBe(0);
    expect(p.stderr()).toMatch(/served 0 jobs/);
  });
});
