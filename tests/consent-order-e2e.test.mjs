// The consent rule in a common order of jobs, end to end in its own sandbox (as an admin would
// run them on the demo data, nothing edited in Dynamics): Export all, Pull consents, a withdrawal
// of MARKETING in SALESmanago, Export all. The second export must grant nothing back.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { configure, jobSummary, open, startSandboxWorld } from "./support/sandbox.mjs";

let world;

before(async () => {
  world = await startSandboxWorld({ contacts: 200 });
  configure(world);
});

after(async () => {
  await world?.close();
});

test("Export all, Pull consents, a withdrawal in SALESmanago, Export all: no consent is granted back", async () => {
  await open(world, "/integration");
  assert.match(await jobSummary(world.page, "new.integration.ExportAll.Button"), /finished/);
  assert.match(await jobSummary(world.page, "new.integration.PullConsents.Button"), /finished/);
  // Every contact SALESmanago holds withdraws MARKETING there.
  const withdrawnAt = Date.now();
  const held = world.sim.contacts();
  world.sim.seed(
    held.map((contact) => {
      const others = (contact.consents ?? []).filter((x) => x.consentName !== "MARKETING");
      return { ...contact, consents: [...others, { consentName: "MARKETING", consentAccept: false, optOut: true, agreementDate: withdrawnAt }] };
    }),
  );
  assert.match(await jobSummary(world.page, "new.integration.ExportAll.Button"), /finished/);
  const regranted = world.sim
    .contacts()
    .filter((contact) => contact.consentHistory.some((change) => change.consentName === "MARKETING" && change.consentAccept && change.at >= withdrawnAt));
  assert.deepEqual(regranted.map((contact) => contact.email), [], `${regranted.length} of ${held.length} contacts had MARKETING granted back`);
  for (const contact of world.sim.contacts()) {
    const marketing = contact.consents.find((x) => x.consentName === "MARKETING");
    assert.equal(marketing?.consentAccept, false, `${contact.email}: ${JSON.stringify(marketing)}`);
  }
});
