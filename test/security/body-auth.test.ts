/**
 * Issue 15 item 7: nobody gets a body read before they are known. Each request announces a body of
 * several MiB and sends only its first bytes: the gateway must answer (401/403/404) from the
 * headers alone. The old code parsed up to ~7 MiB of delivery JSON before asking who was sending
 * it, so it sat waiting for the rest of the body and never answered.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { postJson } from "../support/payments.js";

let gw: CliProcess;
let accountKey: string;

beforeAll(async () => {
  gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  const reg = await postJson(`${gw.url}/v1/auth/register`, {});
  accountKey = ((await reg.json()) as { api_key: string }).api_key;
});
afterAll(async () => {
  await gw?.stop();
});

/**
 * Sends the headers of a `bytes`-long JSON POST and its first 1 KiB, then waits for an answer
 * without sending the rest. "no answer" when none came while the body was still owed.
 */
function answerBeforeBody(path: string, bytes: number, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: any } | "no answer">((resolve, reject) => {
    const req = request(new URL(path, gw.url), {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(bytes), ...headers },
    });
    const giveUp = setTimeout(() => {
      req.destroy();
      resolve("no answer");
    }, 15_000);
    req.on("response", (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        clearTimeout(giveUp);
        req.destroy();
        resolve({ status: res.statusCode!, body: JSON.parse(text) });
      });
    });
    req.on("error", (err) => {
      clearTimeout(giveUp);
      reject(err);
    });
    req.write(`{"filename":"a.bin","content_base64":"${"A".repeat(1000)}`);
  });
}

const MiB = 1024 * 1024;

describe("authentication before the body", () => {
  it("a market delivery without a key is refused from its headers", async () => {
    const res = await answerBeforeBody("/v1/market/tasks/t_x/deliver", 7 * MiB);
    expect(res).not.toBe("no answer");
    expect(res).toMatchObject({ status: 401, body: { error: { type: "invalid_key" } } });
  });

  it("a delivery from a known account that is not the task's hired worker is refused before the body", async () => {
    const res = await answerBeforeBody("/v1/market/tasks/t_nosuch/deliver", 7 * MiB, {
      authorization: `Bearer ${accountKey}`,
    });
    expect(res).not.toBe("no answer");
    expect((res as { status: number }).status).toBe(404);
  });

  it("every other market write without a key is refused before its body", async () => {
    for (const path of ["/v1/market/tasks", "/v1/market/tasks/t_x/quotes", "/v1/market/collect"]) {
      const res = await answerBeforeBody(path, MiB - 10, {});
      expect(res, path).toMatchObject({ status: 401 });
    }
  });

  it("provider registration with an unknown key is refused before its body", async () => {
    const res = await answerBeforeBody("/v1/gateway/register", 200 * 1024, {
      authorization: "Bearer owlr_prov_nope",
    });
    expect(res).toMatchObject({ status: 401, body: { error: { type: "invalid_key" } } });
  });
});
