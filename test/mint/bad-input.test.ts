/**
 * Every endpoint refuses bad input with the NUT-00 error shape and changes nothing: after all the
 * refused requests the proofs used in them are still UNSPENT and still swap normally.
 */
import { hashToCurve, type Proof } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { externalInvoice, postJson, randomOutputs, rawProofs } from "../support/blinded.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

let mint: CliProcess;
let proofs: Proof[];
let keysetId: string;
let inputs: ReturnType<typeof rawProofs>;

beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  const wallet = await newWallet(mint.url);
  proofs = await mintProofs(wallet, 13);
  keysetId = proofs[0]!.id;
  inputs = rawProofs(proofs);
});
afterAll(async () => {
  await mint.stop();
});

// x = 0 is not on secp256k1 (7 is not a square mod p): well-formed hex, invalid point
const offCurvePoint = `02${"00".repeat(32)}`;

function expectNutError(res: { status: number; body: any }, status: number, code?: number) {
  expect(res.status).toBe(status);
  expect(typeof res.body.detail).toBe("string");
  expect(typeof res.body.code).toBe("number");
  if (code !== undefined) expect(res.body.code).toBe(code);
}

describe("bad input is refused cleanly", () => {
  it("swap", async () => {
    const url = `${mint.url}/v1/swap`;
    const good = () => randomOutputs(13, keysetId);
    expectNutError(await postJson(url, "{not json"), 400, 0);
    expectNutError(await postJson(url, "[]"), 400, 0);
    expectNutError(await postJson(url, { inputs: [], outputs: good() }), 400, 0);
    expectNutError(await postJson(url, { inputs, outputs: [] }), 400, 0);
    expectNutError(await postJson(url, { inputs: [{ ...inputs[0], C: "zz" }], outputs: good() }), 400, 0);
    expectNutError(await postJson(url, { inputs: [{ ...inputs[0], amount: -1 }], outputs: good() }), 400, 0);
    expectNutError(await postJson(url, { inputs: [{ ...inputs[0], amount: 1.5 }], outputs: good() }), 400, 0);
    // a valid point that is not the signature
    const wrongC = inputs.map((p, i) => (i === 0 ? { ...p, C: inputs[1]!.C } : p));
    expectNutError(await postJson(url, { inputs: wrongC, outputs: good() }), 400, 10001);
    // amount changed: the signature no longer matches
    const wrongAmount = inputs.map((p, i) => (i === 0 ? { ...p, amount: p.amount * 2 } : p));
    expectNutError(await postJson(url, { inputs: wrongAmount, outputs: good() }), 400, 10001);
    const unknownKeyset = inputs.map((p) => ({ ...p, id: `01${"ab".repeat(32)}` }));
    expectNutError(await postJson(url, { inputs: unknownKeyset, outputs: good() }), 400, 12001);
    expectNutError(await postJson(url, { inputs, outputs: randomOutputs(12, keysetId) }), 400, 11005);
    expectNutError(await postJson(url, { inputs, outputs: randomOutputs(14, keysetId) }), 400, 11005);
    expectNutError(await postJson(url, { inputs: [...inputs, inputs[0]], outputs: good() }), 400, 11007);
    const dupOut = randomOutputs(2, keysetId)[0]!;
    const dupOuts = [dupOut, dupOut, ...randomOutputs(9, keysetId)];
    expectNutError(await postJson(url, { inputs, outputs: dupOuts }), 400, 11008);
    const three = [{ ...randomOutputs(1, keysetId)[0]!, amount: 3 }, ...randomOutputs(10, keysetId)];
    expectNutError(await postJson(url, { inputs, outputs: three }), 400, 11006);
    const offCurve = good().map((o, i) => (i === 0 ? { ...o, B_: offCurvePoint } : o));
    expectNutError(await postJson(url, { inputs, outputs: offCurve }), 400, 0);
    const nut10 = [{ ...inputs[0]!, secret: '["P2PK",{"nonce":"00","data":"02"}]' }];
    expectNutError(
      await postJson(url, { inputs: nut10, outputs: randomOutputs(inputs[0]!.amount, keysetId) }),
      400,
      10001,
    );
    const many = Array.from({ length: 1001 }, () => inputs[0]);
    expectNutError(await postJson(url, { inputs: many, outputs: good() }), 400, 0);
    const huge = await postJson(url, { inputs, outputs: good(), padding: "x".repeat(600 * 1024) });
    expectNutError(huge, 413);
  });

  it("mint quote and mint", async () => {
    const q = `${mint.url}/v1/mint/quote/bolt11`;
    expectNutError(await postJson(q, { amount: 0, unit: "sat" }), 400, 0);
    expectNutError(await postJson(q, { amount: -5, unit: "sat" }), 400, 0);
    expectNutError(await postJson(q, { amount: 1e18, unit: "sat" }), 400, 0);
    expectNutError(await postJson(q, { amount: 2_000_000, unit: "sat" }), 400, 11006);
    expectNutError(await postJson(q, { amount: 10, unit: "usd" }), 400, 11013);
    expectNutError(await postJson(q, { amount: 10, unit: "sat", description: "d".repeat(700) }), 400, 0);
    const missing = await fetch(`${q}/0190b7a0-0000-7000-8000-000000000000`);
    expect(missing.status).toBe(404);

    const m = `${mint.url}/v1/mint/bolt11`;
    expectNutError(await postJson(m, { quote: "nope", outputs: randomOutputs(4, keysetId) }), 404);
    const quote = (await postJson(q, { amount: 8, unit: "sat" })).body;
    await new Promise((r) => setTimeout(r, 100));
    expectNutError(
      await postJson(m, { quote: quote.quote, outputs: randomOutputs(7, keysetId) }),
      400,
      11005,
    );
    const ok = await postJson(m, { quote: quote.quote, outputs: randomOutputs(8, keysetId) });
    expect(ok.status).toBe(200);
    expectNutError(
      await postJson(m, { quote: quote.quote, outputs: randomOutputs(8, keysetId) }),
      400,
      20002,
    );
  });

  it("melt quote and melt", async () => {
    const q = `${mint.url}/v1/melt/quote/bolt11`;
    expectNutError(await postJson(q, { request: "lnbc1garbage", unit: "sat" }), 400, 0);
    expectNutError(await postJson(q, { request: externalInvoice(5), unit: "usd" }), 400, 11013);
    expectNutError(await postJson(q, { request: "", unit: "sat" }), 400, 0);
    const quote = (await postJson(q, { request: externalInvoice(12), unit: "sat" })).body;
    expect(quote.state).toBe("UNPAID");
    const m = `${mint.url}/v1/melt/bolt11`;
    // 12 + 2 reserve > 13
    expectNutError(await postJson(m, { quote: quote.quote, inputs }), 400, 11005);
    expectNutError(await postJson(m, { quote: "missing", inputs }), 404);
    const still = (await fetch(`${q}/${quote.quote}`).then((r) => r.json())) as any;
    expect(still.state).toBe("UNPAID");
  });

  it("checkstate, restore, keys and unknown routes", async () => {
    expectNutError(await postJson(`${mint.url}/v1/checkstate`, { Ys: [] }), 400, 0);
    expectNutError(await postJson(`${mint.url}/v1/checkstate`, { Ys: ["xyz"] }), 400, 0);
    expectNutError(await postJson(`${mint.url}/v1/restore`, { outputs: [] }), 400, 0);
    expectNutError(
      await postJson(`${mint.url}/v1/restore`, { outputs: [{ amount: 1, id: keysetId, B_: "00" }] }),
      400,
      0,
    );
    const keys = await fetch(`${mint.url}/v1/keys/01${"ab".repeat(32)}`);
    expect(keys.status).toBe(404);
    expect(((await keys.json()) as any).code).toBe(12001);
    expectNutError(await postJson(`${mint.url}/v1/mint/quote/bolt12`, { amount: 1, unit: "sat" }), 400);
    const nothing = await fetch(`${mint.url}/v2/nothing`);
    expect(nothing.status).toBe(404);
    expect(((await nothing.json()) as any).detail).toMatch(/No such endpoint/);
  });

  it("after all of that the proofs are untouched and still spend", async () => {
    const Ys = proofs.map((p) => hashToCurve(new TextEncoder().encode(p.secret)).toHex(true));
    const states = await postJson(`${mint.url}/v1/checkstate`, { Ys });
    expect(states.body.states.map((s: { state: string }) => s.state)).toEqual(Ys.map(() => "UNSPENT"));
    expect(states.body.states.map((s: { Y: string }) => s.Y)).toEqual(Ys);
    const swap = await postJson(`${mint.url}/v1/swap`, { inputs, outputs: randomOutputs(13, keysetId) });
    expect(swap.status).toBe(200);
    expect(swap.body.signatures).toHaveLength(3);
  });
});
