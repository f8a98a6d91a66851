/**
 * The short kill -9 soak (the long one is test/long/soak.test.ts): 20 paid jobs through the gateway,
 * an embedded provider and the MCP server, two of them SIGKILLed mid-job and restarted on the same
 * data dir; afterwards every sat is accounted for. Replay with OWLRUN_SOAK_SEED=<seed in the name>.
 */
import { afterAll, describe, it } from "vitest";
import { seedFrom } from "../support/money.js";
import { expectAllAccounted, runSoak, type SoakRun } from "../support/soak.js";

const SEED = seedFrom("OWLRUN_SOAK_SEED");
let run: SoakRun | undefined;
afterAll(async () => {
  await run?.cluster.stop();
});

describe(`kill -9 soak, 20 jobs (seed ${SEED})`, () => {
  it("loses no sat and spends no proof twice", async () => {
    run = await runSoak({ jobs: 20, kills: 2, seed: SEED });
    await expectAllAccounted(run);
  }, 120_000);
});
