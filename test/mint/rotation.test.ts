/**
 * Keys come from a master secret kept 0600 in the data dir; rotating the keyset (from the shell,
 * while the mint runs) makes a new active keyset and keeps old proofs redeemable.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postJson, randomOutputs, rawProofs } from "../support/blinded.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, runCli, startCli, tempDir } from "../support/cli-process.js";

let dir: string;
let mint: CliProcess;

beforeAll(async () => {
  dir = tempDir();
  mint = await startCli(["mint", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
});
afterAll(async () => {
  await mint.stop();
});

describe("keyset rotation", () => {
  it("stores the master secret with mode 0600", () => {
    expect(statSync(join(dir, "mint", "master-secret")).mode & 0o777).toBe(0o600);
  });

  it("rotates while running; old proofs still redeem, new outputs must use the new keyset", async () => {
    const wallet = await newWallet(mint.url);
    const old = await mintProofs(wallet, 21);
    const oldId = old[0]!.id;

    const rotated = await runCli(["mint", "rotate-keyset", "--data-dir", dir]);
    expect(rotated.code).toBe(0);
    const newId = /active keyset (\S+)/.exec(rotated.stdout)![1]!;
    expect(newId).not.toBe(oldId);
    expect(rotated.stdout).toContain(oldId);

    const keysets = ((await (await fetch(`${mint.url}/v1/keysets`)).json()) as any).keysets;
    expect(keysets).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: oldId, active: false }),
        expect.objectContaining({ id: newId, active: true }),
      ]),
    );
    const active = ((await (await fetch(`${mint.url}/v1/keys`)).json()) as any).keysets;
    expect(active.map((k: { id: string }) => k.id)).toEqual([newId]);
    const oldKeys = await fetch(`${mint.url}/v1/keys/${oldId}`);
    expect(oldKeys.status).toBe(200);

    const inputs = rawProofs(old);
    const onOld = await postJson(`${mint.url}/v1/swap`, { inputs, outputs: randomOutputs(21, oldId) });
    expect(onOld.status).toBe(400);
    expect(onOld.body.code).toBe(12002);

    // A wallet that loads the mint again receives the old proofs into the new keyset.
    const fresh = await newWallet(mint.url);
    const received = await fresh.receive(rawProofs(old));
    expect(sumAmounts(received)).toBe(21);
    expect(new Set(received.map((p) => p.id))).toEqual(new Set([newId]));
  });

  it("refuses to start when the master secret does not match the database", async () => {
    const other = tempDir();
    const first = await startCli(["mint", "--port", "0", "--data-dir", other]);
    await first.stop();
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(other, "mint", "master-secret"), `${"ab".repeat(32)}\n`);
    const res = await runCli(["mint", "--port", "0", "--data-dir", other]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/does not derive from this master secret/);
  });
});
