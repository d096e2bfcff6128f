// Every change reaches SALESmanago, whatever made it: the sandbox's Dataverse delivers its
// webhooks (registered by `salesmanago-relay register`, the real binary) to the relay, which
// sends through the engine's core to the SALESmanago simulator and writes the status back as its
// application user (a token from the Entra ID stand-in). Writes here go through the Web API with
// no form, as an import, a flow or another system makes them; the last test saves a form.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { button, configure, open, startSandboxWorld, takeDialog, until } from "./support/sandbox.mjs";
import { register, startRelay } from "../sandbox/relay.mjs";

const SYNCED = 100000000;
let world;
let relay;
/** Every contact SALESmanago was sent (an upsert, or each of a batch upsert's), by e-mail. */
const sent = new Map();
const sentTo = (email) => sent.get(email.toLowerCase()) ?? 0;
const inSalesmanago = (email) => world.sim.contacts().find((c) => c.email === email.toLowerCase());

/** A Web API request as another system makes it (with the browser user's bearer token). */
async function api(method, path, body, headers = {}) {
  const response = await fetch(`${world.sandbox.url}/api/data/v9.2/${path}`, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${world.sandbox.token}`, ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.status < 400, `${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
  return { status: response.status, headers: response.headers, body: text && response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text };
}

async function create(row) {
  const created = await api("POST", "contacts", row);
  return created.headers.get("odata-entityid").match(/\(([0-9a-f-]{36})\)$/)[1];
}

/** Creates `rows` in `$batch`es of 1,000 changes, as an import does. */
async function importRows(rows, method = "POST", path = () => "contacts") {
  for (let start = 0; start < rows.length; start += 1000) {
    const chunk = rows.slice(start, start + 1000);
    const parts = chunk.map((row, i) =>
      [`--changeset_1`, "Content-Type: application/http", "Content-Transfer-Encoding: binary", `Content-ID: ${i + 1}`, "", `${method} ${world.sandbox.url}/api/data/v9.2/${path(row)} HTTP/1.1`, "Content-Type: application/json", "", JSON.stringify(row.columns ?? row)].join("\r\n"),
    );
    const body = [`--batch_1`, "Content-Type: multipart/mixed; boundary=changeset_1", "", ...parts, "--changeset_1--", "--batch_1--", ""].join("\r\n");
    const answer = await api("POST", "$batch", body, { "Content-Type": "multipart/mixed; boundary=batch_1" });
    assert.doesNotMatch(answer.body, /HTTP\/1.1 [45]\d\d/, "every change of the import is taken");
  }
}

before(async () => {
  // One relay, as `npm start -- --webhooks` runs it: the browser's calls and Dataverse's webhooks.
  // The first catch-up looks back two periods: an hour here, so it sees this test's writes.
  world = await startSandboxWorld({ contacts: 10, webhooks: { retryDelayMs: 300, concurrency: 16 }, relayEnv: { RELAY_BURST_MS: "50", RELAY_CATCH_UP_MINUTES: "30" } });
  relay = world.relay;
  world.sim.onCall((name, body) => {
    const details = name === "contact/batchupsert" ? body.upsertDetails ?? [] : name === "contact/upsert" ? [body] : [];
    for (const detail of details) {
      const email = String(detail.contact?.email ?? "").toLowerCase();
      sent.set(email, (sent.get(email) ?? 0) + 1);
    }
  });
  // Webhooks on, and the browser's relay address and key (for the form save and Export changes).
  configure(world, { new_webhooks: true });
});

after(async () => {
  await world?.close();
});

test("the registration is one endpoint, three steps and their images, and running it again adds nothing", async () => {
  assert.deepEqual(relay.registered, ["created the service endpoint", "created the Create step", "created its PostImage", "created the Update step", "created its PostImage", "created the Delete step", "created its PreImage"]);
  const again = await register({ ...relay.env, RELAY_PUBLIC_URL: relay.url, RELAY_WEBHOOK_KEY: relay.webhookKey });
  assert.ok(again.every((line) => line.startsWith("updated")), again.join("\n"));
  const count = (table) => world.sandbox.dataverse.rows(table).length;
  assert.deepEqual([count("serviceendpoint"), count("sdkmessageprocessingstep"), count("sdkmessageprocessingstepimage")], [1, 3, 3]);
});

test("a contact created, updated and deleted through the Web API reaches SALESmanago, and the write-back does not echo", async () => {
  const events = world.sandbox.events;
  const fired = events.stats().fired;
  const email = "webapi.one@example.com";
  const id = await create({ firstname: "Ala", lastname: "Webowa", emailaddress1: email });
  await until(() => inSalesmanago(email)?.name === "Ala Webowa", { what: "the created contact in SALESmanago" });
  // The relay wrote the status back as its application user.
  const row = await until(() => world.sandbox.dataverse.rows("contact").find((r) => r.contactid === id && r.new_salesmanagosyncstatus === SYNCED), { what: "the status written back" });
  assert.equal(row._modifiedby_value, world.sandbox.appUser.userId);
  assert.equal(row.new_salesmanagoid, inSalesmanago(email).id);

  await api("PATCH", `contacts(${id})`, { lastname: "Zmieniona" }, { "If-Match": "*" });
  await until(() => inSalesmanago(email)?.name === "Ala Zmieniona", { what: "the update in SALESmanago" });
  await events.idle();
  assert.equal(events.stats().fired - fired, 2, "one event a change: the write-backs fired none");
  assert.equal(sentTo(email), 2, "sent once a change");

  await api("DELETE", `contacts(${id})`);
  await until(() => !inSalesmanago(email), { what: "the contact deleted in SALESmanago" });
  assert.equal(events.failedJobs().length, 0);
});

test("an import of 10,000 contacts through the Web API arrives complete, each as its last change", async () => {
  const rows = Array.from({ length: 10_000 }, (_, i) => ({ contactid: `00000000-0000-4000-9000-${String(i).padStart(12, "0")}`, firstname: "Import", lastname: `N${i}`, emailaddress1: `import${i}@example.com` }));
  await importRows(rows);
  // Changed again right away, while the first deliveries are still on their way: every other one.
  const changed = rows.filter((_, i) => i % 2 === 0).map((r) => ({ ...r, columns: { lastname: `${r.lastname}-2` } }));
  await importRows(changed, "PATCH", (r) => `contacts(${r.contactid})`);
  await world.sandbox.events.idle();
  const expected = new Map(rows.map((r, i) => [r.emailaddress1, `Import ${r.lastname}${i % 2 === 0 ? "-2" : ""}`]));
  await until(
    () => {
      const names = new Map(world.sim.contacts().map((c) => [c.email, c.name]));
      return [...expected].every(([email, name]) => names.get(email) === name);
    },
    { timeout: 300_000, what: "all 10,000 contacts in SALESmanago with their last change" },
  );
  assert.equal(world.sandbox.events.failedJobs().length, 0);
  assert.equal(world.sandbox.events.stats().retried, 0);
});

test("the relay down longer than Dataverse's one retry loses nothing: the catch-up delivers", async () => {
  const events = world.sandbox.events;
  const failedBefore = events.failedJobs().length;
  const address = new URL(relay.url).host;
  await relay.stop();
  const emails = ["down.one@example.com", "down.two@example.com", "down.three@example.com"];
  for (const [i, email] of emails.entries()) await create({ firstname: "Down", lastname: `N${i}`, emailaddress1: email });
  await events.idle();
  const failed = events.failedJobs().slice(failedBefore);
  assert.equal(failed.length, emails.length, "each delivery failed for good: a system job each");
  assert.match(failed[0].message, /could not be reached/);
  assert.ok(emails.every((email) => !inSalesmanago(email)));

  // Back on the same address; the catch-up (here asked for, as the schedule would) repairs it.
  const restarted = await startRelay({ ...relay.env, RELAY_LISTEN: address });
  relay = world.relay = { ...relay, ...restarted };
  const response = await fetch(`${relay.url}/dataverse/catch-up`, { method: "POST", headers: { "x-relay-webhook-key": relay.webhookKey } });
  const done = await response.json();
  assert.equal(response.status, 200, JSON.stringify(done));
  assert.ok(done.sent >= emails.length, JSON.stringify(done));
  assert.equal(done.failed, 0);
  for (const email of emails) assert.ok(inSalesmanago(email), `${email} caught up`);
  const record = world.sandbox.dataverse.rows("new_salesmanagointegration")[0];
  assert.ok(Number(record.new_catchupwatermark) > 0, "the watermark moved");
});

test("a wrong or missing key is refused, and Dataverse records the failed delivery", async () => {
  const post = (headers) => fetch(`${relay.url}/dataverse/webhook`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: "{}" });
  assert.equal((await post({})).status, 401);
  assert.equal((await post({ "x-relay-webhook-key": `${relay.webhookKey}x` })).status, 401);
  // The endpoint registered with a key the relay does not know.
  const [endpoint] = world.sandbox.dataverse.rows("serviceendpoint");
  const wrong = endpoint.authvalue.replace(/value="[^"]*"/, 'value="dataverse.wrong"');
  await api("PATCH", `serviceendpoints(${endpoint.serviceendpointid})`, { authvalue: wrong }, { "If-Match": "*" });
  const failedBefore = world.sandbox.events.failedJobs().length;
  await create({ firstname: "Bez", lastname: "Klucza", emailaddress1: "no.key@example.com" });
  await world.sandbox.events.idle();
  const failed = world.sandbox.events.failedJobs().slice(failedBefore);
  assert.equal(failed.length, 1);
  assert.match(failed[0].message, /HTTP 401/);
  assert.equal(sentTo("no.key@example.com"), 0);
  // Registering again puts the right key back.
  await register({ ...relay.env, RELAY_PUBLIC_URL: relay.url, RELAY_WEBHOOK_KEY: relay.webhookKey });
  await create({ firstname: "Z", lastname: "Kluczem", emailaddress1: "with.key@example.com" });
  await until(() => inSalesmanago("with.key@example.com"), { what: "a delivery with the key again" });
});

test("a replayed event changes nothing", async () => {
  // Replayed once the original was answered (Dataverse has nothing under way: the last
  // delivery may still be with the relay, whose burst now reads its contacts again after
  // sending).
  await world.sandbox.events.idle();
  const [last] = world.sandbox.events.delivered().slice(-1);
  const calls = world.sim.stats().total;
  const replay = await fetch(last.url, { method: "POST", headers: last.headers, body: last.text });
  const said = await replay.json();
  assert.equal(replay.status, 200);
  assert.equal(said.done, "repeated");
  assert.equal(world.sim.stats().total, calls, "nothing sent to SALESmanago");
});

test("with webhooks on, a form save sends once, and the form shows the status the relay wrote", async () => {
  // A contact whose last synchronisation failed, so the relay has a status to write.
  const email = "form.save@example.com";
  const id = await create({ firstname: "Forma", lastname: "Zapis", emailaddress1: email });
  await until(() => inSalesmanago(email), { what: "the new contact in SALESmanago" });
  await world.sandbox.events.idle();
  // The relay answers once SALESmanago has the contact and writes the status back after.
  await until(() => world.sandbox.dataverse.rows("contact").find((r) => r.contactid === id)?.new_salesmanagosyncstatus === SYNCED, { what: "the relay's first write-back" });
  await api("PATCH", `contacts(${id})`, { new_salesmanagosyncstatus: 100000001 }, { "If-Match": "*" });
  const contact = { contactid: id };
  const before = sentTo(email);
  await open(world, `/contacts/${contact.contactid}`);
  await world.page.locator("#field-address1_city").fill("Łeba");
  await world.page.locator("#field-address1_city").dispatchEvent("change");
  await button(world.page, "Mscrm.SavePrimary").click();
  await until(() => inSalesmanago(email)?.address.city === "Łeba", { what: "the save to reach SALESmanago" });
  await world.sandbox.events.idle();
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(sentTo(email) - before, 1, "sent once, by the relay; the browser stayed silent");
  await until(() => world.sandbox.dataverse.rows("contact").find((r) => r.contactid === contact.contactid)?._modifiedby_value === world.sandbox.appUser.userId, { what: "the relay's write-back" });
  await open(world, `/contacts/${contact.contactid}`);
  const status = await world.page.locator("#field-new_salesmanagosyncstatus").inputValue();
  assert.equal(Number(status), SYNCED, "the form shows the status the relay wrote");
  assert.deepEqual(world.problems, []);
});

test("Export changes on the integration form sends what changed since the catch-up and moves its watermark", async () => {
  const before = Number(world.sandbox.dataverse.rows("new_salesmanagointegration")[0].new_catchupwatermark);
  // A change the webhook could not deliver (its endpoint pointing nowhere for a moment): the button repairs it.
  await api("PATCH", `serviceendpoints(${world.sandbox.dataverse.rows("serviceendpoint")[0].serviceendpointid})`, { url: "http://127.0.0.1:9/dataverse/webhook" }, { "If-Match": "*" });
  await create({ firstname: "Przycisk", lastname: "Eksport", emailaddress1: "export.changes@example.com" });
  await world.sandbox.events.idle();
  assert.ok(!inSalesmanago("export.changes@example.com"));
  await open(world, "/integration");
  await button(world.page, "new.integration.ExportChanges.Button").click();
  const summary = await takeDialog(world.page, { timeout: 60_000 });
  assert.match(summary.text, /Export changes finished: \d+ contacts changed in Dynamics since the last catch-up\. \d+ sent, \d+ skipped, 0 failed\./, summary.text);
  assert.ok(inSalesmanago("export.changes@example.com"), "sent by the button");
  const after = Number(world.sandbox.dataverse.rows("new_salesmanagointegration")[0].new_catchupwatermark);
  assert.ok(after > before, `the watermark moved: ${before} → ${after}`);
  // The webhook back, for whatever runs next.
  await register({ ...relay.env, RELAY_PUBLIC_URL: relay.url, RELAY_WEBHOOK_KEY: relay.webhookKey });
});
