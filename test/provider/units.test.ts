/**
 * Provider pieces without inference: reconnect backoff, frame splitting, gateway frame validation,
 * the node identity file (self signup, 0600), the generated GGUF files.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  backoffDelay,
  ensureTestModels,
  loadIdentity,
  MAX_CHUNK_BYTES,
  modelIdForFile,
  parseGatewayFrame,
  RANDOM_MODEL_ID,
  SCRIPTED_MODEL_ID,
  splitUtf8,
} from "../../provider/index.js";
import { FrameBatcher } from "../../provider/frames.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { type FakeGateway, startFakeGateway } from "../support/fake-gateway.js";

describe("reconnect backoff", () => {
  it("doubles from 1 s to 30 s, with up to half of each step random", () => {
    const low = (n: number) => backoffDelay(n, 1000, 30_000, () => 0);
    const high = (n: number) => backoffDelay(n, 1000, 30_000, () => 1);
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(high)).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
    expect([0, 1, 5, 50].map(low)).toEqual([500, 1000, 15_000, 15_000]);
    const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(3, 1000, 30_000)));
    expect(spread.size).toBeGreaterThan(10);
    for (const d of spread) expect(d).toBeGreaterThanOrEqual(4000);
  });
});

describe("proxy_chunk splitting", () => {
  it("keeps frames within 4 KiB of UTF-8 and never cuts a character", () => {
    expect(splitUtf8("short")).toEqual(["short"]);
    const text = `data: ${"é🦉a".repeat(3000)}\n\n`;
    const parts = splitUtf8(text);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.join("")).toBe(text);
    for (const p of parts) {
      expect(Buffer.byteLength(p)).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
      expect(p).not.toContain("\uFFFD");
    }
  });
});

describe("gateway frames", () => {
  it("validates known messages, ignores unknown types, accepts Go nulls, rejects the rest", () => {
    expect(parseGatewayFrame('{"type":"ping"}')).toEqual({ kind: "message", msg: { type: "ping" } });
    expect(
      parseGatewayFrame(
        '{"type":"job","job_id":"j1","model":"m:1b","vram_required_mb":0,"buyer_region":"","free_tier":false,"new":1}',
      ),
    ).toMatchObject({ kind: "message", msg: { type: "job", job_id: "j1", model: "m:1b", new: 1 } });
    expect(parseGatewayFrame('{"type":"heartbeat_ack","broadcasts":null,"withdraw_history":null}').kind).toBe(
      "message",
    );
    expect(parseGatewayFrame('{"type":"hello_from_the_future"}')).toEqual({
      kind: "ignore",
      type: "hello_from_the_future",
    });
    for (const bad of [
      "",
      "{",
      "[]",
      "null",
      "3",
      '{"type":1}',
      '{"type":"job","job_id":"j"}',
      '{"type":"cancel"}',
    ]) {
      expect(parseGatewayFrame(bad).kind).toBe("invalid");
    }
  });
});

describe("node identity", () => {
  let fake: FakeGateway;
  beforeAll(async () => {
    fake = await startFakeGateway();
  });
  afterAll(async () => {
    await fake.close();
  });

  it("signs up once, keeps key and node id in node.json (0600), reuses them", async () => {
    const dir = tempDir();
    const first = await loadIdentity({ dir, gateway: fake.url, log: silentLogger });
    expect(first.signedUp).toBe(true);
    expect(first.apiKey).toMatch(/^owlr_prov_/);
    expect(first.nodeId).toMatch(/^owlrun-[0-9a-f-]{36}$/);
    expect(first.path).toBe(join(dir, "node.json"));
    expect(statSync(first.path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(first.path, "utf8"))).toEqual({
      node_id: first.nodeId,
      keys: { [fake.url]: first.apiKey },
    });
    const again = await loadIdentity({ dir, gateway: fake.url, log: silentLogger });
    expect(again).toEqual({ ...first, signedUp: false });
    expect(fake.signups).toHaveLength(1);
    // a key given by the operator wins and is kept; another gateway gets its own key
    const given = await loadIdentity({
      dir,
      gateway: fake.url,
      apiKey: "owlr_prov_given",
      log: silentLogger,
    });
    expect(given.apiKey).toBe("owlr_prov_given");
    expect(given.nodeId).toBe(first.nodeId);
    const other = await loadIdentity({
      dir,
      gateway: "http://other.example",
      apiKey: "k2",
      log: silentLogger,
    });
    expect(other.nodeId).toBe(first.nodeId);
    expect(JSON.parse(readFileSync(first.path, "utf8")).keys).toEqual({
      [fake.url]: "owlr_prov_given",
      "http://other.example": "k2",
    });
  });

  it("reads the older one-key layout, and says what to do when signup is closed", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "node.json"),
      JSON.stringify({ api_key: "owlr_prov_old", node_id: "owlrun-old", gateway: fake.url }),
    );
    expect(await loadIdentity({ dir, gateway: fake.url, log: silentLogger })).toMatchObject({
      apiKey: "owlr_prov_old",
      nodeId: "owlrun-old",
    });
    fake.signupOpen = false;
    try {
      await expect(loadIdentity({ dir: tempDir(), gateway: fake.url, log: silentLogger })).rejects.toThrow(
        /HTTP 403.*--api-key.*provider-key/,
      );
    } finally {
      fake.signupOpen = true;
    }
    await expect(
      loadIdentity({ dir: tempDir(), gateway: "http://127.0.0.1:9", log: silentLogger, signupAttempts: 1 }),
    ).rejects.toThrow(/could not reach the gateway/);
  });
});

describe("generated test models", () => {
  it("writes valid GGUF v3 files once into the data dir, named as test models", () => {
    const dir = tempDir();
    const paths = ensureTestModels(dir);
    expect(Object.keys(paths).sort()).toEqual([RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort());
    for (const id of Object.keys(paths)) expect(id).toMatch(/^owlrun-test-/);
    for (const path of Object.values(paths)) {
      const head = readFileSync(path).subarray(0, 8);
      expect(head.subarray(0, 4).toString("ascii")).toBe("GGUF");
      expect(head.readUInt32LE(4)).toBe(3);
      expect(statSync(path).size).toBeLessThan(2_000_000);
    }
    const mtime = statSync(paths[SCRIPTED_MODEL_ID]!).mtimeMs;
    expect(ensureTestModels(dir)).toEqual(paths);
    expect(statSync(paths[SCRIPTED_MODEL_ID]!).mtimeMs).toBe(mtime);
    expect(modelIdForFile("/models/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf")).toBe("qwen2.5-0.5b-instruct-q4_k_m");
  });
});

describe("FrameBatcher", () => {
  it("sends the first text at once, coalesces the rest in order, never over a frame's size", () => {
    const frames: string[] = [];
    const b = new FrameBatcher((d) => frames.push(d), 60_000);
    b.push("data: 1\n\n");
    expect(frames).toEqual(["data: 1\n\n"]);
    b.push("data: 2\n\n");
    b.push("data: 3\n\n");
    expect(frames).toHaveLength(1); // inside the window: held
    b.flush();
    expect(frames).toEqual(["data: 1\n\n", "data: 2\n\ndata: 3\n\n"]);
    const big = `data: ${"🦉".repeat(MAX_CHUNK_BYTES / 2)}\n\n`;
    b.push("data: 4\n\n");
    b.push(big);
    b.flush();
    expect(frames.slice(2, 3)).toEqual(["data: 4\n\n"]);
    expect(frames.slice(3).join("")).toBe(big);
    for (const f of frames) expect(Buffer.byteLength(f)).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
  });

  it("sends text pushed `now` at once, after what was pending (a stream's first token)", () => {
    const frames: string[] = [];
    const b = new FrameBatcher((d) => frames.push(d), 60_000);
    b.push("data: role\n\n");
    b.push("data: empty\n\n");
    expect(frames).toEqual(["data: role\n\n"]);
    b.push("data: first token\n\n", true);
    expect(frames).toEqual(["data: role\n\n", "data: empty\n\ndata: first token\n\n"]);
    b.push("data: second\n\n");
    expect(frames).toHaveLength(2); // the window applies again
    b.flush();
    expect(frames[2]).toBe("data: second\n\n");
  });

  it("with a zero window sends every text as it comes", () => {
    const frames: string[] = [];
    const b = new FrameBatcher((d) => frames.push(d), 0);
    for (const t of ["a", "b", "c"]) b.push(t);
    expect(frames).toEqual(["a", "b", "c"]);
  });
});
