/**
 * The long kill -9 soak (`npm run test:long`): 200 paid jobs through the gateway, an embedded
 * provider and the MCP server, with a dozen SIGKILLs of one of them at random points; afterwards
 * every sat is accounted for. Replay with OWLRUN_SOAK_SEED=<seed in the test name>.
 */
import { afterAll, describe, it } from "vitest";
import { seedFrom } from "../support/money.js";
import { expectAllAccounted, runSoak, type SoakRun } from "../support/soak.js";

const SEED = seedFrom("OWLRUN_SOAK_SEED");
let run: SoakRun | undefined;
afterAll(async () => {
  await run?.cluster.stop();
});

describe(`kill -9 soak, 200 jobs (seed ${SEED})`, () => {
  it("loses no sat and spends no proof twice", async () => {
    run = await runSoak({ jobs: 200, kills: 12, seed: SEED });
    await expectAllAccounted(run);
  });
});
