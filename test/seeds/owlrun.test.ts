/**
 * The Owlrun seed (shared/seeds/owlrun-chat-and-api.txt), its examples as written: the curl
 * lines, the Python and JS stream clients (transcribed line by line), /v1/models, the error table.
 * The clients send no stream-format header: they read `message.content` and the `cashu_change`
 * event from the default stream.
 */
import { join } from "node:path";
import { PaymentRequest } from "@cashu/cashu-ts";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminToken } from "../../gateway/index.js";
import { Accounts } from "../../gateway/ledger/index.js";
import { SCRIPTED_ANSWER } from "../../provider/index.js";
import { MODEL, type SeedNet, sseData, startSeedNet } from "./harness.js";

let net: SeedNet;
beforeAll(async () => {
  net = await startSeedNet();
}, 120_000);
afterAll(async () => {
  await net?.close();
});

const KEY = "owlr_buy_YOUR_KEY";

describe("Owlrun seed: chat with ecash", () => {
  it("curl -X POST …/v1/chat/completions with X-Cashu, stream: change is the last SSE event", async () => {
    // curl -X POST $API/v1/chat/completions -H "Content-Type: application/json"
    //   -H "Authorization: Bearer YOUR_API_KEY" -H "X-Cashu: cashuA…" -d '{…,"stream":true}'
    const token = await net.token(50, "A");
    const res = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: "Bearer YOUR_API_KEY",
        "X-Cashu": token,
      },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hello" }], stream: true }),
    });
    expect(res.status).toBe(200);
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe("[DONE]");
    const events = data.slice(0, -1).map((d) => JSON.parse(d));
    // data: {"model":"…","message":{"content":"Hello!"},"done":false}
    const answer = events.filter((e) => e.done === false).map((e) => e.message.content);
    expect(answer.join("")).toBe(SCRIPTED_ANSWER);
    expect(events.every((e) => e.model === MODEL)).toBe(true);
    // data: {"model":"…","message":{"content":""},"done":true,…}
    expect(events.some((e) => e.done === true && e.message.content === "")).toBe(true);
    // data: {"type":"cashu_change","token":"cashuA…","change_sats":48}, the last event
    const change = events.at(-1);
    expect(change.type).toBe("cashu_change");
    expect(change.token.startsWith("cashuA")).toBe(true);
    expect(change.change_sats).toBe(48); // a tiny job costs the 2-sat floor
    expect(await net.receive(change.token)).toBe(48);
  });

  it("the seed's Python client (requests, iter_lines) prints the answer and the change", async () => {
    const API = net.url;
    const TOKEN = await net.token(40, "A");
    const resp = await fetch(`${API}/v1/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${KEY}`, "X-Cashu": TOKEN, "Content-Type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "What is Bitcoin?" }],
        stream: true,
      }),
    });
    let printed = "";
    let changeToken: string | null = null;
    let changeSats = 0;
    // for line in resp.iter_lines():
    for (const line of (await resp.text()).split(/\r?\n/)) {
      if (!line) continue;
      let text = line;
      if (text.startsWith("data: ")) text = text.slice(6);
      try {
        const data = JSON.parse(text);
        if (data?.type === "cashu_change") {
          changeToken = data.token;
          changeSats = data.change_sats;
        } else if (data?.message?.content) {
          printed += data.message.content;
        }
      } catch {
        // except json.JSONDecodeError: pass
      }
    }
    expect(printed).toBe(SCRIPTED_ANSWER);
    expect(changeToken).toMatch(/^cashuA/);
    expect(await net.receive(changeToken!)).toBe(changeSats);
    expect(changeSats).toBe(38);
  });

  it("the seed's JS client (fetch + getReader, buffered lines) prints the answer and the change", async () => {
    const resp = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        Authorization: "Bearer owlr_buy_YOUR_KEY",
        "X-Cashu": await net.token(30),
        "Content-Type": "application/json",
      },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "What is Bitcoin?" }],
        stream: true,
      }),
    });
    let stdout = "";
    let saved: { token: string; change_sats: number } | undefined;
    const reader = resp.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        const trimmed = line.trim();
        if (!trimmed) continue;
        const data = trimmed.startsWith("data: ") ? trimmed.slice(6) : trimmed;
        try {
          const parsed = JSON.parse(data);
          if (parsed.type === "cashu_change") {
            saved = parsed; // Save parsed.token for next request
          } else if (parsed.message?.content) {
            stdout += parsed.message.content;
          }
        } catch {
          // not JSON ([DONE])
        }
      }
    }
    expect(stdout).toBe(SCRIPTED_ANSWER);
    expect(saved!.change_sats).toBe(28);
    expect(await net.receive(saved!.token)).toBe(28);
  });

  it("the same default stream works with the openai SDK: text from choices, usage in the last chunk", async () => {
    const client = new OpenAI({
      baseURL: `${net.url}/v1`,
      apiKey: KEY,
      defaultHeaders: { "X-Cashu": await net.token(20) },
    });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Hello" }],
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk as any);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe(SCRIPTED_ANSWER);
    // OpenAI convention: the usage chunk is the last chunk before [DONE]; it is also the change.
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.usage.completion_tokens).toBeGreaterThan(0);
    expect(chunks.filter((c) => c.usage).length).toBe(1);
    expect(last).toMatchObject({ type: "cashu_change", change_sats: 20 - last.usage.cost.sats });
    expect(await net.receive(last.token)).toBe(last.change_sats);
  });

  it("curl -N with the seed's owlr_buy_ key: the stream answers (the Bearer key is not needed with X-Cashu)", async () => {
    const res = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        Authorization: "Bearer owlr_buy_YOUR_KEY",
        "X-Cashu": await net.token(10),
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hello" }], stream: true }),
    });
    const events = sseData(await res.text());
    const last = JSON.parse(events.at(-2)!);
    expect(last.type).toBe("cashu_change");
    expect(await net.receive(last.token)).toBe(last.change_sats);
  });
});

describe("Owlrun seed: endpoints", () => {
  it("curl $API/v1/models | jq: the Owlrun pricing shape", async () => {
    const body = (await (await fetch(`${net.url}/v1/models`)).json()) as any;
    expect(body.object).toBe("list");
    const m = body.data.find((x: any) => x.id === MODEL);
    expect(m).toMatchObject({
      object: "model",
      owned_by: "owlrun",
      pricing: { per_m_input_usd: 0.02, per_m_output_usd: 0.06 },
    });
  });

  it("GET /v1/broadcasts: the system announcements the operator published", async () => {
    const token = adminToken(join(net.dir, "gateway"));
    const res = await fetch(`${net.url}/v1/admin/broadcasts`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ message: "Beta: new nodes online", expires_in_seconds: 600 }),
    });
    expect(res.status).toBe(201);
    const body = (await (await fetch(`${net.url}/v1/broadcasts`)).json()) as any;
    expect(body.broadcasts.map((b: any) => b.message)).toEqual(["Beta: new nodes online"]);
  });

  it("GET /v1/oracle/rate: current BTC/USD rate, margins (inference + FX), the pricing formula", async () => {
    const r = (await (await fetch(`${net.url}/v1/oracle/rate`)).json()) as any;
    expect(r.pricing_rate).toBe(100_000);
    expect(r.live.btc_usd).toBe(100_000);
    expect(r.formula).toContain("max(2,");
    expect(r.margin).toMatchObject({ provider_pct: 95, inference_pct: 5, fx_pct: 0, gateway_pct: 5 });
    expect(r.margin.gateway_pct).toBeLessThan(10); // "Gateway margin: under 10%"
    expect(r.margin.floor).toEqual({ sats: 2, provider_sats: 1, gateway_sats: 1 });
    const stats = (await (await fetch(`${net.url}/v1/stats`)).json()) as any;
    expect(stats.btc_usd).toBe(r.pricing_rate);
  });

  it("GET /healthz answers {status: ok}", async () => {
    expect(await (await fetch(`${net.url}/healthz`)).json()).toEqual({ status: "ok" });
  });

  it("GET /v1/completions is served too (POST, completion inference)", async () => {
    const res = await fetch(`${net.url}/v1/completions`, {
      method: "POST",
      headers: { "X-Cashu": await net.token(10), "Content-Type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "Hello", max_tokens: 8 }),
    });
    expect(res.status).toBe(200);
    expect(await net.receive(res.headers.get("x-cashu-change")!)).toBeGreaterThan(0);
  });
});

describe("Owlrun seed: pricing", () => {
  it("minimum per job 2 sats: 1 to the provider, 1 to the gateway", async () => {
    const ledger = net.gateway.gateway.ledger;
    const node = Accounts.provider(net.provider.nodeId);
    const before = await ledger.balance(node);
    const res = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "X-Cashu": await net.token(5), "Content-Type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hi" }] }),
    });
    expect(res.headers.get("x-cost-sats")).toBe("2");
    expect(res.headers.get("x-owlrun-node")).toBe(net.provider.nodeId);
    expect((await ledger.balance(node)) - before).toBe(1000);
    expect(await net.receive(res.headers.get("x-cashu-change")!)).toBe(3);
  });
});

describe("Owlrun seed: the error table", () => {
  const chat = (headers: Record<string, string>, model = MODEL) =>
    fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "Hello" }], stream: true }),
    });

  it("400: invalid X-Cashu token", async () => {
    const res = await chat({ "X-Cashu": "cashuAnot-a-token" });
    expect(res.status).toBe(400);
  });

  it("400 for an underpaid token too, with a fresh X-Cashu payment request (NUT-24)", async () => {
    const res = await chat({ "X-Cashu": await net.token(1) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.type).toBe("insufficient_payment");
    const request = PaymentRequest.fromEncodedRequest(res.headers.get("x-cashu")!);
    expect(request.mints).toEqual([net.mintUrl]);
    expect(Number(request.amount)).toBeGreaterThanOrEqual(2);
  });

  it("402: proofs spent", async () => {
    const token = await net.token(5);
    const first = await chat({ "X-Cashu": token });
    await first.text();
    const again = await chat({ "X-Cashu": token });
    expect(again.status).toBe(402);
  });

  it("503: no nodes for the model; the proofs come back in X-Cashu-Change, not SSE", async () => {
    const token = await net.token(7);
    const res = await chat({ "X-Cashu": token }, "no-such-model:1b");
    expect(res.status).toBe(503);
    expect(await net.receive(res.headers.get("x-cashu-change")!)).toBe(7);
  });
});
