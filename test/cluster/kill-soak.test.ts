/**
 * The short kill -9 soak over three gateway processes on one PostgreSQL (the long one is
 * test/long/cluster-soak.test.ts): 15 X-Cashu jobs spread over the processes, two of the processes
 * SIGKILLed mid-job and restarted; afterwards every sat is accounted for.
 * Replay with OWLRUN_SOAK_SEED=<seed in the name>.
 */
import { afterAll, describe, it } from "vitest";
import { type ClusterSoakRun, expectClusterSoakAccounted, runClusterSoak } from "../support/cluster-soak.js";
import { seedFrom } from "../support/money.js";

const SEED = seedFrom("OWLRUN_SOAK_SEED");
let run: ClusterSoakRun | undefined;
afterAll(async () => {
  await run?.stop();
});

describe(`kill -9 soak over three gateway processes, 15 jobs (seed ${SEED})`, () => {
  it("loses no sat and creates none when a process dies mid-job", async () => {
    run = await runClusterSoak({ jobs: 15, kills: 2, seed: SEED });
    await expectClusterSoakAccounted(run, SEED);
  }, 180_000);
});
