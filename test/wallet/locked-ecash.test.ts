/**
 * Locked ecash through the MCP wallet tools (real MCP SDK clients over Streamable HTTP, the bundled
 * mint as a child process): Alice's `send` locks a token to Bob's key (`balance` shows it, as does
 * `owlrun-mcp wallet pubkey`, and the recovery phrase restores it); Alice herself cannot receive it
 * — refused before any swap — and Bob can. HTLC tokens need the preimage.
 */
import {
  createHTLCHash,
  getDecodedToken,
  getEncodedToken,
  getTokenMetadata,
  P2PKBuilder,
} from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMcpHttp, startMcpHttp } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { LocalWallet } from "../../src/wallet/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, runCli, startCli, tempDir } from "../support/cli-process.js";
import { callOk, callText, type Connected, connect, DEAD_GATEWAY } from "../mcp/harness.js";

let mint: CliProcess;
let alice: RunningMcpHttp;
let bob: RunningMcpHttp;
let a: Connected;
let b: Connected;
const bobDir = tempDir("owlrun-bob-");

beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "50"]);
  const common = { gatewayUrl: DEAD_GATEWAY, mintUrl: mint.url, port: 0, log: silentLogger };
  [alice, bob] = await Promise.all([
    startMcpHttp({ ...common, dataDir: tempDir("owlrun-alice-"), maxPerCallSat: 1000, maxPerDaySat: 5000 }),
    startMcpHttp({ ...common, dataDir: bobDir, maxPerCallSat: 1000, maxPerDaySat: 5000 }),
  ]);
  [a, b] = await Promise.all([connect(alice), connect(bob)]);
  const top = await callOk(a.client, "topup", { amount_sats: 200 });
  await callOk(a.client, "topup_status", { quote: top.quote, wait: true, timeout_seconds: 30 });
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await Promise.all([alice?.close(), bob?.close()]);
  await mint?.stop();
});

const balanceOf = async (c: Connected) => (await callOk(c.client, "balance")).total_sats as number;

describe("locked ecash in the MCP wallet", () => {
  let bobKey: string;

  it("each wallet has a lock key, derived from its seed: the CLI shows it and a restore keeps it", async () => {
    bobKey = (await callOk(b.client, "balance")).lock_pubkey;
    expect(bobKey).toMatch(/^0[23][0-9a-f]{64}$/);
    expect((await callOk(a.client, "balance")).lock_pubkey).not.toBe(bobKey);
    const shown = await runCli(["wallet", "pubkey", "--data-dir", bobDir]);
    expect(shown.code).toBe(0);
    expect(shown.stdout.trim().split("\n").at(-1)).toBe(bobKey);
    const phrase = LocalWallet.open(bobDir, silentLogger);
    const restored = LocalWallet.open(tempDir(), silentLogger, { restoreFrom: phrase.mnemonic });
    expect(restored.lockPubkey()).toBe(bobKey);
    phrase.close();
    restored.close();
  });

  it("send locked to Bob's key → Alice cannot receive it (refused before any swap), Bob can", async () => {
    const sent = await callOk(a.client, "send", { amount_sats: 30, lock_to_pubkey: bobKey });
    expect(sent.locked_to).toBe(bobKey);
    const meta = getTokenMetadata(sent.token);
    const wallet = await newWallet(mint.url);
    const proofs = getDecodedToken(
      sent.token,
      wallet.keyChain.getKeysets().map((k) => k.id),
    ).proofs;
    for (const p of proofs)
      expect(JSON.parse(p.secret)).toEqual(["P2PK", expect.objectContaining({ data: bobKey })]);
    expect(meta.amount.toNumber()).toBe(30);
    const before = await balanceOf(a);

    const stolen = await callText(a.client, "receive", { token: sent.token });
    expect(stolen.isError).toBe(true);
    expect(stolen.text).toMatch(/locked to .*not to this wallet's key/);
    expect(await balanceOf(a)).toBe(before);
    // Nothing reached the mint: the proofs are still unspent.
    const states = await wallet.checkProofsStates(proofs);
    expect(new Set(states.map((s) => s.state))).toEqual(new Set(["UNSPENT"]));

    const got = await callOk(b.client, "receive", { token: sent.token });
    expect(got.received_sats).toBe(30);
    expect(await balanceOf(b)).toBe(30);
  });

  it("HTLC locked to Bob: without the preimage it is refused, with it Bob receives", async () => {
    const funder = await newWallet(mint.url);
    const { hash, preimage } = createHTLCHash();
    const opts = new P2PKBuilder().addLockPubkey(bobKey).addHashlock(hash).toOptions();
    const { send } = await funder.ops
      .send(16, await mintProofs(funder, 16))
      .asP2PK(opts)
      .run();
    const token = getEncodedToken({ mint: mint.url, proofs: send });

    expect((await callText(b.client, "receive", { token })).text).toMatch(/needs its preimage/);
    const wrong = await callText(b.client, "receive", { token, preimage: "ab".repeat(32) });
    expect(wrong.text).toMatch(/does not match/);
    const got = await callOk(b.client, "receive", { token, preimage });
    expect(got.received_sats).toBe(16);
  });

  it("a malformed lock_to_pubkey is refused by the tool's schema", async () => {
    const r = await callText(a.client, "send", { amount_sats: 5, lock_to_pubkey: "02abc" });
    expect(r.isError).toBe(true);
  });
});
