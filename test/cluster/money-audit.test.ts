/**
 * The randomized money audit of issue 5 (test/support/audit.ts) over three gateway processes on
 * one PostgreSQL database (issue 20): every request goes to a process picked at random, the
 * providers are connected to different processes (so most jobs cross processes), and each dying
 * provider connects to a random one. Afterwards the shared ledger sums to zero and equals the
 * ecash the gateways hold at the mint, and every change was claimed from whichever process the
 * client asked. Replay a failure with OWLRUN_AUDIT_SEED=<seed printed in the error>.
 *
 * 80 steps, as the single-process audit (OWLRUN_AUDIT_STEPS changes both).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  auditScript,
  BUSY,
  DIE,
  DYING_JOB,
  GARBAGE,
  OK,
  type Rng,
  runMoneyAudit,
  SLOW,
} from "../support/audit.js";
import { ClusterNet } from "../support/cluster-net.js";
import { Purse, seededRandom, seedFrom } from "../support/money.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const SEED = seedFrom("OWLRUN_AUDIT_SEED");
const STEPS = Number(process.env.OWLRUN_AUDIT_STEPS ?? 80);

let net: ClusterNet;
let client: Purse;
let providerPurse: Purse;
const agents: Agent[] = [];
let dying: Agent;

beforeAll(async () => {
  // A BTC price of $20 makes a token worth ~0.3 sat: charges vary with the length of the job.
  net = await ClusterNet.start({ gateways: 3, gatewayArgs: ["--btc-usd", "20"] });
  const [a, b, c] = net.urls() as [string, string, string];
  // The providers' scripts draw from their own stream, so the audit's steps replay from the seed.
  const script = auditScript(seededRandom(SEED + 1));
  agents.push(
    await startAgent(a, { models: [OK, SLOW, GARBAGE, BUSY], job: script }),
    await startAgent(b, { models: [OK], job: script }),
  );
  dying = await startAgent(c, { models: [DIE], job: DYING_JOB });
  await net.online([OK, SLOW, GARBAGE, BUSY, DIE]);
  client = await Purse.open(net.mintUrl);
  providerPurse = await Purse.open(net.mintUrl);
  await client.fund(5000);
}, 90_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a?.close()));
  await dying?.close();
  const codes = await net?.stop();
  expect(codes?.every((c) => c === 0)).toBe(true);
});

describe(`randomized money audit over three gateway processes on one PostgreSQL (seed ${SEED})`, () => {
  it("accounts for every sat, whichever process each request, provider and change landed on", async () => {
    const pickUrl = (rng: Rng) => rng.pick(net.urls());
    await runMoneyAudit(
      {
        pickUrl,
        agents,
        startDyingAgent: async (rng) => {
          const url = pickUrl(rng);
          const agent = await startAgent(url, { models: [DIE], job: DYING_JOB });
          // The next death may be asked of any process: wait until all of them see this node.
          await net.online([DIE]);
          return agent;
        },
        settledBooks: () => net.books(),
      },
      { seed: SEED, steps: STEPS, client, providerPurse, dying },
    );
  }, 240_000);
});
