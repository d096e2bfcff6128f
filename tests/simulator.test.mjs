// Contract tests of the SALESmanago API v2 simulator (tests/simulator/). Every simulator listens on
// port 0 and is closed at the end of its test; loops are bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { generateActivity, startSimulator } from "./simulator/server.mjs";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const DAY_MS = 86_400_000;
const REQUEST_TIMEOUT_MS = 3000; // every request is bounded, so a stray hang fails instead of stalling

const sha1 = (text) => createHash("sha1").update(text).digest("hex");

/** Starts a simulator, runs fn(api), always closes it. */
async function withSimulator(options, fn) {
  const sim = await startSimulator({ port: 0, ...options });
  try {
    await fn(api(sim), sim);
  } finally {
    await sim.close();
  }
}

/** A tiny client: signs with the simulator's own credentials unless `auth` overrides them. */
function api(sim) {
  const sign = (apiKey = `key-${Math.random()}`) => ({
    clientId: sim.clientId,
    apiKey,
    requestTime: Date.now(),
    sha: sha1(apiKey + sim.clientId + sim.apiSecret),
  });
  async function raw(path, init = {}) {
    const response = await fetch(`${sim.url}${path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...init });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text };
  }
  /** opts.auth replaces the signed auth fields; opts.owner: undefined sends no owner at all. */
  async function call(method, fields = {}, opts = {}) {
    const auth = opts.auth ?? sign();
    const owner = "owner" in opts ? opts.owner : sim.owner;
    const body = { ...auth, ...(owner === undefined ? {} : { owner }), ...fields };
    const response = await raw(`/api/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { ...response, json: parseOrUndefined(response.text) };
  }
  async function control(method, path, body) {
    const init = body === undefined ? { method } : { method, body: JSON.stringify(body) };
    const response = await raw(`/__sim/${path}`, init);
    return { ...response, json: JSON.parse(response.text) };
  }
  const upsert = (contact, extra = {}) => call("contact/upsert", { contact, ...extra });
  const stored = async (email) => (await control("GET", "contacts")).json.find((c) => c.email === email);
  return { sign, raw, call, control, upsert, stored };
}

function parseOrUndefined(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function assertFailure(response, message) {
  assert.equal(response.status, 200);
  assert.deepEqual(response.json, { success: false, message: [message] });
}

// --- authentication --------------------------------------------------------------------------

test("sha check uses sha1(apiKey + clientId + apiSecret): the reference §2 test vector", async () => {
  const vector = "8c7b410b4b1c27f8bb78830431be9e59ed041b98";
  assert.equal(sha1("my-random-api-key" + "abc123clientid" + "my-api-secret"), vector);
  await withSimulator({ clientId: "abc123clientid", apiSecret: "my-api-secret" }, async ({ call }) => {
    const auth = { clientId: "abc123clientid", apiKey: "my-random-api-key", requestTime: 1327056031488, sha: vector };
    const ok = await call("user/listByClient", {}, { auth, owner: undefined });
    assert.equal(ok.json.success, true, ok.text);

    const flipped = vector.slice(0, -1) + "9";
    assertFailure(await call("user/listByClient", {}, { auth: { ...auth, sha: flipped } }), "Not authenticated");
    assertFailure(await call("user/listByClient", {}, { auth: { ...auth, sha: vector.toUpperCase() } }), "Not authenticated");
    assertFailure(await call("user/listByClient", {}, { auth: { ...auth, apiKey: "other-key" } }), "Not authenticated");
    const otherClient = { ...auth, clientId: "other", sha: sha1("my-random-api-key" + "other" + "my-api-secret") };
    assertFailure(await call("user/listByClient", {}, { auth: otherClient }), "Not authenticated");
  });
});

test("requestTime must be present and numeric, in any unit, number or string", async () => {
  await withSimulator({}, async ({ call, sign }) => {
    for (const requestTime of [1327056031, 1327056031488, "1560928886645", "1560928886"]) {
      const response = await call("contact/hasContact", { email: "a@b.co" }, { auth: { ...sign(), requestTime } });
      assert.equal(response.json.success, true, `requestTime ${requestTime}`);
    }
    for (const requestTime of [undefined, null, "", "soon", true, {}]) {
      const response = await call("contact/hasContact", { email: "a@b.co" }, { auth: { ...sign(), requestTime } });
      assertFailure(response, "Not authenticated");
    }
  });
});

// --- envelope and routing --------------------------------------------------------------------

test("unknown or wrongly cased paths are 404 and non-JSON bodies are 400, both in the envelope", async () => {
  await withSimulator({}, async ({ call, raw }) => {
    const unknown = await call("contact/nothing");
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { success: false, message: ["Unknown method contact/nothing"] });
    assert.equal((await call("contact/Upsert")).status, 404);

    for (const body of ["{not json", "[1,2]", ""]) {
      const response = await raw("/api/contact/upsert", { method: "POST", body });
      assert.equal(response.status, 400, body);
      assert.match(response.headers.get("content-type"), /^application\/json/);
      assert.deepEqual(JSON.parse(response.text), { success: false, message: ["Malformed JSON"] });
    }
  });
});

// --- owner -----------------------------------------------------------------------------------

test("owner is required on contact methods, matched case-insensitively against the account's users", async () => {
  await withSimulator({}, async ({ call, upsert }) => {
    const contact = { email: "a@b.co" };
    assertFailure(await call("contact/upsert", { contact }, { owner: undefined }), "owner is a mandatory field");
    assertFailure(await call("contact/upsert", { contact }, { owner: "nobody@example.com" }), "Owner nobody@example.com not found");
    assert.equal((await call("contact/upsert", { contact }, { owner: "SECOND.owner@Example.com" })).json.success, true);
    assert.equal((await upsert(contact)).json.success, true);
    // opt-in family needs no owner
    assert.equal((await call("contact/optout", { email: "a@b.co" }, { owner: undefined })).json.success, true);
  });
});

test("user/listByClient lists the account's users; options override clientId, secret and default owner", async () => {
  await withSimulator({}, async ({ call }, sim) => {
    const { json } = await call("user/listByClient", {}, { owner: undefined });
    assert.equal(json.success, true);
    assert.deepEqual(json.users.map((u) => u.email), ["owner@example.com", "second.owner@example.com"]);
    assert.ok(json.users.every((u) => typeof u.name === "string" && u.name.length > 0));
    assert.deepEqual([sim.clientId, sim.apiSecret, sim.owner], ["sim-client", "sim-secret-0123456789", "owner@example.com"]);
  });
  await withSimulator({ clientId: "c2", apiSecret: "s2", owner: "boss@corp.io" }, async ({ call }, sim) => {
    assert.deepEqual([sim.clientId, sim.apiSecret, sim.owner], ["c2", "s2", "boss@corp.io"]);
    const { json } = await call("user/listByClient", {}, { owner: undefined });
    assert.deepEqual(json.users.map((u) => u.email), ["boss@corp.io", "second.owner@example.com"]);
    assert.equal((await call("contact/hasContact", { email: "a@b.co" })).json.success, true);
  });
});

// --- upsert ----------------------------------------------------------------------------------

test("upsert creates, then updates keeping absent/null fields, and renames with newEmail", async () => {
  await withSimulator({}, async ({ upsert, stored, call, control }) => {
    const created = await upsert(
      {
        email: " John@Example.COM ",
        name: "John",
        phone: "+48123",
        company: "ACME",
        externalId: "U1",
        state: "PROSPECT",
        address: { streetAddress: "Main 1", zipCode: "43-305", city: "Bielsko", country: "PL" },
      },
      { province: "Śląskie", birthday: "19801017" },
    );
    assert.equal(created.json.success, true);
    assert.deepEqual(Object.keys(created.json).sort(), ["contactId", "message", "success"]);
    assert.deepEqual(created.json.message, []);
    assert.match(created.json.contactId, UUID_V4);

    const updated = await upsert({ email: "john@example.com", name: null, phone: "+48999", address: { city: "Katowice" } });
    assert.equal(updated.json.contactId, created.json.contactId);
    const john = await stored("john@example.com");
    assert.equal(john.id, created.json.contactId);
    assert.equal(john.name, "John");
    assert.equal(john.phone, "+48999");
    assert.equal(john.company, "ACME");
    assert.equal(john.mainContactOwner, "owner@example.com");
    assert.deepEqual(john.address, { streetAddress: "Main 1", zipCode: "43-305", city: "Katowice", country: "PL" });
    assert.equal(john.province, "Śląskie");
    assert.equal(john.birthday, "19801017");

    const renamed = await upsert({ email: "JOHN@example.com" }, { newEmail: "John.New@Example.com" });
    assert.equal(renamed.json.contactId, created.json.contactId);
    assert.equal(await stored("john@example.com"), undefined);
    assert.equal((await stored("john.new@example.com")).name, "John");
    assert.equal((await call("contact/hasContact", { email: "john.new@example.com" })).json.result, true);
    assert.equal((await call("contact/hasContact", { email: "john@example.com" })).json.result, false);
    assert.equal((await control("GET", "contacts")).json.length, 1);
    await upsert({ email: "other@example.com" });
    assertFailure(await upsert({ email: "other@example.com" }, { newEmail: "JOHN.NEW@example.com" }), "Contact john.new@example.com already exists");
  });
});

test("modifiedOn is bumped only on a real change and strictly increases across the store", async () => {
  await withSimulator({}, async ({ upsert, stored, call, control }) => {
    await upsert({ email: "a@b.co", name: "A" }, { tags: ["x"], properties: { k: "v" } });
    const first = await stored("a@b.co");
    assert.equal(first.createdOn, first.modifiedOn);

    await upsert({ email: "a@b.co", name: "A" }, { tags: ["X"], properties: { k: "v" } });
    assert.equal((await stored("a@b.co")).modifiedOn, first.modifiedOn, "no change, no bump");

    await upsert({ email: "a@b.co", name: "B" });
    const second = await stored("a@b.co");
    assert.ok(second.modifiedOn > first.modifiedOn);
    assert.equal(second.createdOn, first.createdOn);

    const times = [second.modifiedOn];
    for (let i = 0; i < 20; i += 1) {
      await upsert({ email: `c${i}@b.co` });
      times.push((await stored(`c${i}@b.co`)).modifiedOn);
    }
    for (let i = 1; i < times.length; i += 1) assert.ok(times[i] > times[i - 1], `modifiedOn #${i} increases`);

    // one batch is applied within the same millisecond, yet every modifiedOn differs
    const upsertDetails = Array.from({ length: 50 }, (_, i) => ({ contact: { email: `batch${i}@b.co` } }));
    await call("contact/batchupsert", { upsertDetails });
    const all = (await control("GET", "contacts")).json.filter((c) => c.email.startsWith("batch"));
    assert.equal(all.length, 50);
    for (let i = 1; i < all.length; i += 1) assert.ok(all[i].modifiedOn > all[i - 1].modifiedOn, `batch item ${i}`);
  });
});

test("e-mail validation rejects with 'Invalid email: <email>'", async () => {
  await withSimulator({}, async ({ upsert, stored }) => {
    const valid = ["a@b.co", "  Mixed.Case+tag@Example.COM ", `${"l".repeat(64)}@b.co`, `a@${"d".repeat(248)}.co`];
    for (const email of valid) assert.equal((await upsert({ email })).json.success, true, email);
    assert.ok(await stored("mixed.case+tag@example.com"), "stored trimmed and lower-cased");

    const invalid = [
      "",
      "plain",
      "a@@b.co",
      "a@b@c.co",
      "a@nodot",
      "@b.co",
      "a b@c.co",
      "żółw@x.pl",
      `${"l".repeat(65)}@b.co`,
      `a@${"d".repeat(250)}.co`,
    ];
    for (const email of invalid) assertFailure(await upsert({ email }), `Invalid email: ${email}`);
    assertFailure(await upsert({ email: "a@b.co" }, { newEmail: "broken" }), "Invalid email: broken");
  });
});

test("birthday must be yyyyMMdd or MMdd of a real date", async () => {
  await withSimulator({}, async ({ upsert, stored }) => {
    for (const birthday of ["20240229", "0229", "19801017", "1231"]) {
      assert.equal((await upsert({ email: "a@b.co" }, { birthday })).json.success, true, birthday);
      assert.equal((await stored("a@b.co")).birthday, birthday);
    }
    for (const birthday of ["20230229", "19801301", "1332", "1980-10-17", "", "198010"]) {
      assertFailure(await upsert({ email: "a@b.co" }, { birthday }), "Invalid birthday");
    }
    assert.equal((await stored("a@b.co")).birthday, "1231", "a rejected upsert changes nothing");
  });
});

test("force flags, consents, tags and properties", async () => {
  await withSimulator({}, async ({ upsert, stored }) => {
    const email = "a@b.co";
    await upsert({ email }, { forceOptOut: true, forcePhoneOptOut: true });
    assert.deepEqual(await flags(), [true, true]);
    await upsert({ email }, { forceOptIn: true });
    assert.deepEqual(await flags(), [false, true]);
    await upsert({ email }, { forcePhoneOptIn: true });
    assert.deepEqual(await flags(), [false, false]);
    await upsert({ email }, { forceOptIn: true, forceOptOut: true, forcePhoneOptIn: true, forcePhoneOptOut: true });
    assert.deepEqual(await flags(), [true, true], "opt-out wins");
    await upsert({ email });
    assert.deepEqual(await flags(), [true, true], "absent flags keep the stored state");

    await upsert(
      { email },
      {
        consentDetails: [
          { consentName: "Marketing", consentAccept: true, agreementDate: 1672327453000, optOut: false },
          { consentName: "SMS", consentAccept: true, agreementDate: 1 },
          { consentName: "MARKETING", consentAccept: false, optOut: true, agreementDate: 1672327454000 },
        ],
        tags: ["vip customer", " api "],
        properties: { "custom.nickname": "Konri", tier: "GOLD" },
      },
    );
    await upsert({ email }, { tags: ["new"], removeTags: ["Api"], properties: { tier: "SILVER", extra: 7 } });
    const contact = await stored(email);
    assert.deepEqual(contact.consents, [
      { consentName: "MARKETING", consentAccept: false, optOut: true, agreementDate: 1672327454000 },
      { consentName: "SMS", consentAccept: true, optOut: false, agreementDate: 1 },
    ]);
    assert.deepEqual(contact.tags.sort(), ["NEW", "VIP_CUSTOMER"]);
    assert.deepEqual(contact.properties, { "custom.nickname": "Konri", tier: "SILVER", extra: "7" });

    async function flags() {
      const { optedOut, optedOutPhone } = await stored(email);
      return [optedOut, optedOutPhone];
    }
  });
});

// --- batch -----------------------------------------------------------------------------------

test("batchupsert returns contactIds by stored e-mail and one message per failed item", async () => {
  await withSimulator({ maxBatch: 3 }, async ({ call, stored }) => {
    const response = await call("contact/batchupsert", {
      upsertDetails: [
        { contact: { email: "A@Example.com", name: "A" }, forceOptIn: true },
        { contact: { email: "not-an-email" } },
        { contact: { email: "b@example.com" }, birthday: "20231340", tags: ["X"] },
      ],
    });
    assert.equal(response.json.success, true);
    assert.deepEqual(Object.keys(response.json.contactIds), ["a@example.com"]);
    assert.equal(response.json.contactIds["a@example.com"], (await stored("a@example.com")).id);
    assert.equal(response.json.message.length, 2);
    assert.equal(response.json.message[0], "Invalid email: not-an-email");
    assert.match(response.json.message[1], /b@example\.com/);
    assert.match(response.json.message[1], /Invalid birthday/);
    assert.equal(await stored("b@example.com"), undefined);

    const tooMany = Array.from({ length: 4 }, (_, i) => ({ contact: { email: `c${i}@example.com` } }));
    assertFailure(await call("contact/batchupsert", { upsertDetails: tooMany }), "Too many contacts in one request (max 3)");
    assertFailure(await call("contact/batchupsert", { upsertDetails: tooMany.slice(0, 1) }, { owner: undefined }), "owner is a mandatory field");
  });
});

test("batchupsert defaults to a 1000-item limit", async () => {
  await withSimulator({}, async ({ call }) => {
    const details = (n) => Array.from({ length: n }, (_, i) => ({ contact: { email: `c${i}@example.com` } }));
    assertFailure(await call("contact/batchupsert", { upsertDetails: details(1001) }), "Too many contacts in one request (max 1000)");
    const ok = await call("contact/batchupsert", { upsertDetails: details(1000) });
    assert.equal(Object.keys(ok.json.contactIds).length, 1000);
  });
});

// --- delete and lookups ----------------------------------------------------------------------

test("delete removes the contact; hasContact reflects it", async () => {
  await withSimulator({}, async ({ call, upsert }) => {
    const { contactId } = (await upsert({ email: "a@b.co" })).json;
    assert.deepEqual((await call("contact/hasContact", { email: "A@B.co" })).json, { success: true, message: [], result: true, contactId });
    assert.deepEqual((await call("contact/delete", { email: "a@b.co", permanently: true })).json, { success: true, message: [], result: null });
    assert.deepEqual((await call("contact/hasContact", { email: "a@b.co" })).json, { success: true, message: [], result: false, contactId: null });
    assertFailure(await call("contact/delete", { email: "a@b.co" }), "Contact not found");
    assert.deepEqual((await call("contact/basicById", { id: [contactId] })).json.contacts, [], "gone by id too");
  });
});

test("insert creates only, update updates only the contact its top-level email names", async () => {
  await withSimulator({}, async ({ call, stored }) => {
    assertFailure(await call("contact/update", { email: "a@b.co", contact: { name: "A" } }), "Contact not found");
    const { contactId } = (await call("contact/insert", { contact: { email: "a@b.co", name: "A" } })).json;
    assertFailure(await call("contact/insert", { contact: { email: "A@b.co" } }), "Contact a@b.co already exists");
    const updated = (await call("contact/update", { email: "A@B.co", contact: { name: "Ann", city: "x" } })).json;
    assert.deepEqual(updated, { success: true, message: [], contactId });
    assert.equal((await stored("a@b.co")).name, "Ann");
    assertFailure(await call("contact/update", { contact: { email: "a@b.co" } }), "email is a mandatory field");
  });
});

test("the export job: export/data by tag answers a requestId, job/status says when the file is ready, the file lists the contacts", async () => {
  await withSimulator({ exportDelayMs: 300 }, async ({ call, upsert, raw }) => {
    const consent = { consentName: "MARKETING", consentAccept: true, optOut: false, agreementDate: 1700000000000 };
    const { contactId } = (await upsert({ email: "a@b.co" }, { tags: ["dynamics 365"], consentDetails: [consent] })).json;
    await upsert({ email: "untagged@b.co" });
    const data = [{ dataType: "CONTACT" }, { dataType: "CONSENTS" }];
    assertFailure(await call("contact/export/data", { contacts: [{ addresseeType: "all" }], data }), 'contacts holds {"addresseeType":"tag","value":"…"} selections');
    assertFailure(await call("contact/export/data", { contacts: [{ addresseeType: "tag", value: "X" }], data: [{ dataType: "NOPE" }] }), "Unknown dataType NOPE");
    const { requestId } = (await call("contact/export/data", { contacts: [{ addresseeType: "tag", value: "DYNAMICS_365" }], data })).json;
    assert.ok(Number.isInteger(requestId));
    const pending = (await call("job/status", { requestId }, { owner: undefined })).json;
    assert.equal(pending.success, true);
    assert.ok(pending.message.length > 0 && pending.fileUrl === undefined, JSON.stringify(pending));
    assertFailure(await call("job/status", { requestId: 1 }, { owner: undefined }), "Job not found");
    let ready;
    for (let i = 0; i < 50 && !ready?.fileUrl; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      ready = (await call("job/status", { requestId }, { owner: undefined })).json;
    }
    assert.deepEqual(ready.message, []);
    const file = JSON.parse((await raw(new URL(ready.fileUrl).pathname)).text);
    assert.equal(file.length, 1, "only the tagged contact");
    const entry = file[0][contactId];
    assert.equal(entry.contactData.email, "a@b.co");
    assert.equal(entry.contactData.consents, undefined, "consents come in their own part");
    assert.equal(entry.consents[0].consentName, "MARKETING");
    assert.equal(entry.consents[0].consentAccept, true);
  });
});

test("lookups by id follow renames and replacements", async () => {
  await withSimulator({}, async ({ call, upsert }) => {
    const { contactId } = (await upsert({ email: "old@b.co" })).json;
    await upsert({ email: "old@b.co" }, { newEmail: "new@b.co" });
    const byId = async (id) => (await call("contact/listById", { contactId: [id] })).json.contacts.map((c) => c.email);
    assert.deepEqual(await byId(contactId), ["new@b.co"]);
    const other = (await upsert({ email: "other@b.co" })).json.contactId;
    assert.deepEqual(await byId(other), ["other@b.co"]);
    assert.notEqual(other, contactId);
  });
});

test("basic and basicById return the flat §3.4 shape, without consents", async () => {
  await withSimulator({}, async ({ call, upsert, stored }) => {
    await upsert(
      { email: "banan@mail.com", name: "Banan", phone: "+393331231234", state: "PROSPECT", externalId: "152631" },
      { birthday: "19840804", consentDetails: [{ consentName: "MARKETING", consentAccept: true, agreementDate: 5 }] },
    );
    await upsert({ email: "addr@mail.com", address: { city: "New York" } }, { birthday: "0704" });
    const banan = await stored("banan@mail.com");
    const expected = {
      contactId: banan.id,
      name: "Banan",
      email: "banan@mail.com",
      phone: "+393331231234",
      fax: null,
      score: 0,
      state: "PROSPECT",
      optedOut: false,
      optedOutPhone: false,
      deleted: false,
      invalid: false,
      company: null,
      externalId: "152631",
      address: null,
      birthdayYear: "1984",
      birthdayMonth: "8",
      birthdayDay: "4",
      modifiedOn: banan.modifiedOn,
      createdOn: banan.createdOn,
      lastVisit: null,
    };
    const basic = await call("contact/basic", { email: ["BANAN@mail.com", "missing@mail.com"] });
    assert.deepEqual(basic.json, { success: true, message: [], contacts: [expected] });
    assert.deepEqual((await call("contact/basic", { email: "banan@mail.com" })).json.contacts, [expected]);
    assert.deepEqual((await call("contact/basicById", { id: [banan.id, "nope"] })).json.contacts, [expected]);

    const [addr] = (await call("contact/basic", { email: ["addr@mail.com"] })).json.contacts;
    assert.deepEqual(addr.address, { streetAddress: null, zipCode: null, city: "New York", country: null });
    assert.deepEqual([addr.birthdayYear, addr.birthdayMonth, addr.birthdayDay], [null, "7", "4"]);
  });
});

test("listById returns full cards and at most 50 ids", async () => {
  await withSimulator({}, async ({ call, upsert, stored }) => {
    await upsert(
      { email: "card@mail.com", name: "Card" },
      { tags: ["igen"], properties: { Nem: "Nő" }, province: "Mazowieckie", consentDetails: [{ consentName: "M", agreementDate: 9 }] },
    );
    const card = await stored("card@mail.com");
    const { json } = await call("contact/listById", { contactId: [card.id, "unknown-id"] });
    assert.equal(json.success, true);
    assert.equal(json.contacts.length, 1);
    const [got] = json.contacts;
    assert.equal(got.id, card.id);
    assert.equal("contactId" in got, false);
    assert.equal(got.mainContactOwner, "owner@example.com");
    assert.equal(got.province, "Mazowieckie");
    assert.deepEqual(got.properties, [{ name: "Nem", value: "Nő" }]);
    assert.equal(got.contactTags.length, 1);
    const [tag] = got.contactTags;
    assert.deepEqual({ ...tag, createdOn: 0 }, { tag: "IGEN", tagName: "IGEN", score: 1, createdOn: 0, tagWithScore: "IGEN (1)" });
    assert.equal(typeof tag.createdOn, "number");
    for (const list of ["contactVisits", "contactEvents", "emailMessages", "contactFunnels", "contactNotes", "contactTasks", "incomingEmailMessages", "contactExtEvents", "coupons", "smsMessages"]) {
      assert.deepEqual(got[list], [], list);
    }
    assert.equal("consents" in got, false, "no consents on listById, as on basic");
    assert.equal(got.modifiedOn, card.modifiedOn);

    const ids = Array.from({ length: 51 }, (_, i) => `id-${i}`);
    assertFailure(await call("contact/listById", { contactId: ids }), "Up to 50 contacts at once");
    assert.equal((await call("contact/listById", { contactId: ids.slice(0, 50) })).json.success, true);
  });
});

// --- change feeds ----------------------------------------------------------------------------

test("modifiedContacts and paginatedModifiedContacts window, order and page", async () => {
  await withSimulator({ maxWindowDays: 2 }, async ({ call, control }) => {
    const base = 1_700_000_000_000;
    const seeded = [3, 1, 2, 2, 5].map((offset, i) => ({ email: `m${i}@b.co`, modifiedOn: base + offset, id: `id-${i}` }));
    assert.equal((await control("POST", "contacts", seeded)).status, 200);

    const plain = await call("contact/modifiedContacts", { from: base + 1, to: `${base + 3}` });
    assert.deepEqual(plain.json.modifiedContacts.map((c) => c.email), ["m1@b.co", "m2@b.co", "m3@b.co", "m0@b.co"]);
    assert.deepEqual(plain.json.modifiedContacts[0], { id: "id-1", email: "m1@b.co" });

    const page = (n, size) => call("contact/paginatedModifiedContacts", { from: base, to: base + 10, page: n, size });
    const first = (await page(1, 2)).json;
    assert.deepEqual(first, {
      success: true,
      message: [],
      modifiedContacts: [
        { contactId: "id-1", id: "id-1", email: "m1@b.co", modifiedOn: base + 1 },
        { contactId: "id-2", id: "id-2", email: "m2@b.co", modifiedOn: base + 2 },
      ],
      hasMore: true,
    });
    assert.deepEqual((await page(2, 2)).json.modifiedContacts.map((c) => c.id), ["id-3", "id-0"]);
    const last = (await page(3, 2)).json;
    assert.deepEqual([last.modifiedContacts.map((c) => c.id), last.hasMore], [["id-4"], false]);
    const exact = (await page(1, 5)).json;
    assert.deepEqual([exact.modifiedContacts.length, exact.hasMore], [5, false], "a full last page has no more");
    assert.deepEqual((await page(4, 2)).json.modifiedContacts, []);
    assert.equal((await call("contact/paginatedModifiedContacts", { from: base, to: base + 10 })).json.modifiedContacts.length, 5);

    const window = (from, to, extra = {}) => call("contact/paginatedModifiedContacts", { from, to, page: 1, size: 10, ...extra });
    assert.equal((await window(base, base + 2 * DAY_MS)).json.success, true);
    assertFailure(await window(base, base + 2 * DAY_MS + 1), "Date range too long (max 2 days)");
    for (const bad of [window(base + 1, base), window(base, base + 1, { size: 0 }), window(base, base + 1, { size: 1001 }), window(base, base + 1, { page: 0 })]) {
      const { json } = await bad;
      assert.equal(json.success, false);
      assert.equal(json.message.length, 1);
      assert.ok(json.message[0].length > 5);
    }
  });
});

test("paginatedModifiedContacts allows 30 days by default", async () => {
  await withSimulator({}, async ({ call }) => {
    const from = 1_700_000_000_000;
    assert.equal((await call("contact/paginatedModifiedContacts", { from, to: from + 30 * DAY_MS })).json.success, true);
    assertFailure(await call("contact/paginatedModifiedContacts", { from, to: from + 30 * DAY_MS + 1 }), "Date range too long (max 30 days)");
  });
});

// --- opt-in family ---------------------------------------------------------------------------

test("optin/optout/phoneoptin/phoneoptout set the flags without an owner", async () => {
  await withSimulator({}, async ({ call, upsert, stored }) => {
    const { contactId } = (await upsert({ email: "a@b.co" })).json;
    const steps = [
      ["contact/optout", [true, false]],
      ["contact/phoneoptout", [true, true]],
      ["contact/optin", [false, true]],
      ["contact/phoneoptin", [false, false]],
    ];
    for (const [method, flags] of steps) {
      const before = (await stored("a@b.co")).modifiedOn;
      assert.deepEqual((await call(method, { email: "A@b.co" }, { owner: undefined })).json, { success: true, message: [], contactId });
      const after = await stored("a@b.co");
      assert.deepEqual([after.optedOut, after.optedOutPhone], flags, method);
      assert.ok(after.modifiedOn > before, `${method} bumps modifiedOn`);
    }
    assertFailure(await call("contact/optin", { email: "nobody@b.co" }, { owner: undefined }), "Contact not found");
  });
});

// --- CORS ------------------------------------------------------------------------------------

test("no CORS headers by default, as the live API most likely has it; on every /api response with cors on", async () => {
  await withSimulator({ cors: true }, async ({ call, raw, control }) => {
    const preflight = await raw("/api/contact/upsert", { method: "OPTIONS", headers: { origin: "https://x.example" } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
    assert.equal(preflight.headers.get("access-control-allow-methods"), "POST, GET, OPTIONS");
    assert.equal(preflight.headers.get("access-control-allow-headers"), "content-type, accept");
    assert.equal(preflight.headers.get("access-control-max-age"), "600");
    assert.equal((await call("contact/upsert", { contact: { email: "a@b.co" } })).headers.get("access-control-allow-origin"), "*");
    assert.equal((await call("nothing")).headers.get("access-control-allow-origin"), "*");
    assert.equal((await call("contact/upsert", {}, { auth: {} })).headers.get("access-control-allow-origin"), "*");

    await control("POST", "faults", { cors: false });
    const noCors = await call("contact/upsert", { contact: { email: "a@b.co" } });
    assert.equal(noCors.json.success, true);
    assert.deepEqual(corsHeaders(noCors.headers), []);
    assert.deepEqual(corsHeaders((await raw("/api/contact/upsert", { method: "OPTIONS" })).headers), []);
    assert.equal((await control("GET", "stats")).headers.get("access-control-allow-origin"), "*", "/__sim keeps CORS");
  });
  await withSimulator({}, async ({ call, raw, control }) => {
    const preflight = await raw("/api/contact/upsert", { method: "OPTIONS" });
    assert.equal(preflight.status, 204);
    assert.deepEqual(corsHeaders(preflight.headers), []);
    assert.deepEqual(corsHeaders((await call("contact/hasContact", { email: "a@b.co" })).headers), []);
    assert.deepEqual(corsHeaders((await call("nothing")).headers), []);
    assert.equal((await control("GET", "faults")).headers.get("access-control-allow-origin"), "*");
  });

  function corsHeaders(headers) {
    return [...headers.keys()].filter((name) => name.startsWith("access-control-"));
  }
});

// --- faults ----------------------------------------------------------------------------------

test("throttle fires every N calls, with Retry-After, up to count times", async () => {
  await withSimulator({}, async ({ call, control }) => {
    const set = await control("POST", "faults", { throttle: { every: 2, retryAfter: 7, count: 2 } });
    assert.deepEqual(set.json, { throttle: { every: 2, count: 2, retryAfter: 7 } });
    const statuses = [];
    for (let i = 1; i <= 7; i += 1) {
      const response = await call("contact/hasContact", { email: "a@b.co" });
      statuses.push(response.status);
      if (response.status === 429) {
        assert.equal(response.headers.get("retry-after"), "7");
        assert.deepEqual(response.json, { success: false, message: ["Too many requests"] });
      }
    }
    assert.deepEqual(statuses, [200, 429, 200, 429, 200, 200, 200]);
    const stats = (await control("GET", "stats")).json;
    assert.deepEqual(stats, { calls: { "contact/hasContact": 7 }, total: 7 });

    await control("POST", "faults", { throttle: { every: 1 } });
    const throttled = await call("contact/hasContact", { email: "a@b.co" });
    assert.equal(throttled.headers.get("retry-after"), "1");
    await control("POST", "faults", {});
    assert.equal((await call("contact/hasContact", { email: "a@b.co" })).status, 200);
  });
});

test("serverError, malformed and rejectEmails faults; faulted calls change nothing", async () => {
  await withSimulator({}, async ({ call, upsert, control, raw, stored }) => {
    await control("POST", "faults", { serverError: { every: 1, status: 502, count: 1 } });
    const failed = await raw("/api/contact/upsert", { method: "POST", body: "{}" });
    assert.equal(failed.status, 502);
    assert.match(failed.headers.get("content-type"), /text\/html/);
    assert.match(failed.text, /<html/);
    assert.equal((await call("contact/hasContact", { email: "a@b.co" })).status, 200, "count: 1 stops it");

    await control("POST", "faults", { serverError: { every: 1 } });
    assert.equal((await upsert({ email: "lost@b.co" })).status, 503, "default status");
    assert.equal(await stored("lost@b.co"), undefined);

    await control("POST", "faults", { malformed: { every: 2 } });
    assert.equal((await upsert({ email: "ok@b.co" })).json.success, true);
    const broken = await raw("/api/contact/hasContact", { method: "POST", body: "{}" });
    assert.equal(broken.status, 200);
    assert.throws(() => JSON.parse(broken.text));
    assert.ok(broken.text.startsWith('{"success":'));

    await control("POST", "faults", { rejectEmails: ["Bad@B.co"] });
    assertFailure(await upsert({ email: "bad@b.co" }), "Contact rejected: bad@b.co");
    const batch = await call("contact/batchupsert", { upsertDetails: [{ contact: { email: "BAD@b.co" } }, { contact: { email: "good@b.co" } }] });
    assert.deepEqual(batch.json.message, ["Contact rejected: bad@b.co"]);
    assert.deepEqual(Object.keys(batch.json.contactIds), ["good@b.co"]);
    assert.equal(await stored("bad@b.co"), undefined);
  });
});

test("fault JSON is validated and echoed; reset clears contacts, counters and faults", async () => {
  await withSimulator({}, async ({ call, upsert, control }) => {
    for (const bad of [{ throttle: { every: 0 } }, { hang: {} }, { surprise: 1 }, { cors: "no" }, { serverError: { every: 1, status: 200 } }, [1]]) {
      const response = await control("POST", "faults", bad);
      assert.equal(response.status, 400, JSON.stringify(bad));
      assert.equal(typeof response.json.error, "string");
    }
    const full = {
      latencyMs: 0,
      throttle: { every: 3, retryAfter: 2, count: 1 },
      serverError: { every: 5, status: 500 },
      hang: { every: 1000 },
      malformed: { every: 7, count: 3 },
      rejectEmails: ["x@y.zz"],
      cors: true,
    };
    assert.deepEqual((await control("POST", "faults", full)).json, full);
    assert.deepEqual((await control("GET", "faults")).json, full);

    await upsert({ email: "a@b.co" });
    await call("contact/nothing");
    assert.equal((await control("GET", "stats")).json.total, 2);
    assert.deepEqual((await control("POST", "reset")).status, 200);
    assert.deepEqual((await control("GET", "contacts")).json, []);
    assert.deepEqual((await control("GET", "faults")).json, {});
    assert.deepEqual((await control("GET", "stats")).json, { calls: {}, total: 0 });
  });
});

test("latency applies to every /api call, from options or faults", async () => {
  await withSimulator({ latencyMs: 120 }, async ({ call, control }) => {
    let started = Date.now();
    await call("contact/hasContact", { email: "a@b.co" });
    assert.ok(Date.now() - started >= 110, "option latency");
    started = Date.now();
    await control("GET", "stats");
    assert.ok(Date.now() - started < 100, "/__sim is not delayed");

    await control("POST", "faults", { latencyMs: 0 });
    started = Date.now();
    await call("contact/hasContact", { email: "a@b.co" });
    assert.ok(Date.now() - started < 100, "fault latency overrides");
    await control("POST", "faults", { latencyMs: 200 });
    started = Date.now();
    await call("nothing");
    assert.ok(Date.now() - started >= 190, "fault latency also on unknown paths");
  });
});

test("hang never answers, and close() is prompt with hung sockets", async () => {
  const sim = await startSimulator({ port: 0 });
  const { call, control } = api(sim);
  try {
    await control("POST", "faults", { hang: { every: 2, count: 1 } });
    assert.equal((await call("contact/hasContact", { email: "a@b.co" })).status, 200);
    await assert.rejects(
      fetch(`${sim.url}/api/contact/hasContact`, { method: "POST", body: "{}", signal: AbortSignal.timeout(300) }),
      { name: "TimeoutError" },
    );
    assert.equal((await call("contact/hasContact", { email: "a@b.co" })).status, 200, "count: 1 stops it");

    await control("POST", "faults", { hang: { every: 1 } });
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const hung = fetch(`${sim.url}/api/contact/hasContact`, { method: "POST", body: "{}", signal }).then(
      () => "answered",
      () => "dropped",
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await sim.close();
    assert.ok(Date.now() - started < 1000, "close is prompt");
    assert.equal(await hung, "dropped");
  } finally {
    await sim.close();
  }
});

// --- control endpoints -----------------------------------------------------------------------

test("/__sim/contacts?every=N lists every Nth contact, and names a bad N", async () => {
  await withSimulator({}, async ({ control }) => {
    await control("POST", "contacts", [1, 2, 3, 4, 5].map((i) => ({ email: `c${i}@example.com` })));
    const emails = async (path) => (await control("GET", path)).json.map((c) => c.email);
    assert.deepEqual(await emails("contacts?every=2"), ["c1@example.com", "c3@example.com", "c5@example.com"]);
    assert.deepEqual(await emails("contacts?every=1"), await emails("contacts"));
    for (const bad of ["0", "1.5", "x"]) {
      const refused = await control("GET", `contacts?every=${bad}`);
      assert.equal(refused.status, 400, bad);
      assert.equal(refused.json.error, `every takes a whole number ≥ 1, not ${bad}`);
    }
  });
});

test("/__sim/contacts seeds (honouring id and times) and lists the internal shape", async () => {
  await withSimulator({}, async ({ call, control }) => {
    const seed = [
      {
        email: "Seed@Example.com",
        id: "fixed-id",
        createdOn: 1000,
        modifiedOn: 2000,
        name: "Seed",
        tags: ["a b"],
        consents: [{ consentName: "MARKETING", consentAccept: true, optOut: false, agreementDate: 3 }],
        properties: { k: "v" },
        optedOut: true,
        address: { city: "X" },
      },
      { email: "plain@example.com" },
    ];
    const seeded = await control("POST", "contacts", seed);
    assert.equal(seeded.status, 200);
    assert.equal(seeded.json.length, 2);
    const listed = (await control("GET", "contacts")).json;
    assert.deepEqual(listed, seeded.json);
    const [first, second] = listed;
    // The seeded consent is the first entry of its history, stamped when it was stored.
    const [change, ...more] = first.consentHistory;
    assert.deepEqual({ ...change, at: 0 }, { consentName: "MARKETING", consentAccept: true, optOut: false, agreementDate: 3, at: 0 });
    assert.ok(change.at >= Date.now() - 60_000 && more.length === 0, JSON.stringify(first.consentHistory));
    delete first.consentHistory;
    assert.deepEqual(first, {
      id: "fixed-id",
      email: "seed@example.com",
      name: "Seed",
      phone: null,
      fax: null,
      company: null,
      externalId: null,
      state: null,
      address: { streetAddress: null, zipCode: null, city: "X", country: null },
      province: null,
      birthday: null,
      optedOut: true,
      optedOutPhone: false,
      score: 0,
      lastVisit: null,
      mainContactOwner: "owner@example.com",
      consents: [{ consentName: "MARKETING", consentAccept: true, optOut: false, agreementDate: 3 }],
      tags: ["A_B"],
      properties: { k: "v" },
      createdOn: 1000,
      modifiedOn: 2000,
    });
    assert.match(second.id, UUID_V4);
    assert.ok(second.modifiedOn > 2000);
    assert.equal((await call("contact/hasContact", { email: "seed@example.com" })).json.contactId, "fixed-id");
    assert.equal((await control("POST", "contacts", [{ name: "no email" }])).status, 400);
    const scored = (await control("POST", "contacts", [{ email: "scored@example.com", score: 42, lastVisit: 1764460800000 }])).json[0];
    assert.deepEqual([scored.score, scored.lastVisit], [42, 1764460800000]);
    assert.equal((await call("contact/basic", { email: ["scored@example.com"] })).json.contacts[0].score, 42);
    assert.equal((await control("POST", "contacts", [{ email: "x@example.com", score: "lots" }])).status, 400);
    await control("POST", "contacts", [{ email: "scored@example.com", score: 0 }]);
    assert.equal((await control("POST", "contacts", { email: "a@b.co" })).status, 400);
    assert.equal((await control("GET", "contacts")).json.length, 3, "a rejected seed stores nothing");
  });
});

// --- command line ----------------------------------------------------------------------------

test("the CLI prints one JSON line, serves, and exits 0 on SIGTERM; bad flags exit 2", async () => {
  const cli = fileURLToPath(new URL("./simulator/cli.mjs", import.meta.url));
  const child = spawn(process.execPath, [cli, "--port", "0", "--client-id", "cli-client", "--owner", "cli@owner.io"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const line = await firstLine(child.stdout);
    const info = JSON.parse(line);
    assert.deepEqual(Object.keys(info).sort(), ["apiSecret", "clientId", "owner", "url"]);
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual([info.clientId, info.owner], ["cli-client", "cli@owner.io"]);
    const { call } = api({ ...info, owner: info.owner });
    const response = await call("contact/upsert", { contact: { email: "cli@b.co" } });
    assert.equal(response.json.success, true);
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = await within(exited, "CLI exit after SIGTERM");
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }

  const bad = spawn(process.execPath, [cli, "--port", "abc"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  bad.stderr.on("data", (chunk) => (stderr += chunk));
  const [code] = await within(once(bad, "exit"), "CLI exit on a bad flag");
  assert.equal(code, 2);
  assert.equal(stderr.trim().split("\n").length, 1);
  assert.match(stderr, /usage:/);
});

function firstLine(stream) {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error("no JSON line within 5 s")), 5000);
    stream.on("data", (chunk) => {
      buffered += chunk;
      const end = buffered.indexOf("\n");
      if (end >= 0) {
        clearTimeout(timer);
        resolve(buffered.slice(0, end));
      }
    });
  });
}

/** Rejects when the promise takes longer than REQUEST_TIMEOUT_MS. */
function within(promise, label) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no result within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// --- automation rules ------------------------------------------------------------------------

test("rules call out once per change, as documented: JSON fields as strings, Basic auth, only their events", async () => {
  const received = [];
  const receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received.push({ auth: req.headers.authorization, type: req.headers["content-type"], body: JSON.parse(body) });
      res.end("{}");
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${receiver.address().port}/salesmanago/rule`;
  try {
    await withSimulator({}, async (client, sim) => {
      await client.upsert({ email: "jan@example.com", name: "Jan", phone: "+48600100200" });
      // No rules yet: nothing calls out.
      await client.call("contact/optout", { email: "jan@example.com" }, { owner: undefined });
      assert.equal(sim.ruleStats().fired, 0);
      const set = await client.control("POST", "rules", { url, user: "salesmanago", password: "s3cret", events: ["optout", "optin", "details"] });
      assert.deepEqual(set.json.rules, { url, user: "salesmanago", events: ["optout", "optin", "details"] });
      // A change in SALESmanago's app, and one through the API (fireEvents is on by default).
      const changed = await client.control("POST", "change", { email: "jan@example.com", optedOut: false, name: "Jan K" });
      assert.equal(changed.json.optedOut, false);
      await client.call("contact/optout", { email: "jan@example.com" }, { owner: undefined });
      // An SMS opt-out is not among the rules' events; nothing changed, nothing calls.
      await client.control("POST", "change", { email: "jan@example.com", optedOutPhone: true });
      await client.control("POST", "change", { email: "jan@example.com", name: "Jan K" });
      await sim.rulesIdle();
      const id = (await client.stored("jan@example.com")).id;
      const basic = `Basic ${Buffer.from("salesmanago:s3cret").toString("base64")}`;
      assert.deepEqual(received.map((r) => [r.auth, r.type, r.body.name]), [
        [basic, "application/json", "Contact has been opted in"],
        [basic, "application/json", "Modified contact details"],
        [basic, "application/json", "Contact has been opted out"],
      ]);
      assert.deepEqual(received[0].body, { id: "rule-optin", name: "Contact has been opted in", contactId: id, description: "", email: "jan@example.com", phone: "+48600100200", company: "" });
      assert.deepEqual(sim.ruleStats(), { fired: 3, answered: 3, failed: 0, pending: 0 });
      const bad = await client.control("POST", "rules", { url, events: ["deleted"] });
      assert.equal(bad.status, 400);
      assert.match(bad.json.error, /rules.events must list some of optout/);
      assert.equal((await client.control("POST", "change", { email: "nobody@example.com", optedOut: true })).status, 400);
    });
  } finally {
    receiver.close();
  }
});

// --- activity --------------------------------------------------------------------------------

const EMAIL_KEYS = ["id", "subject", "sentOn", "openedOn", "clickedOn", "bouncedOn", "unsubscribedOn"];
const VISIT_KEYS = ["conversationId", "time", "url", "duration", "visitSource", "host"];
const EVENT_KEYS = ["eventId", "contactExtEventType", "date", "description", "products", "value", "location", "externalId"];
const activityOfCard = (card) => ({ emailMessages: card.emailMessages, contactVisits: card.contactVisits, contactExtEvents: card.contactExtEvents });

/** The listById cards of these ids, 50 at a time. */
async function cards(call, ids) {
  const out = [];
  for (let i = 0; i < ids.length; i += 50) {
    const { json } = await call("contact/listById", { contactId: ids.slice(i, i + 50) });
    assert.equal(json.success, true, JSON.stringify(json));
    out.push(...json.contacts);
  }
  return out;
}

/** Asserts one card's activity is in the assumed formats, and its times in order. */
function assertActivityFormat(activity, { since = -Infinity, until = Infinity } = {}) {
  const inRange = (t, label) => {
    assert.ok(Number.isSafeInteger(t), `${label}: ${t}`);
    assert.ok(t >= since && t <= until, `${label} ${t} outside ${since}..${until}`);
  };
  for (const m of activity.emailMessages) {
    assert.deepEqual(Object.keys(m), EMAIL_KEYS);
    assert.match(m.id, UUID_V4);
    assert.equal(typeof m.subject, "string");
    inRange(m.sentOn, "sentOn");
    for (const field of ["openedOn", "clickedOn", "bouncedOn", "unsubscribedOn"]) {
      if (m[field] === null) continue;
      inRange(m[field], field);
      assert.ok(m[field] > m.sentOn, `${field} after sentOn: ${JSON.stringify(m)}`);
    }
    if (m.clickedOn !== null || m.unsubscribedOn !== null) assert.notEqual(m.openedOn, null, "clicks and unsubscribes are opened");
    if (m.clickedOn !== null) assert.ok(m.clickedOn >= m.openedOn);
    if (m.unsubscribedOn !== null) assert.ok(m.unsubscribedOn >= m.openedOn);
    if (m.bouncedOn !== null) assert.equal(m.openedOn, null, "a bounce is never opened");
  }
  for (const v of activity.contactVisits) {
    assert.deepEqual(Object.keys(v), VISIT_KEYS);
    assert.match(v.conversationId, UUID_V4);
    inRange(v.time, "time");
    assert.match(v.duration, /^\d+$/);
    assert.equal(v.host, "shop.example.com");
    assert.ok(v.url.startsWith("https://shop.example.com/"), v.url);
    assert.equal(typeof v.visitSource, "string");
  }
  for (const e of activity.contactExtEvents) {
    assert.deepEqual(Object.keys(e), EVENT_KEYS);
    assert.match(e.eventId, UUID_V4);
    inRange(e.date, "date");
    assert.ok(["PURCHASE", "CART", "VISIT", "MEETING", "OFFER", "DOWNLOAD"].includes(e.contactExtEventType), e.contactExtEventType);
    assert.ok(e.products === null || /^SKU-\d{4}(,SKU-\d{4})*$/.test(e.products), e.products);
    assert.ok(e.value === null || (typeof e.value === "number" && e.value > 0));
  }
  for (const [list, field] of [["emailMessages", "sentOn"], ["contactVisits", "time"], ["contactExtEvents", "date"]]) {
    const times = activity[list].map((item) => item[field]);
    assert.deepEqual(times, [...times].sort((a, b) => a - b), `${list} oldest first`);
  }
}

test("activity added through /__sim/activity and addActivity shows on listById cards, in the assumed formats", async () => {
  await withSimulator({}, async ({ call, upsert, control, stored }, sim) => {
    await upsert({ email: "act@example.com" });
    await upsert({ email: "other@example.com" });
    const contact = await stored("act@example.com");
    // Rules are set up: adding activity must fire none of them.
    sim.rules({ url: "http://127.0.0.1:9/never" });
    const message = { id: "msg-1", subject: "Spring sale", sentOn: 1_740_000_000_000, openedOn: 1_740_000_360_000, clickedOn: null, bouncedOn: null, unsubscribedOn: null };
    const visit = { conversationId: "conv-1", time: 1_740_000_100_000, url: "https://shop.example.com/cart", duration: "120", visitSource: "google", host: "shop.example.com" };
    const event = { eventId: "ev-1", contactExtEventType: "PURCHASE", date: 1_740_000_200_000, description: "Order placed", products: "p1,p2", value: 99.5, location: null, externalId: "ORD-1" };
    const added = await control("POST", "activity", { email: "ACT@example.com", emailMessages: [message], contactVisits: [visit], contactExtEvents: [event] });
    assert.equal(added.status, 200, added.text);
    assert.deepEqual(added.json, { added: 3 });

    // By contactId, with the least an item needs: ids are generated and the rest filled in.
    const byId = await control("POST", "activity", {
      contactId: contact.id,
      emailMessages: [{ sentOn: 1_740_000_500_000, extra: "kept" }],
      contactVisits: [{ time: 1_740_000_600_000, duration: 30 }],
      contactExtEvents: [{ contactExtEventType: "CART", date: 1_740_000_700_000, products: ["a", "b"] }],
    });
    assert.deepEqual(byId.json, { added: 3 });
    // The JS API, by e-mail and by id.
    assert.deepEqual(sim.addActivity("act@example.com", { contactVisits: [{ ...visit, conversationId: "conv-2", time: 1_740_000_800_000 }] }), { added: 1 });
    assert.deepEqual(sim.addActivity(contact.id, { emailMessages: [{ ...message, id: "msg-2" }] }), { added: 1 });

    const [card, other] = await cards(call, [contact.id, (await stored("other@example.com")).id]);
    assert.deepEqual(card.emailMessages[0], message);
    assert.deepEqual(card.contactVisits[0], visit);
    assert.deepEqual(card.contactExtEvents[0], event);
    const [, generatedIdMessage, second] = card.emailMessages;
    assert.match(generatedIdMessage.id, UUID_V4);
    assert.deepEqual({ ...generatedIdMessage, id: "" }, { id: "", sentOn: 1_740_000_500_000, extra: "kept", subject: "", openedOn: null, clickedOn: null, bouncedOn: null, unsubscribedOn: null });
    assert.equal(second.id, "msg-2");
    const [, minimalVisit, thirdVisit] = card.contactVisits;
    assert.match(minimalVisit.conversationId, UUID_V4);
    assert.deepEqual({ ...minimalVisit, conversationId: "" }, { conversationId: "", time: 1_740_000_600_000, duration: "30", url: "", visitSource: "direct", host: "" });
    assert.equal(thirdVisit.conversationId, "conv-2");
    const [, cart] = card.contactExtEvents;
    assert.match(cart.eventId, UUID_V4);
    assert.deepEqual({ ...cart, eventId: "" }, { eventId: "", contactExtEventType: "CART", date: 1_740_000_700_000, products: "a,b", description: "", value: null, location: null, externalId: null });
    assert.deepEqual(card.contactEvents, []);
    assert.deepEqual(activityOfCard(other), { emailMessages: [], contactVisits: [], contactExtEvents: [] });

    // No rule fired, modifiedOn unchanged, and the stored shape leaves activity out.
    assert.equal(sim.ruleStats().fired, 0);
    const after = await stored("act@example.com");
    assert.equal(after.modifiedOn, contact.modifiedOn);
    assert.equal("activity" in after, false);
    // touch: true bumps modifiedOn, so the change feeds list the contact.
    await control("POST", "activity", { email: "act@example.com", touch: true, contactVisits: [{ time: 1 }] });
    assert.ok((await stored("act@example.com")).modifiedOn > contact.modifiedOn);
    assert.equal(sim.ruleStats().fired, 0);

    // Activity stays across a rename and a re-seed of the same e-mail; it goes with a delete.
    await upsert({ email: "act@example.com" }, { newEmail: "renamed@example.com" });
    await control("POST", "contacts", [{ email: "renamed@example.com", id: contact.id, name: "Re-seeded" }]);
    const [kept] = await cards(call, [contact.id]);
    assert.equal(kept.name, "Re-seeded");
    assert.equal(kept.contactVisits.length, 4);
    await call("contact/delete", { email: "renamed@example.com" });
    await upsert({ email: "renamed@example.com" });
    const [fresh] = await cards(call, [(await stored("renamed@example.com")).id]);
    assert.deepEqual(activityOfCard(fresh), { emailMessages: [], contactVisits: [], contactExtEvents: [] });
  });
});

test("bad /__sim/activity input is refused with 400 or 404 and adds nothing", async () => {
  await withSimulator({}, async ({ call, upsert, control, stored }, sim) => {
    await upsert({ email: "act@example.com" });
    const { id } = await stored("act@example.com");
    const good = { id: "ok", sentOn: 1 };
    const cases = [
      [404, { email: "nobody@example.com", emailMessages: [good] }, /no contact nobody@example.com/],
      [404, { contactId: "no-such-id", emailMessages: [good] }, /no contact no-such-id/],
      [400, { emailMessages: [good] }, /exactly one of email and contactId/],
      [400, { email: "act@example.com", contactId: id, emailMessages: [good] }, /exactly one of email and contactId/],
      [400, { email: "act@example.com", visits: [] }, /unknown keys: visits/],
      [400, { email: "act@example.com", emailMessages: good }, /emailMessages must be an array/],
      [400, { email: "act@example.com", emailMessages: [good, "text"] }, /emailMessages\[1\] must be an object/],
      [400, { email: "act@example.com", emailMessages: [good, { id: "x" }] }, /emailMessages\[1\]\.sentOn must be an integer/],
      [400, { email: "act@example.com", emailMessages: [{ id: 7, sentOn: 1 }] }, /emailMessages\[0\]\.id must be a non-empty string/],
      [400, { email: "act@example.com", emailMessages: [{ sentOn: "1740000000000" }] }, /sentOn must be an integer/],
      [400, { email: "act@example.com", emailMessages: [{ sentOn: 1.5 }] }, /sentOn must be an integer/],
      [400, { email: "act@example.com", emailMessages: [{ sentOn: 1, openedOn: "soon" }] }, /openedOn must be an integer \(Unix ms\) or null/],
      [400, { email: "act@example.com", contactVisits: [{ conversationId: "c", time: null }] }, /contactVisits\[0\]\.time must be an integer/],
      [400, { email: "act@example.com", contactVisits: [{ time: 1, duration: "2 min" }] }, /duration must be seconds/],
      [400, { email: "act@example.com", contactExtEvents: [{ eventId: "e", date: 1 }] }, /contactExtEventType must be a non-empty string/],
      [400, { email: "act@example.com", contactExtEvents: [{ contactExtEventType: "CART", date: 1, value: "9.99" }] }, /value must be a number or null/],
      [400, { email: "act@example.com", contactVisits: [{ time: 1 }], emailMessages: [good], contactExtEvents: [{}] }, /contactExtEvents\[0\]/],
    ];
    for (const [status, body, message] of cases) {
      const response = await control("POST", "activity", body);
      assert.equal(response.status, status, `${JSON.stringify(body)} → ${response.text}`);
      assert.match(response.json.error, message, JSON.stringify(body));
    }
    for (const body of ["[1]", "{not json"]) {
      const response = await fetch(`${sim.url}/__sim/activity`, { method: "POST", body });
      assert.equal(response.status, 400, body);
    }
    assert.throws(() => sim.addActivity("nobody@example.com", { emailMessages: [good] }), (error) => error.status === 404 && /no contact/.test(error.message));
    assert.throws(() => sim.addActivity("act@example.com", { emailMessages: [{ id: "x" }] }), (error) => error.status === 400 && /sentOn/.test(error.message));
    const [card] = await cards(call, [id]);
    assert.deepEqual(activityOfCard(card), { emailMessages: [], contactVisits: [], contactExtEvents: [] }, "nothing was added");
  });
});

test("generated activity is deterministic for a seed, N items per contact, within since..until, oldest first", async () => {
  const plan = { perContact: 5, seed: "bench", since: 1_735_689_600_000, until: 1_743_465_600_000 };
  const emails = Array.from({ length: 120 }, (_, i) => `gen${i}@example.com`);
  /** One simulator's activity by e-mail: half the contacts seeded, half upserted. */
  async function run(options, rename = false) {
    let result;
    await withSimulator(options, async ({ call, upsert, control }) => {
      await control("POST", "contacts", emails.slice(0, 60).map((email) => ({ email })));
      for (const email of emails.slice(60)) await upsert({ email });
      if (rename) await upsert({ email: emails[0] }, { newEmail: "renamed0@example.com" });
      const stored = (await control("GET", "contacts")).json;
      const byId = new Map(stored.map((c) => [c.id, c.email]));
      const all = await cards(call, stored.map((c) => c.id));
      result = new Map(all.map((card) => [byId.get(card.id) === "renamed0@example.com" ? emails[0] : byId.get(card.id), activityOfCard(card)]));
    });
    return result;
  }
  const first = await run({ activity: plan });
  const again = await run({ activity: plan }, true);
  assert.equal(first.size, emails.length);
  assert.deepEqual(again, first, "two runs with one seed give the same data, renames keep it");
  for (const [email, activity] of first) {
    const count = activity.emailMessages.length + activity.contactVisits.length + activity.contactExtEvents.length;
    assert.equal(count, 5, email);
    assertActivityFormat(activity, plan);
    assert.deepEqual(activity, generateActivity(plan, email), "the exported generator matches the cards");
  }
  const ids = [...first.values()].flatMap((a) => [...a.emailMessages.map((m) => m.id), ...a.contactVisits.map((v) => v.conversationId), ...a.contactExtEvents.map((e) => e.eventId)]);
  assert.equal(new Set(ids).size, ids.length, "every id is distinct");
  const other = generateActivity({ ...plan, seed: "other" }, emails[0]);
  assert.notDeepEqual(other, first.get(emails[0]), "another seed, other data");
  // Raising N keeps the earlier items: item i depends on the seed, the contact and i only.
  const more = generateActivity({ ...plan, perContact: 8 }, emails[0]);
  const firstIds = (a) => [...a.emailMessages.map((m) => m.id), ...a.contactVisits.map((v) => v.conversationId), ...a.contactExtEvents.map((e) => e.eventId)];
  assert.ok(firstIds(first.get(emails[0])).every((id) => firstIds(more).includes(id)));
  // No plan, or perContact 0: empty lists.
  assert.deepEqual(generateActivity({ perContact: 0 }, emails[0]), { emailMessages: [], contactVisits: [], contactExtEvents: [] });
  assert.deepEqual(generateActivity(null, emails[0]), { emailMessages: [], contactVisits: [], contactExtEvents: [] });
});

test("generated activity mixes kinds and e-mail outcomes as documented", () => {
  const plan = { perContact: 5, seed: 42, since: 1_700_000_000_000, until: 1_700_000_000_000 + 30 * DAY_MS };
  const count = { emails: 0, visits: 0, events: 0, opened: 0, clicked: 0, bounced: 0, unsubscribed: 0 };
  const types = new Set();
  for (let i = 0; i < 20_000; i++) {
    const activity = generateActivity(plan, `mix${i}@example.com`);
    if (i < 500) assertActivityFormat(activity, plan);
    count.emails += activity.emailMessages.length;
    count.visits += activity.contactVisits.length;
    count.events += activity.contactExtEvents.length;
    for (const m of activity.emailMessages) {
      count.opened += m.openedOn !== null;
      count.clicked += m.clickedOn !== null;
      count.bounced += m.bouncedOn !== null;
      count.unsubscribed += m.unsubscribedOn !== null;
      assert.ok(m.sentOn >= plan.since && m.sentOn < plan.until);
      for (const t of [m.openedOn, m.clickedOn, m.bouncedOn, m.unsubscribedOn]) assert.ok(t === null || (t > m.sentOn && t <= plan.until));
      if (m.clickedOn !== null) assert.ok(m.openedOn !== null && m.clickedOn >= m.openedOn);
      if (m.unsubscribedOn !== null) assert.ok(m.openedOn !== null && m.unsubscribedOn >= m.openedOn);
    }
    for (const e of activity.contactExtEvents) types.add(e.contactExtEventType);
  }
  const total = count.emails + count.visits + count.events;
  assert.equal(total, 100_000);
  const near = (actual, expected, tolerance, label) => assert.ok(Math.abs(actual - expected) <= tolerance, `${label}: ${actual.toFixed(4)}, expected about ${expected}`);
  near(count.emails / total, 0.6, 0.01, "e-mail share");
  near(count.visits / total, 0.3, 0.01, "visit share");
  near(count.events / total, 0.1, 0.01, "event share");
  near(count.opened / count.emails, 0.25, 0.01, "opened");
  near(count.clicked / count.emails, 0.05, 0.005, "clicked");
  near(count.bounced / count.emails, 0.01, 0.003, "bounced");
  near(count.unsubscribed / count.emails, 0.005, 0.002, "unsubscribed");
  assert.deepEqual([...types].sort(), ["CART", "DOWNLOAD", "MEETING", "OFFER", "PURCHASE", "VISIT"]);
});

test("the activity plan: options and /__sim/activity/plan validate it; added activity follows the generated", async () => {
  for (const activity of [{ perContact: -1 }, { perContact: 1.5 }, { perContact: 1, since: 10, until: 10 }, { perContact: 1, seed: {} }, { perContact: 1, per: 2 }, "5"]) {
    await assert.rejects(startSimulator({ port: 0, activity }), TypeError, JSON.stringify(activity));
  }
  await withSimulator({}, async ({ call, upsert, control, stored }, sim) => {
    assert.deepEqual((await control("GET", "activity/plan")).json, { plan: null });
    await upsert({ email: "plan@example.com" });
    const { id } = await stored("plan@example.com");
    sim.addActivity("plan@example.com", { contactVisits: [{ conversationId: "added", time: 1 }] });
    const set = await control("POST", "activity/plan", { perContact: 3, seed: 9 });
    assert.equal(set.status, 200);
    assert.deepEqual(set.json, { plan: { perContact: 3, seed: "9", since: 1_735_689_600_000, until: 1_735_689_600_000 + 90 * DAY_MS } });
    assert.deepEqual(sim.activityPlan(), set.json.plan);
    const [card] = await cards(call, [id]);
    const generated = generateActivity({ perContact: 3, seed: "9" }, "plan@example.com");
    assert.deepEqual(activityOfCard(card), { ...generated, contactVisits: [...generated.contactVisits, { conversationId: "added", time: 1, url: "", visitSource: "direct", host: "", duration: "0" }] });
    const bad = await control("POST", "activity/plan", { perContact: 1, since: 20, until: 10 });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /activity.until must be after activity.since/);
    assert.equal(sim.activityPlan().perContact, 3, "a refused plan changes nothing");
    await control("POST", "reset", {});
    assert.equal(sim.activityPlan().perContact, 3, "the plan survives a reset");
    assert.equal(sim.setActivityPlan(null), null);
    assert.deepEqual((await control("POST", "activity/plan", { perContact: 0 })).json, { plan: null });
  });
});

test("the CLI takes the activity plan as --activity-* flags", async () => {
  const cli = fileURLToPath(new URL("./simulator/cli.mjs", import.meta.url));
  const flags = ["--port", "0", "--activity-per-contact", "4", "--activity-seed", "cli", "--activity-since=1700000000000", "--activity-until", "1710000000000"];
  const child = spawn(process.execPath, [cli, ...flags], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const info = JSON.parse(await firstLine(child.stdout));
    const client = api(info);
    await client.upsert({ email: "cli@example.com" });
    const { id } = await client.stored("cli@example.com");
    const [card] = await cards(client.call, [id]);
    const plan = { perContact: 4, seed: "cli", since: 1_700_000_000_000, until: 1_710_000_000_000 };
    assert.deepEqual(activityOfCard(card), generateActivity(plan, "cli@example.com"));
    assert.deepEqual((await client.control("GET", "activity/plan")).json, { plan });
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await within(exited, "CLI exit after SIGTERM");
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  for (const bad of [["--activity-per-contact", "many"], ["--activity-per-contact", "2", "--activity-since", "5", "--activity-until", "5"]]) {
    const child2 = spawn(process.execPath, [cli, "--port", "0", ...bad], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child2.stderr.on("data", (chunk) => (stderr += chunk));
    const [code] = await within(once(child2, "exit"), "CLI exit on a bad activity flag");
    assert.equal(code, 2, bad.join(" "));
    assert.match(stderr, /usage:/);
  }
});
