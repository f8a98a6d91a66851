/**
 * NUT-19: a wallet that lost the answer to a swap, mint or melt sends the same request again and
 * gets the same signatures, not "already spent" — also after a kill -9 of the mint, since answers
 * are kept in the same transaction that spent the inputs. The real cashu-ts wallet retries by itself
 * through a proxy that loses the first answer.
 */
import { sumProofs } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { externalInvoice, postJson, randomOutputs, rawProofs } from "../support/blinded.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type FlakyProxy, startFlakyProxy } from "../support/flaky-proxy.js";

const dir = tempDir();
const args = ["mint", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"];
let mint: CliProcess;

async function paidQuote(url: string, amount: number): Promise<string> {
  const q = (await postJson(`${url}/v1/mint/quote/bolt11`, { amount, unit: "sat" })).body.quote as string;
  for (let i = 0; i < 200; i++) {
    const state = ((await (await fetch(`${url}/v1/mint/quote/bolt11/${q}`)).json()) as { state: string })
      .state;
    if (state === "PAID") return q;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("quote not paid");
}

beforeAll(async () => {
  mint = await startCli(args);
});
afterAll(async () => {
  expect(await mint.stop()).toBe(0);
});

describe("NUT-19 cached responses", () => {
  it("advertises swap, mint and melt as cached, with a ttl", async () => {
    const info = (await (await fetch(`${mint.url}/v1/info`)).json()) as { nuts: Record<string, any> };
    expect(info.nuts["19"].ttl).toBeGreaterThan(0);
    expect(info.nuts["19"].cached_endpoints).toEqual(
      expect.arrayContaining(
        ["/v1/swap", "/v1/mint/bolt11", "/v1/melt/bolt11"].map((path) => ({ method: "POST", path })),
      ),
    );
  });

  it("mint and swap: the identical request again answers the same signatures; another one is refused", async () => {
    const keysetId = ((await (await fetch(`${mint.url}/v1/keys`)).json()) as any).keysets[0].id as string;
    const quote = await paidQuote(mint.url, 8);
    const mintReq = { quote, outputs: randomOutputs(8, keysetId) };
    const minted = await postJson(`${mint.url}/v1/mint/bolt11`, mintReq);
    expect(minted.status).toBe(200);
    expect(await postJson(`${mint.url}/v1/mint/bolt11`, mintReq)).toEqual(minted);
    const other = await postJson(`${mint.url}/v1/mint/bolt11`, {
      quote,
      outputs: randomOutputs(8, keysetId),
    });
    expect(other.body.code).toBe(20002);

    const wallet = await newWallet(mint.url);
    const proofs = await mintProofs(wallet, 16);
    const swapReq = { inputs: rawProofs(proofs), outputs: randomOutputs(16, keysetId) };
    const swapped = await postJson(`${mint.url}/v1/swap`, swapReq);
    expect(swapped.status).toBe(200);
    expect(await postJson(`${mint.url}/v1/swap`, swapReq)).toEqual(swapped);
    const double = await postJson(`${mint.url}/v1/swap`, {
      ...swapReq,
      outputs: randomOutputs(16, keysetId),
    });
    expect(double.body.code).toBe(11001);

    // Answers survive a kill -9: they were written with the spend.
    await mint.kill();
    mint = await startCli(args);
    expect(await postJson(`${mint.url}/v1/swap`, swapReq)).toEqual(swapped);
  });

  it("melt: the identical request again answers the paid quote with the same change", async () => {
    const wallet = await newWallet(mint.url);
    const proofs = await mintProofs(wallet, 40);
    const keysetId = proofs[0]!.id;
    const quote = (
      await postJson(`${mint.url}/v1/melt/quote/bolt11`, { request: externalInvoice(20), unit: "sat" })
    ).body;
    const req = { quote: quote.quote, inputs: rawProofs(proofs), outputs: randomOutputs(3, keysetId) };
    const paid = await postJson(`${mint.url}/v1/melt/bolt11`, req);
    expect(paid.body.state).toBe("PAID");
    expect(paid.body.change.length).toBeGreaterThan(0);
    const again = await postJson(`${mint.url}/v1/melt/bolt11`, req);
    expect(again.status).toBe(200);
    expect(again.body.change).toEqual(paid.body.change);
    expect(again.body.payment_preimage).toBe(paid.body.payment_preimage);
  });

  describe("the real wallet retries a lost answer", () => {
    let proxy: FlakyProxy;
    beforeAll(async () => {
      proxy = await startFlakyProxy(mint.url);
    });
    afterAll(async () => {
      await proxy.close();
    });

    it("swap: cashu-ts sends again after the connection drops and keeps its ecash", async () => {
      const funder = await newWallet(mint.url);
      const proofs = await mintProofs(funder, 32);
      const wallet = await newWallet(proxy.url);
      proxy.dropAnswers.set("/v1/swap", 1);
      const { keep, send } = await wallet.send(10, proofs, { includeFees: false });
      expect(proxy.dropAnswers.get("/v1/swap")).toBe(0);
      expect(sumProofs(keep).toNumber() + sumProofs(send).toNumber()).toBe(32);
      const states = await wallet.checkProofsStates([...keep, ...send]);
      expect(new Set(states.map((s) => s.state))).toEqual(new Set(["UNSPENT"]));
    });

    it("mint: cashu-ts gets its proofs although the first answer was lost", async () => {
      const wallet = await newWallet(proxy.url);
      const quote = await paidQuote(mint.url, 21);
      proxy.dropAnswers.set("/v1/mint/bolt11", 1);
      const proofs = await wallet.mintProofsBolt11(21, quote);
      expect(proxy.dropAnswers.get("/v1/mint/bolt11")).toBe(0);
      expect(sumProofs(proofs).toNumber()).toBe(21);
    });
  });
});
