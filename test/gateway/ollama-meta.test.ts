/**
 * Ollama's metadata routes and error shapes on the gateway: `show` and `ps` with the official
 * `ollama` client, Ollama's `{"error":"…"}` on every /api/* failure (unknown routes, malformed JSON,
 * unknown models), and bodies read as JSON whatever their Content-Type, as Ollama's curl examples
 * send them. /api/v1/* (the OpenAI-shaped aliases) keep the OpenAI error shape.
 */
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PaidGateway, startPaidGateway } from "../support/paid-gateway.js";

const MODEL = "owlrun-test-scripted:tiny";
let gw: PaidGateway;

beforeAll(async () => {
  gw = await startPaidGateway(200);
  await gw.agent({ models: [MODEL], reply: ["Hi", "!"] });
});
afterAll(async () => {
  await gw?.close();
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${gw.url}${path}`, { method: "POST", body, headers });

describe("Ollama metadata and errors", () => {
  it("show: a served model's details and capabilities; an unknown one is Ollama's 404", async () => {
    const ollama = new Ollama({ host: gw.url });
    const shown = await ollama.show({ model: MODEL });
    expect(shown.capabilities).toEqual(["completion"]);
    expect(shown.details.format).toBe("gguf");
    expect(typeof shown.modelfile).toBe("string");
    expect(typeof shown.template).toBe("string");
    const err = (await ollama.show({ model: "nope:1b" }).catch((e: unknown) => e)) as {
      error: string;
      status_code: number;
    };
    expect(err.status_code).toBe(404);
    expect(err.error).toBe("model 'nope:1b' not found");
  });

  it("ps: the models running on the network", async () => {
    const running = await new Ollama({ host: gw.url }).ps();
    expect(running.models.map((m) => m.name)).toEqual([MODEL]);
    expect(running.models[0]).toMatchObject({ model: MODEL, size: 0, size_vram: 0 });
    expect(Date.parse(String(running.models[0]!.expires_at))).toBeGreaterThan(Date.now());
  });

  it("answers unknown /api routes, malformed JSON and bad bodies in Ollama's shape", async () => {
    for (const res of [
      await fetch(`${gw.url}/api/pull-this`),
      await post("/api/delete", "{}"),
      await post("/api/chat", "{not json", { "content-type": "application/json" }),
      await post("/api/show", "[1,2", {}),
      await post("/api/chat", JSON.stringify({ model: 7 }), { "content-type": "application/json" }),
    ]) {
      const body = (await res.json()) as { error: unknown };
      expect([400, 404]).toContain(res.status);
      expect(typeof body.error, JSON.stringify(body)).toBe("string");
    }
  });

  it("keeps the OpenAI error shape on the /api/v1 aliases and on /v1", async () => {
    for (const path of ["/api/v1/nothing-here", "/v1/nothing-here"]) {
      const body = (await (await fetch(`${gw.url}${path}`)).json()) as { error: { type: string } };
      expect(body.error.type).toBe("not_found");
    }
  });

  it("reads a body sent without a JSON Content-Type (curl -d), paid with X-Cashu", async () => {
    const token = await gw.token(20);
    // What `curl http://…/api/chat -d '{…}'` sends: application/x-www-form-urlencoded.
    const res = await post(
      "/api/chat",
      JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: false }),
      { "content-type": "application/x-www-form-urlencoded", "x-cashu": token },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { message: { content: string }; cost: { sats: number } };
    expect(body.message.content).toBe("Hi!");
    expect(await gw.receive(res.headers.get("x-cashu-change")!)).toBe(20 - body.cost.sats);
    // And with no Content-Type at all.
    const bare = await fetch(`${gw.url}/api/show`, {
      method: "POST",
      body: new Blob([JSON.stringify({ model: MODEL })]),
    });
    expect(bare.status).toBe(200);
    expect(((await bare.json()) as { capabilities: string[] }).capabilities).toEqual(["completion"]);
  });
});
