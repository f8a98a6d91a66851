/**
 * The long kill -9 soak over three gateway processes on one PostgreSQL (issue 20,
 * `npm run test:long`): 150 X-Cashu jobs, three at a time, each to a random process, with a dozen
 * SIGKILLs of one of the three processes at random points mid-job (each restarted on its data dir);
 * afterwards every sat is accounted for. Replay with OWLRUN_SOAK_SEED=<seed in the test name>.
 */
import { afterAll, describe, it } from "vitest";
import { type ClusterSoakRun, expectClusterSoakAccounted, runClusterSoak } from "../support/cluster-soak.js";
import { seedFrom } from "../support/money.js";

const SEED = seedFrom("OWLRUN_SOAK_SEED");
const JOBS = Number(process.env.OWLRUN_SOAK_JOBS ?? 150);
const KILLS = Number(process.env.OWLRUN_SOAK_KILLS ?? 12);
let run: ClusterSoakRun | undefined;
afterAll(async () => {
  await run?.stop();
});

describe(`kill -9 soak over three gateway processes, ${JOBS} jobs (seed ${SEED})`, () => {
  it("loses no sat and creates none when one of three processes dies mid-job", async () => {
    run = await runClusterSoak({ jobs: JOBS, kills: KILLS, seed: SEED });
    const a = await expectClusterSoakAccounted(run, SEED);
    console.log(
      `cluster soak (seed ${SEED}): ${JOBS} jobs, kills per process ${run.kills.join("/")}, ` +
        `${run.unsettled.length} answers lost (${a.settledByChange} settled by change, ${a.settledByToken} by the token), ` +
        `minted ${a.minted} = purse ${a.purseSat} + change kept ${a.claimableChangeSat} + gateway ecash ${a.gateway.ecashMsat / 1000}`,
    );
  });
});
