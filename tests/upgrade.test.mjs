// The upgrade path: a sandbox Dataverse that holds SALESmanago's manual set-up as its help page
// describes it (the integration table with its four text columns and one record, a consent
// column an admin added, with values), then our solution applied over it: the record, the
// consent column and its values survive, no column changes type, and a column whose type would
// change makes the import fail with its name, as Dataverse's would. Then, end to end in the
// sandbox, the upgraded org moves to salesmanago-relay: the relay's address and key replace the
// manual secret on the same record, and its contact goes to SALESmanago through the relay.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDataverse } from "../sandbox/dataverse.mjs";
import { loadBuiltSolution, tablesFrom } from "../sandbox/server.mjs";
import { button, credentialFrame, open, saveCredentials, startSandboxWorld, takeDialog } from "./support/sandbox.mjs";

const RECORD_ID = "0c2f7b4e-1111-4000-8000-00000000aa01";
const CONTACT_ID = "0c2f7b4e-2222-4000-8000-00000000cc01";

/** The data of an org set up by hand: `types` are the manual columns' types. */
function manualSetUp(types = {}) {
  const text = (name) => ({ type: types[name] ?? "String", maxLength: 100, label: { 1033: name } });
  return {
    version: 1,
    columns: {
      new_salesmanagointegration: Object.fromEntries(["new_apisecret", "new_clientid", "new_owner", "new_endpoint"].map((n) => [n, text(n)])),
      contact: { new_consent_integracja: { type: "Boolean", label: { 1033: "Zgoda INTEGRACJA" } } },
    },
    tables: {
      new_salesmanagointegration: [
        {
          new_salesmanagointegrationid: RECORD_ID,
          new_name: "SALESmanago",
          new_apisecret: "manual-secret",
          new_clientid: "manual-client",
          new_owner: "owner@example.com",
          new_endpoint: "app3.salesmanago.pl",
        },
      ],
      contact: [{ contactid: CONTACT_ID, firstname: "Jan", lastname: "Kowalski", emailaddress1: "jan@example.com", new_consent_integracja: true }],
    },
  };
}

test("our solution over a manual set-up keeps the record, the consent columns and their values", () => {
  const dir = mkdtempSync(join(tmpdir(), "salesmanago-upgrade-"));
  try {
    const file = join(dir, "dataverse.json");
    writeFileSync(file, JSON.stringify(manualSetUp()));
    const dataverse = createDataverse({ file, tables: tablesFrom(loadBuiltSolution().solution) });
    const [record] = dataverse.rows("new_salesmanagointegration");
    assert.equal(record.new_salesmanagointegrationid, RECORD_ID);
    assert.deepEqual(
      [record.new_apisecret, record.new_clientid, record.new_owner, record.new_endpoint],
      ["manual-secret", "manual-client", "owner@example.com", "app3.salesmanago.pl"],
    );
    assert.equal(record.new_relaykey ?? null, null, "the new columns start empty");
    const [contact] = dataverse.rows("contact");
    assert.equal(contact.new_consent_integracja, true, "the admin's consent value stays");
    assert.equal(dataverse.columns("contact").new_consent_integracja.type, "Boolean");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a manual column of another type stops the upgrade with the column's name", () => {
  const dir = mkdtempSync(join(tmpdir(), "salesmanago-upgrade-"));
  try {
    const file = join(dir, "dataverse.json");
    writeFileSync(file, JSON.stringify(manualSetUp({ new_owner: "Memo" })));
    assert.throws(
      () => createDataverse({ file, tables: tablesFrom(loadBuiltSolution().solution) }),
      /importing the solution over .* would fail: "new_salesmanagointegration\.new_owner" is Memo there and String in the solution/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("after the upgrade, the manual set-up moves to the relay: its secret is cleared and its contact goes through the relay", async () => {
  const world = await startSandboxWorld({ contacts: 0, dataverse: manualSetUp() });
  try {
    await open(world, "/integration");
    const frame = credentialFrame(world.page);
    await frame.locator("#save:not([disabled])").waitFor();
    assert.equal(await frame.locator("#clientId").inputValue(), "manual-client", "the credential page shows the manual record");
    assert.match(await frame.locator("#apiSecret").getAttribute("placeholder"), /saved/);

    assert.match(await saveCredentials(world.page, world.form), /Credentials saved/);
    const [record] = world.sandbox.dataverse.rows("new_salesmanagointegration");
    assert.equal(record.new_salesmanagointegrationid, RECORD_ID, "the same record");
    assert.equal(record.new_apisecret ?? "", "", "the manual secret is gone from Dynamics");
    assert.equal(record.new_endpoint, world.relay.url);
    assert.equal(record.new_relaykey, world.relay.key);
    await button(world.page, "new.integration.TestConnection.Button").click();
    assert.match((await takeDialog(world.page)).text, /^Connected to SALESmanago through the relay\./);

    await open(world, `/contacts/${CONTACT_ID}`);
    await button(world.page, "new.contact.Send.Button").click();
    assert.match((await takeDialog(world.page)).text, /^Sent to SALESmanago\./);
    const held = world.sim.contacts().find((c) => c.email === "jan@example.com");
    assert.equal(held?.name, "Jan Kowalski");
    const [contact] = world.sandbox.dataverse.rows("contact");
    assert.equal(contact.new_salesmanagoid, held.id);
    assert.equal(contact.new_consent_integracja, true, "the admin's consent value stays");
    assert.ok(world.relay.log.some((line) => JSON.parse(line).method === "contact/upsert"), "sent through the relay");
    assert.deepEqual(world.problems, []);
  } finally {
    await world.close();
  }
});
