// The relay, end to end: a SALESmanago that refuses the browser (no CORS headers, as the live
// API most likely does), the sandbox in Chromium, and salesmanago-relay (the real binary) in
// between. The admin enters the relay's address and key on the credential page, with no API
// secret; "Test connection", "Export all contacts", "Pull consents" (its file through the relay)
// and "Fetch from SALESmanago" work; a wrong key gets its own message; the relay's log holds no
// secret, key or e-mail.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { button, open, saveCredentials, startSandboxWorld, takeDialog, until } from "./support/sandbox.mjs";

let world;
let relay;
let key;

before(async () => {
  // The sandbox world's default: the simulator refuses browsers, and the relay holds its credentials.
  world = await startSandboxWorld({ contacts: 40 });
  ({ relay } = world);
  key = relay.key;
});

after(async () => {
  await world?.close();
});

test("without a relay, the browser is refused by SALESmanago and the message says to run one", async () => {
  // The record as direct mode has it: SALESmanago's credentials, no relay key.
  const [record] = world.sandbox.dataverse.rows("new_salesmanagointegration");
  const { clientId, apiSecret, owner, endpoint } = world.credentials;
  world.sandbox.dataverse.seed("new_salesmanagointegration", [{ ...record, new_clientid: clientId, new_apisecret: apiSecret, new_owner: owner, new_endpoint: endpoint, new_relaykey: null }]);
  await open(world, "/integration");
  await button(world.page, "new.integration.TestConnection.Button").click();
  const dialog = await takeDialog(world.page);
  assert.match(dialog.text, /blocked the call to SALESmanago.*run salesmanago-relay/, dialog.text);
});

test("through the relay, with no API secret in Dynamics, every job works", async () => {
  await open(world, "/integration");
  const status = await saveCredentials(world.page, { clientId: "", apiSecret: "", owner: "", endpoint: relay.url, relayKey: key });
  assert.match(status, /saved/i, status);
  const [record] = world.sandbox.dataverse.rows("new_salesmanagointegration");
  assert.equal(record.new_apisecret ?? "", "", "the secret is gone from Dynamics");
  assert.equal(record.new_relaykey, key);

  await open(world, "/integration");
  await button(world.page, "new.integration.TestConnection.Button").click();
  assert.match((await takeDialog(world.page)).text, /^Connected to SALESmanago through the relay\./);

  await button(world.page, "new.integration.ExportAll.Button").click();
  const exported = await takeDialog(world.page, { timeout: 60_000 });
  assert.match(exported.text, /Export all contacts finished: 40 contacts\. \d+ sent/, exported.text);
  while (await world.page.locator("#dialogs .dialog").count()) await takeDialog(world.page);
  const sent = world.sandbox.dataverse.rows("contact").filter((r) => r.new_salesmanagoid);
  assert.ok(sent.length > 20, `${sent.length} contacts went through the relay`);

  // A withdrawal in SALESmanago comes back through the export file, which the relay serves.
  const contact = sent[0];
  const held = world.sim.contacts().find((c) => c.id === contact.new_salesmanagoid);
  world.sim.seed([{ ...held, optedOut: true }]);
  await open(world, "/integration");
  await button(world.page, "new.integration.PullConsents.Button").click();
  const pulled = await takeDialog(world.page, { timeout: 60_000 });
  assert.match(pulled.text, /Pull consents finished: \d+ contacts checked\. [1-9]\d* updated/, pulled.text);
  await until(() => world.sandbox.dataverse.rows("contact").find((r) => r.contactid === contact.contactid).donotbulkemail === true, {
    what: "the opt-out to reach Dynamics",
  });
  while (await world.page.locator("#dialogs .dialog").count()) await takeDialog(world.page);

  await open(world, `/contacts/${contact.contactid}`);
  await button(world.page, "new.contact.Fetch.Button").click();
  const fetched = await takeDialog(world.page);
  assert.doesNotMatch(fetched.text, /relay|CORS|refused/i, fetched.text);
});

test("a wrong relay key gets its own message, and the relay's log holds no secret", async () => {
  const [record] = world.sandbox.dataverse.rows("new_salesmanagointegration");
  world.sandbox.dataverse.seed("new_salesmanagointegration", [{ ...record, new_relaykey: key.replace(/.$/, (c) => (c === "0" ? "1" : "0")) }]);
  await open(world, "/integration");
  await button(world.page, "new.integration.TestConnection.Button").click();
  assert.match((await takeDialog(world.page)).text, /^The relay refused the relay key\./);

  const log = relay.log.join("\n");
  assert.ok(relay.log.length >= 8, log);
  const { apiSecret } = world.credentials;
  const emails = world.sandbox.dataverse.rows("contact").map((r) => r.emailaddress1).filter((e) => typeof e === "string" && e.includes("@"));
  for (const secret of [apiSecret, key.split(".")[1], ...emails]) assert.ok(!log.includes(secret), `the relay's log holds ${secret}`);
  assert.ok(relay.log.some((line) => JSON.parse(line).method === "contact/batchupsert"), log);
  assert.ok(relay.log.some((line) => JSON.parse(line).method === "file"), "the export file went through the relay");
});
