/**
 * KNOWN BUG (found by the kill -9 soak over three gateway processes, test/long/cluster-soak.test.ts;
 * also possible on one SQLite process, where the window is shorter): a crash after the claim's
 * swap stored the new proofs in the gateway's pool (which resolves the swap's counter range in the
 * same step) and before the ledger funded the request's reserved hold leaves the value in the
 * wallet with no ledger entry. The restart finds no open counter range to restore and credit, the
 * hold is released with nothing in it, and the client's token is spent with no change under its
 * request id: the ledger's ecash is below the wallet's proofs by the token's value.
 *
 * `it.fails` documents it until it is fixed (then drop `.fails`): the claim needs a trace that
 * outlives the pool step until the hold is funded (e.g. the claim op kept on the stored proofs, or
 * the counter range resolved only after `fundCashuHold`, with recovery crediting proofs it already
 * holds).
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { getEncodedToken } from "@cashu/cashu-ts";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { claimOp } from "../../gateway/payments/claims.js";
import { silentLogger } from "../../src/shared/index.js";
import { inspectToken } from "../../src/shared/ecash/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { readGatewayBooks } from "../support/money.js";

let mint: CliProcess;
const dataDir = join(tempDir("owlrun-claim-unfunded-"), "gateway");
const running: RunningGateway[] = [];

const gateway = async () => {
  const gw = await startGateway({
    dataDir,
    trustedMints: [mint.url],
    port: 0,
    offlineBtcUsd: 100_000,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
  });
  running.push(gw);
  return gw;
};

beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
});
afterAll(async () => {
  for (const gw of running) await gw.close().catch(() => undefined);
  await mint?.stop();
});

it(
  "a token claimed into the pool before its hold was funded comes back as change after a restart",
  async () => {
    const first = await gateway();
    const client = await newWallet(mint.url);
    const token = getEncodedToken({ mint: mint.url, proofs: await mintProofs(client, 20) });
    const holdId = randomUUID();
    // What CashuPayments.open does up to the crash: the id reserved, the token swapped into the pool…
    await first.gateway.ledger.reserveCashuHold(holdId, mint.url, "B", "chat test");
    await first.gateway.wallet.claim(inspectToken(token), claimOp.xcashu("B", holdId));
    // …and the process dies before `fundCashuHold`.
    await first.close();

    const second = await gateway();
    const change = await second.gateway.wallet.change(holdId);
    const books = await readGatewayBooks(dataDir, mint.url);
    expect(books.ecashMsat).toBe(books.poolSat * 1000);
    expect(change?.amount).toBe(20);
  },
);
