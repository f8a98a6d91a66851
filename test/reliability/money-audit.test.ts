/**
 * The money audit of issue 5 on one gateway child process (bundled mint, SQLite): see
 * test/support/audit.ts for the random mix and the three-way accounting.
 * Replay a failure with OWLRUN_AUDIT_SEED=<seed printed in the error>.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditScript, BUSY, DIE, DYING_JOB, GARBAGE, OK, runMoneyAudit, SLOW } from "../support/audit.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { Purse, seededRandom, seedFrom, settledGatewayBooks } from "../support/money.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const SEED = seedFrom("OWLRUN_AUDIT_SEED");
const STEPS = Number(process.env.OWLRUN_AUDIT_STEPS ?? 80);

let dir: string;
let gw: CliProcess;
let mintUrl: string;
let client: Purse;
let providerPurse: Purse;
const agents: Agent[] = [];
let dying: Agent;

beforeAll(async () => {
  dir = tempDir("owlrun-audit-");
  // A BTC price of $20 makes a token worth ~0.3 sat: charges vary with the length of the job.
  gw = await startCli([
    "gateway",
    "--port",
    "0",
    "--data-dir",
    dir,
    "--fake-delay-ms",
    "20",
    "--btc-usd",
    "20",
  ]);
  mintUrl = `${gw.url}/mint`;
  // The providers' scripts draw from their own stream, so the audit's steps replay from the seed.
  const script = auditScript(seededRandom(SEED + 1));
  agents.push(
    await startAgent(gw.url, { models: [OK, SLOW, GARBAGE, BUSY], job: script }),
    await startAgent(gw.url, { models: [OK], job: script }),
  );
  dying = await startAgent(gw.url, { models: [DIE], job: DYING_JOB });
  client = await Purse.open(mintUrl);
  providerPurse = await Purse.open(mintUrl);
  await client.fund(5000);
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a?.close()));
  expect(await gw?.stop()).toBe(0);
});

describe(`randomized money audit (seed ${SEED})`, () => {
  it("accounts for every sat after a random mix of requests, refunds and failures", async () => {
    await runMoneyAudit(
      {
        pickUrl: () => gw.url,
        agents,
        startDyingAgent: () => startAgent(gw.url, { models: [DIE], job: DYING_JOB }),
        settledBooks: () => settledGatewayBooks(join(dir, "gateway"), mintUrl),
      },
      { seed: SEED, steps: STEPS, client, providerPurse, dying },
    );
  }, 120_000);
});
