// SALESmanago's changes reach Dynamics with no button: the simulator's automation rules call the
// relay (the real binary) at /salesmanago/rule with HTTP Basic credentials, and the relay reads
// each contact from SALESmanago and applies it to the sandbox's Dataverse through the engine's
// core, as its application user. Dataverse's own webhooks are on too: the relay's writes must not
// travel back to SALESmanago.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { configure, jobSummary, open, startSandboxWorld, until } from "./support/sandbox.mjs";
import { ensureRelay, newKey } from "../sandbox/relay.mjs";

let world;
let rule;

before(async () => {
  ensureRelay();
  rule = newKey("salesmanago");
  world = await startSandboxWorld({ contacts: 400, webhooks: { retryDelayMs: 300, concurrency: 16 }, relayEnv: { RELAY_RULE_KEYS: rule.stored, RELAY_BURST_MS: "50" } });
  // As in use: the contacts were sent from Dynamics (each row holds its SALESmanago id), then
  // Dataverse's webhooks were switched on.
  configure(world);
  await open(world, "/integration");
  assert.match(await jobSummary(world.page, "new.integration.ExportAll.Button"), /finished/);
  configure(world, { new_webhooks: true });
  const [user, password] = rule.key.split(".");
  world.sim.rules({ url: `${world.relay.url}/salesmanago/rule`, user, password });
});

after(async () => {
  await world?.close();
});

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

test("an opt-out made in SALESmanago is on the Dynamics contact within 5 s, 200 times, with no button and no echo", async (t) => {
  const rows = () => world.sandbox.dataverse.rows("contact");
  const inDynamics = new Map(rows().filter((r) => r.new_salesmanagoid).map((r) => [r.new_salesmanagoid, r]));
  const chosen = world.sim
    .contacts()
    .filter((c) => !c.optedOut && inDynamics.get(c.id)?.donotbulkemail === false)
    .slice(0, 200);
  assert.equal(chosen.length, 200, "200 contacts in both, not opted out");
  const upserts = () => {
    const calls = world.sim.stats().calls;
    return (calls["contact/upsert"] ?? 0) + (calls["contact/batchupsert"] ?? 0);
  };
  const sentBefore = upserts();

  // One change every 25 ms, as unsubscribes come in; each timed until Dynamics holds it.
  const pending = new Map();
  const latencies = [];
  let polling = true;
  const poll = (async () => {
    while (polling) {
      if (pending.size) {
        const now = Date.now();
        for (const row of rows()) {
          if (row.donotbulkemail === true && pending.has(row.new_salesmanagoid)) {
            latencies.push(now - pending.get(row.new_salesmanagoid));
            pending.delete(row.new_salesmanagoid);
          }
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  for (const contact of chosen) {
    pending.set(contact.id, Date.now());
    world.sim.change({ email: contact.email, optedOut: true });
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  try {
    await until(() => pending.size === 0, { timeout: 60_000, what: `every opt-out in Dynamics (${pending.size} left)` });
  } finally {
    polling = false;
    await poll;
  }
  latencies.sort((a, b) => a - b);
  const [median, p99, max] = [percentile(latencies, 50), percentile(latencies, 99), latencies.at(-1)];
  t.diagnostic(`opt-out SALESmanago → Dynamics over ${latencies.length} changes: median ${median} ms, p99 ${p99} ms, max ${max} ms`);
  assert.ok(p99 <= 5000, `p99 ${p99} ms`);

  // Every call was answered 200; the relay wrote as its application user, and its writes did
  // not come back to SALESmanago through Dataverse's webhook.
  await world.sim.rulesIdle();
  await world.sandbox.events.idle();
  const stats = world.sim.ruleStats();
  assert.equal(stats.failed, 0, JSON.stringify(stats));
  assert.ok(stats.answered >= 200, JSON.stringify(stats));
  const written = rows().filter((r) => chosen.some((c) => c.id === r.new_salesmanagoid));
  assert.ok(written.every((r) => r._modifiedby_value === world.sandbox.appUser.userId));
  assert.equal(upserts(), sentBefore, "nothing sent back to SALESmanago");
  assert.equal(world.sandbox.events.failedJobs().length, 0);

  // A call made again (the rule run again for the contact) changes nothing in Dynamics.
  const [user, password] = rule.key.split(".");
  const target = written[0];
  const contact = chosen.find((c) => c.id === target.new_salesmanagoid);
  const again = await fetch(`${world.relay.url}/salesmanago/rule`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` },
    body: JSON.stringify({ id: "rule-optout", name: "Contact has been opted out", contactId: contact.id, description: "", email: contact.email, phone: "", company: "" }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(again.status, 200, await again.text());
  const now = rows().find((r) => r.contactid === target.contactid);
  assert.equal(now.versionnumber, target.versionnumber, "written again");
});

test("a rule call with wrong credentials is refused and changes nothing", async () => {
  const contact = world.sim.contacts().find((c) => !c.optedOut);
  const call = (authorization) =>
    fetch(`${world.relay.url}/salesmanago/rule`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ id: "r", name: "Opted out", contactId: contact.id, description: "", email: contact.email, phone: "", company: "" }),
      signal: AbortSignal.timeout(10_000),
    });
  for (const authorization of [null, `Basic ${Buffer.from("salesmanago:wrong").toString("base64")}`, `Bearer ${rule.key}`]) {
    const response = await call(authorization);
    assert.equal(response.status, 401, authorization ?? "none");
    assert.equal(response.headers.get("www-authenticate"), 'Basic realm="salesmanago-relay"');
  }
});
