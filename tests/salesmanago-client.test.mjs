// The real wasm client (engine.js) against the independent SALESmanago simulator: every API
// method it uses, the mapping both ways, and every fault the simulator can inject.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { call, failure, loadEngine, simulator } from "./support/engine.mjs";

let sim;

before(async () => {
  await loadEngine();
  sim = await simulator();
});
after(() => sim?.close());
beforeEach(() => sim.reset());

const fast = (extra = {}) => sim.config({ baseDelayMs: 5, ...extra });

test("upsert, look up, opt out and delete one contact", async () => {
  const config = sim.config();
  const { contactId } = await call(config, "contact/upsert", {
    contact: { email: "Jan@Example.com", name: "Jan Kowalski", address: { city: "Kraków" } },
    birthday: "19840804",
    forcePhoneOptOut: true,
    consentDetails: [{ consentName: "MARKETING", consentAccept: true, optOut: false, agreementDate: 1700000000000 }],
  });
  assert.match(contactId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(await call(config, "contact/hasContact", { email: "jan@example.com" }), { contactId });

  const [basic] = (await call(config, "contact/basic", { email: ["jan@example.com", "nobody@example.com"] })).contacts;
  assert.equal(basic.id, contactId);
  assert.equal(basic.email, "jan@example.com");
  assert.deepEqual(basic.birthday, [1984, 8, 4]);
  assert.equal(basic.address.city, "Kraków");
  assert.equal(basic.optedOutPhone, true);
  assert.deepEqual(basic.consents, [], "basic lists no consents, as in the live API");
  const [byId] = (await call(config, "contact/basicById", { id: [contactId] })).contacts;
  assert.equal(byId.email, "jan@example.com");
  const [card] = (await call(config, "contact/listById", { contactId: [contactId] })).contacts;
  assert.equal(card.id, contactId, "listById's `id` is read as the id");

  for (const [channel, subscribed, flag, value] of [
    ["newsletter", false, "optedOut", true],
    ["newsletter", true, "optedOut", false],
    ["sms", true, "optedOutPhone", false],
    ["sms", false, "optedOutPhone", true],
  ]) {
    assert.deepEqual(await call(config, "contact/subscription", { email: "jan@example.com", channel, subscribed }), { contactId });
    const [stored] = await sim.contacts();
    assert.equal(stored[flag], value, `${channel} ${subscribed}`);
  }

  assert.deepEqual(await call(config, "contact/delete", { email: "jan@example.com", permanently: true }), {});
  assert.deepEqual(await call(config, "contact/hasContact", { email: "jan@example.com" }), { contactId: null });
  assert.deepEqual(await sim.contacts(), []);
});

test("batch upsert splits at 400 and reports each contact", async () => {
  const details = Array.from({ length: 450 }, (_, i) => ({ contact: { email: `c${i}@example.com`, name: `Contact ${i}` } }));
  details.push({ contact: { email: "bad@example.com" }, birthday: "20230229" });
  const outcome = await call(sim.config(), "contact/batchupsert", { upsertDetails: details });
  assert.equal(Object.keys(outcome.ids).length, 450);
  assert.deepEqual(Object.keys(outcome.failed), ["bad@example.com"]);
  assert.match(outcome.failed["bad@example.com"], /birthday/i);
  assert.equal((await sim.stats()).calls["contact/batchupsert"], 2);
  assert.equal((await sim.contacts()).length, 450);
});

test("listById asks 50 at a time; modified contacts page and window", async () => {
  const seeded = await sim.seed(Array.from({ length: 120 }, (_, i) => ({ email: `m${i}@example.com`, modifiedOn: 1_000_000 + i })));
  const ids = seeded.map((c) => c.id);
  const { contacts } = await call(sim.config(), "contact/listById", { contactId: ids });
  assert.equal(contacts.length, 120);
  assert.equal((await sim.stats()).calls["contact/listById"], 3);

  const first = await call(sim.config(), "contact/paginatedModifiedContacts", { from: 1_000_000, to: 1_000_119, page: 1 });
  assert.equal(first.contacts.length, 120);
  assert.equal(first.has_more, false);
  assert.deepEqual(first.contacts.slice(0, 2).map((c) => c.email), ["m0@example.com", "m1@example.com"]);
  const legacy = await call(sim.config(), "contact/modifiedContacts", { from: 1_000_010, to: 1_000_019 });
  assert.equal(legacy.contacts.length, 10);
  const tooLong = await failure(call(sim.config(), "contact/paginatedModifiedContacts", { from: 0, to: 40 * 86_400_000, page: 1 }));
  assert.equal(tooLong.kind, "rejected");
  assert.match(tooLong.message, /30 days/);
});

test("user list checks the credentials and names the owners", async () => {
  const { users } = await call(sim.config(), "user/listByClient");
  assert.ok(users.includes(sim.owner), JSON.stringify(users));
});

test("Dynamics rows map into SALESmanago and back without a difference", async () => {
  const engine = await loadEngine();
  const rows = [
    { contactid: "6e1b3a1c-0000-4000-8000-000000000001", fullname: "Zoë Ó'Brien-Żak", emailaddress1: " Zoe@Example.COM ",
      mobilephone: "+48 600 100 200", fax: "22 555 01 02", address1_line1: "ul. Długa 5", address1_line2: "m. 3",
      address1_city: "Bielsko-Biała", address1_postalcode: "43-300", address1_country: "PL", birthdate: "2000-02-29",
      donotbulkemail: true, new_donotsms: false, new_consent_marketing: true, modifiedon: "2020-01-01T00:00:00Z",
      // Agreed withdrawn at the last synchronisation, granted in Dynamics since: it travels.
      new_salesmanagoconsentbase: JSON.stringify({ MARKETING: false }) },
    { contactid: "6e1b3a1c-0000-4000-8000-000000000002", firstname: "<b>Bobby</b>", lastname: "Tables",
      emailaddress1: "bobby@example.com", telephone1: "(22) 555 01 01", birthdate: "2023-02-29", donotbulkemail: false },
  ];
  const mapped = rows.map((row) => JSON.parse(engine.mapContact(JSON.stringify(row), false, false, 1033)));
  assert.deepEqual(mapped[0].warnings, []);
  assert.deepEqual(mapped[1].warnings, ["The birth date is not a real date between 1900 and today, so it was not sent."]);
  const outcome = await call(sim.config(), "contact/batchupsert", { upsertDetails: mapped.map((m) => m.details) });
  assert.deepEqual(Object.keys(outcome.ids).sort(), ["bobby@example.com", "zoe@example.com"]);

  const stored = Object.fromEntries((await sim.contacts()).map((c) => [c.email, c]));
  const zoe = stored["zoe@example.com"];
  assert.equal(zoe.name, "Zoë Ó'Brien-Żak");
  assert.equal(zoe.phone, "+48 600 100 200");
  assert.equal(zoe.fax, "22 555 01 02");
  assert.equal(zoe.externalId, rows[0].contactid);
  assert.deepEqual(zoe.address, { streetAddress: "ul. Długa 5, m. 3", zipCode: "43-300", city: "Bielsko-Biała", country: "PL" });
  assert.equal(zoe.birthday, "20000229");
  assert.equal(zoe.optedOut, true);
  assert.equal(zoe.optedOutPhone, false);
  assert.deepEqual(zoe.consents.map((c) => [c.consentName, c.consentAccept, c.optOut]), [["MARKETING", true, false]]);
  assert.equal(stored["bobby@example.com"].name, "<b>Bobby</b> Tables");
  assert.equal(stored["bobby@example.com"].birthday ?? null, null);

  // The raw `contact/basic` answer, fetched without the engine, is what the inbound mapping reads.
  const answer = await fetch(`${sim.url}/api/contact/basic`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...sim.auth(), owner: sim.owner, email: ["zoe@example.com", "bobby@example.com"] }),
  }).then((r) => r.json());
  assert.equal(answer.success, true);
  // Only the new SALESmanago id differs, and Bobby's SMS opt-out, which Dynamics did not hold
  // (null) and SALESmanago now reports as "not opted out".
  const expected = [
    ["zoe@example.com", { new_salesmanagoid: outcome.ids["zoe@example.com"] }],
    ["bobby@example.com", { new_salesmanagoid: outcome.ids["bobby@example.com"], new_donotsms: false }],
  ];
  for (const [i, [email, columns]] of expected.entries()) {
    const raw = answer.contacts.find((c) => c.email === email);
    const patch = JSON.parse(engine.contactPatch(JSON.stringify(rows[i]), JSON.stringify(raw), 1033));
    assert.deepEqual(patch, columns, email);
  }
});

test("a contact without a usable e-mail is refused with the reason, in the user's language", async () => {
  const engine = await loadEngine();
  const skipped = (row, lcid) => {
    try {
      engine.mapContact(JSON.stringify(row), false, false, lcid);
    } catch (error) {
      return [error.kind, error.message];
    }
    throw new Error("mapped");
  };
  assert.deepEqual(skipped({ fullname: "No Mail" }, 1033)[0], "skipped");
  assert.match(skipped({ emailaddress1: "łukasz@example.pl" }, 1045)[1], /łukasz@example\.pl.*litery takie jak ą/);
  assert.match(skipped({ emailaddress1: "jan@@x.pl" }, 1033)[1], /name@domain\.com/);
});

test("429 with Retry-After is waited out and retried", async () => {
  await sim.faults({ throttle: { every: 1, retryAfter: 1, count: 1 } });
  const started = Date.now();
  const { users } = await call(fast(), "user/listByClient");
  assert.ok(users.length > 0);
  assert.ok(Date.now() - started >= 950, "waited the second SALESmanago asked for");
  assert.equal((await sim.stats()).total, 2);
});

test("throttling that outlasts the attempts is reported, in Polish for a Polish user", async () => {
  await sim.faults({ throttle: { every: 1, retryAfter: 0 } });
  const error = await failure(call(fast({ maxAttempts: 3 }), "user/listByClient", {}, 1045));
  assert.equal(error.kind, "throttled");
  assert.match(error.message, /zbyt wiele żądań/);
  assert.equal((await sim.stats()).total, 3);
});

test("5xx answers are retried with backoff, then reported with their status", async () => {
  await sim.faults({ serverError: { every: 1, status: 503, count: 2 } });
  assert.ok((await call(fast(), "user/listByClient")).users.length > 0);
  assert.equal((await sim.stats()).total, 3);
  await sim.faults({ serverError: { every: 1, status: 502 } });
  const error = await failure(call(fast({ maxAttempts: 2 }), "user/listByClient"));
  assert.equal(error.kind, "server");
  assert.match(error.message, /HTTP 502/);
});

test("a hung request times out and is retried", async () => {
  await sim.faults({ hang: { every: 1, count: 1 } });
  assert.ok((await call(fast({ timeoutMs: 300 }), "user/listByClient")).users.length > 0);
  await sim.faults({ hang: { every: 1 } });
  const error = await failure(call(fast({ timeoutMs: 200, maxAttempts: 2 }), "user/listByClient"));
  assert.equal(error.kind, "timeout");
  assert.match(error.message, /did not answer in time/);
});

test("a garbled answer is retried, then reported", async () => {
  await sim.faults({ malformed: { every: 1, count: 1 } });
  assert.ok((await call(fast(), "user/listByClient")).users.length > 0);
  await sim.faults({ malformed: { every: 1 } });
  const error = await failure(call(fast({ maxAttempts: 2 }), "user/listByClient"));
  assert.equal(error.kind, "invalidResponse");
});

test("success:false for a contact is a refusal, alone or in a batch", async () => {
  await sim.faults({ rejectEmails: ["no@example.com"] });
  const error = await failure(call(fast(), "contact/upsert", { contact: { email: "no@example.com" } }));
  assert.equal(error.kind, "rejected");
  assert.match(error.message, /Contact rejected: no@example\.com/);
  assert.equal((await sim.stats()).total, 1, "a refusal is not retried");
  const outcome = await call(fast(), "contact/batchupsert", {
    upsertDetails: [{ contact: { email: "yes@example.com" } }, { contact: { email: "no@example.com" } }],
  });
  assert.deepEqual(Object.keys(outcome.ids), ["yes@example.com"]);
  assert.match(outcome.failed["no@example.com"], /rejected/);
});

test("bad credentials and owners are reported once, without the secret", async () => {
  const wrong = await failure(call(sim.config({ apiSecret: "not-the-secret-1234" }), "user/listByClient"));
  assert.equal(wrong.kind, "auth");
  assert.match(wrong.message, /client ID, the API secret/);
  assert.ok(!wrong.message.includes("not-the-secret-1234") && !wrong.message.includes(sim.apiSecret));
  assert.equal((await sim.stats()).total, 1, "not retried");
  const owner = await failure(call(sim.config({ owner: "stranger@example.com" }), "contact/hasContact", { email: "a@b.pl" }));
  assert.equal(owner.kind, "unknownOwner");
  assert.match(owner.message, /stranger@example\.com/);
  const incomplete = await failure(call(sim.config({ clientId: " " }), "user/listByClient"));
  assert.equal(incomplete.kind, "credentials");
});

test("unusable endpoints and unreachable servers are told apart", async () => {
  const insecure = await failure(call(sim.config({ endpoint: "http://salesmanago.example.com" }), "user/listByClient"));
  assert.equal(insecure.kind, "endpoint");
  assert.match(insecure.message, /https:\/\//);
  const relay = await failure(call(sim.config({ endpoint: "relay.example.com" }), "user/listByClient"));
  assert.equal(relay.kind, "endpoint");

  const closed = await new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
  const down = await failure(call(fast({ endpoint: `http://127.0.0.1:${closed}`, maxAttempts: 2 }), "user/listByClient"));
  assert.equal(down.kind, "network");
  const missing = await failure(call(fast({ endpoint: `${sim.url}/not-a-relay` }), "user/listByClient"));
  assert.equal(missing.kind, "unknownMethod");
});

test("latency slows calls down but changes nothing", async () => {
  await sim.faults({ latencyMs: 50 });
  const { contactId } = await call(sim.config(), "contact/upsert", { contact: { email: "slow@example.com" } });
  assert.deepEqual(await call(sim.config(), "contact/hasContact", { email: "slow@example.com" }), { contactId });
});

test("calls the engine cannot read are refused as such", async () => {
  const unknown = await failure(call(sim.config(), "contact/frobnicate"));
  assert.equal(unknown.kind, "invalidInput");
  const engine = await loadEngine();
  const broken = await failure(engine.salesmanagoCall("{", "{}", 1033));
  assert.equal(broken.kind, "invalidInput");
});
