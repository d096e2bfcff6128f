// The integration as a distributed system, end to end with the real relay binary: Dataverse's
// webhooks and the catch-up where contacts share an e-mail, where the relay is down, where two
// relay instances share one address, and where a browser's clock is wrong.
//
// 1. Deleting one of two contacts that share an e-mail keeps the SALESmanago contact; deleting
//    the second removes it.
// 2. A delete made while the relay is down reaches SALESmanago through the catch-up (Dataverse
//    change tracking, the e-mail from the recycle bin); its second run sends nothing.
// 3. Two relay instances behind a round-robin proxy (deliveries reordered, some answered 503 once
//    so Dataverse retries them late): after quick updates SALESmanago holds the newest values.
//    Also when one instance's calls to SALESmanago are slower, so that the older version it read
//    lands after the newest: it reads the versions again after sending, and sends the newest.
// 4. A browser whose clock runs 10 minutes fast neither takes over a live run (leases are judged
//    on Dataverse's clock) nor writes a watermark in the future ("Export changes" after it, from
//    a normal browser, still sends a contact created next, with its delta link and without).
// 5. An e-mail changed in Dynamics renames the SALESmanago contact, which keeps its id (no second
//    contact, nothing left under the old address); a change to an address another SALESmanago
//    contact has merges nothing: the contact is marked Failed and the other keeps its data.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request as httpRequest } from "node:http";
import { button, configure, jobSummary, open, startSandboxWorld, takeDialog, until } from "./support/sandbox.mjs";
import { register, startRelay } from "../sandbox/relay.mjs";

const FAST_MS = 600_000;
const RECORD = "new_salesmanagointegration";
let world;
let relay;
/** The SALESmanago calls that succeeded, in order: `{name, emails}`. */
const calls = [];
const inSalesmanago = (email) => world.sim.contacts().find((c) => c.email === email.toLowerCase());
const record = () => world.sandbox.dataverse.rows(RECORD)[0];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A Web API request as another system makes it (with the browser user's bearer token). */
async function api(method, path, body, headers = {}) {
  const response = await fetch(`${world.sandbox.url}/api/data/v9.2/${path}`, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${world.sandbox.token}`, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.status < 400, `${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
  return { status: response.status, headers: response.headers, body: text };
}

async function create(row) {
  const created = await api("POST", "contacts", row);
  return created.headers.get("odata-entityid").match(/\(([0-9a-f-]{36})\)$/)[1];
}

/** `POST /dataverse/catch-up` on `base` (the relay by default): its JSON answer, after a 200. */
async function catchUp(base = relay.url) {
  const response = await fetch(`${base}/dataverse/catch-up`, { method: "POST", headers: { "x-relay-webhook-key": relay.webhookKey }, signal: AbortSignal.timeout(120_000) });
  const done = await response.json();
  assert.equal(response.status, 200, JSON.stringify(done));
  return done;
}

/** `POST /dataverse/pull-activity` on `base`: its status and JSON answer. */
async function pullActivity(base = relay.url) {
  const response = await fetch(`${base}/dataverse/pull-activity`, { method: "POST", headers: { "x-relay-webhook-key": relay.webhookKey }, signal: AbortSignal.timeout(120_000) });
  return { status: response.status, body: await response.json() };
}

/** Points Dataverse's webhook at `publicUrl` (a relay or the proxy), as `salesmanago-relay register` does. */
const pointWebhookAt = (publicUrl) => register({ ...relay.env, RELAY_PUBLIC_URL: publicUrl, RELAY_WEBHOOK_KEY: relay.webhookKey });

/** The calls made while `fn` ran that changed something in SALESmanago. */
async function writesDuring(fn) {
  const from = calls.length;
  const result = await fn();
  await world.sandbox.events.idle();
  const writes = calls.slice(from).filter((c) => /upsert|delete|optout|optin|insert|update/.test(c.name));
  return { result, writes };
}

/** A small deterministic random source (the proxy's jitter), so that a failure can be run again. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * A round-robin HTTP proxy on 127.0.0.1 in front of `targets` (functions giving base URLs):
 * each request goes to the next target, after a random delay up to `jitterMs` (which reorders
 * requests sent together) plus a fixed `delayMs` (a slower network path). With `refuseEvery: n`, the first attempt of every n-th webhook
 * delivery (by its x-request-id; Dataverse's retry carries the same one) is answered 503 without
 * being forwarded, so Dataverse delivers it again later, after the deliveries that followed it.
 */
async function startProxy(targets, { jitterMs = 0, delayMs = 0, refuseEvery = 0, seed = 1 } = {}) {
  const rand = random(seed);
  const perTarget = targets.map(() => 0);
  const seen = new Set();
  let next = 0;
  let fresh = 0;
  let refused = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", async () => {
      const id = req.headers["x-request-id"];
      if (id && !seen.has(id)) {
        seen.add(id);
        fresh += 1;
        if (refuseEvery && fresh % refuseEvery === 0) {
          refused += 1;
          res.writeHead(503, { "Content-Type": "application/json" }).end('{"done":"failed","reason":"the proxy refused the first attempt"}');
          return;
        }
      }
      const index = next++ % targets.length;
      perTarget[index] += 1;
      if (jitterMs || delayMs) await sleep(delayMs + Math.floor(rand() * jitterMs));
      const target = new URL(targets[index]());
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stats: () => ({ perTarget: perTarget.slice(), refused }),
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
}

/** A second tab of the world's browser; with `offsetMs`, its clock (Date.now, new Date()) runs that far ahead. */
async function newPage(offsetMs = 0) {
  const page = await world.page.context().newPage();
  page.on("pageerror", (error) => world.problems.push(`pageerror: ${error.message}`));
  if (offsetMs) {
    await page.addInitScript((offset) => {
      const Real = Date;
      class Skewed extends Real {
        constructor(...args) {
          if (args.length === 0) super(Real.now() + offset);
          else super(...args);
        }
        static now() {
          return Real.now() + offset;
        }
      }
      globalThis.Date = Skewed;
    }, offsetMs);
  }
  return page;
}

/** `open` for a page other than world.page. */
const openIn = (page, path) => open({ page, sandbox: world.sandbox }, path);

before(async () => {
  // One relay, as `npm start -- --webhooks` runs it; no scheduled catch-up (asked for here).
  world = await startSandboxWorld({ contacts: 10, webhooks: { retryDelayMs: 300, concurrency: 16 }, relayEnv: { RELAY_BURST_MS: "50" } });
  relay = world.relay;
  world.sim.onCall((name, body) => {
    const details = name === "contact/batchupsert" ? body.upsertDetails ?? [] : [body];
    calls.push({ name, emails: details.map((d) => String(d.contact?.email ?? d.email ?? "").toLowerCase()) });
  });
  configure(world, { new_webhooks: true });
});

after(async () => {
  await world?.close();
});

test("deleting one of two Dynamics contacts that share an e-mail keeps the SALESmanago contact; deleting the second removes it", async () => {
  const events = world.sandbox.events;
  const email = "shared.mail@example.com";
  const first = await create({ firstname: "Pierwsza", lastname: "Wspólna", emailaddress1: email });
  await until(() => inSalesmanago(email), { what: "the first contact in SALESmanago" });
  const second = await create({ firstname: "Druga", lastname: "Wspólna", emailaddress1: email });
  await until(() => inSalesmanago(email)?.name === "Druga Wspólna", { what: "the second contact's values in SALESmanago" });
  await events.idle();

  const { writes } = await writesDuring(() => api("DELETE", `contacts(${first})`));
  await sleep(300);
  assert.ok(inSalesmanago(email), "the SALESmanago contact stays: the second Dynamics contact still holds the e-mail");
  assert.deepEqual(writes.filter((c) => c.name === "contact/delete"), [], "nothing deleted in SALESmanago");
  const answered = relay.log.map((line) => JSON.parse(line)).filter((l) => l.method === "dataverse/webhook" && l.change === "Delete");
  assert.equal(answered.length, 1, "the delete was delivered to the relay once");
  assert.equal(answered[0].status, 200);

  await api("DELETE", `contacts(${second})`);
  await until(() => !inSalesmanago(email), { what: "the contact deleted in SALESmanago once no Dynamics contact holds the e-mail" });
  await events.idle();
  assert.equal(events.failedJobs().length, 0);
});

test("a delete made while the relay is down reaches SALESmanago through the catch-up, and its second run sends nothing", async () => {
  const events = world.sandbox.events;
  // A first catch-up: the delta link the next one reads deletions from.
  await catchUp();
  const link = record().new_catchupdelta;
  assert.match(String(link), /^\?.*deltatoken=/, "the catch-up keeps its delta link on the record");
  const email = "deleted.while.down@example.com";
  const id = await create({ firstname: "Usunięta", lastname: "Offline", emailaddress1: email });
  await until(() => inSalesmanago(email), { what: "the new contact in SALESmanago" });
  await events.idle();

  const failedBefore = events.failedJobs().length;
  const address = new URL(relay.url).host;
  await relay.stop();
  await api("DELETE", `contacts(${id})`);
  await events.idle();
  const failed = events.failedJobs().slice(failedBefore);
  assert.equal(failed.length, 1, "the delete's delivery failed for good: a system job");
  assert.match(failed[0].message, /could not be reached/);
  assert.ok(inSalesmanago(email), "still in SALESmanago while the relay is down");

  // Back on the same address; the catch-up (asked for, as its schedule would) repairs it.
  const restarted = await startRelay({ ...relay.env, RELAY_LISTEN: address });
  relay = world.relay = { ...relay, ...restarted };
  const done = await catchUp();
  assert.equal(done.failed, 0, JSON.stringify(done));
  assert.ok(done.sent >= 1, JSON.stringify(done));
  assert.ok(!inSalesmanago(email), `the delete reached SALESmanago through the catch-up: ${JSON.stringify(done)}`);
  assert.notEqual(record().new_catchupdelta, link, "the delta link moved");

  // Nothing changed in Dynamics since: the second run sends nothing, and keeps its link.
  const { result: again, writes } = await writesDuring(() => catchUp());
  assert.deepEqual({ sent: again.sent, skipped: again.skipped, failed: again.failed }, { sent: 0, skipped: 0, failed: 0 }, JSON.stringify(again));
  assert.deepEqual(writes, [], "nothing sent to SALESmanago");
  assert.match(String(record().new_catchupdelta), /^\?.*deltatoken=/);
});

test("the relay pulls SALESmanago activity as the application user; two instances at once create each row once", async () => {
  const email = "activity.by.relay@example.com";
  const id = await create({ firstname: "Aktywna", lastname: "Relay", emailaddress1: email });
  await until(() => inSalesmanago(email), { what: "the contact in SALESmanago" });
  await world.sandbox.events.idle();
  await until(() => world.sandbox.dataverse.rows("contact").find((r) => r.contactid === id)?.new_salesmanagoid, { what: "its SALESmanago id in Dynamics" });
  const now = Date.now();
  world.sim.addActivity(email, {
    emailMessages: [{ id: "m-relay-1", subject: "Newsletter", sentOn: now - 7_200_000, openedOn: now - 3_600_000 }],
    contactVisits: [{ conversationId: "v-relay-1", time: now - 600_000, url: "https://shop.example.com/", duration: "5" }],
  });
  const second = await startRelay(relay.env);
  try {
    const [a, b] = await Promise.all([pullActivity(relay.url), pullActivity(second.url)]);
    // One holds the job's lease; the other is told a run is under way (503: try later).
    const done = [a, b].filter((r) => r.status === 200);
    assert.ok(done.length >= 1, JSON.stringify([a, b]));
    for (const other of [a, b].filter((r) => r.status !== 200)) assert.equal(other.status, 503, JSON.stringify(other));
    const rows = () => world.sandbox.dataverse.rows("new_salesmanagoactivity").filter((r) => r._regardingobjectid_value === id);
    assert.deepEqual(rows().map((r) => r.new_kind).sort(), [100000001, 100000005], JSON.stringify(rows()));
    assert.equal(done.reduce((n, r) => n + r.body.created, 0), 2, JSON.stringify(done));
    const again = await pullActivity(second.url);
    assert.equal(again.status, 200, JSON.stringify(again));
    assert.equal(again.body.created, 0, JSON.stringify(again));
    assert.equal(rows().length, 2);
    assert.ok(Number(record().new_activitywatermark) >= now - 600_000 - 1000, record().new_activitywatermark);
  } finally {
    await second.stop();
  }
});

test("two relay instances behind one address, deliveries reordered and retried: SALESmanago ends with each contact's newest values", async () => {
  const events = world.sandbox.events;
  const second = await startRelay(relay.env);
  const proxy = await startProxy([() => relay.url, () => second.url], { jitterMs: 120, refuseEvery: 3, seed: 7 });
  try {
    await pointWebhookAt(proxy.url);
    const retriedBefore = events.stats().retried;
    const contacts = [];
    for (let n = 0; n < 4; n++) {
      const email = `two.relays.${n}@example.com`;
      contacts.push({ email, id: await create({ firstname: `Kontakt${n}`, lastname: "V0", emailaddress1: email, address1_city: "C0" }) });
    }
    await events.idle();
    // Each contact changed 8 times in quick succession, all of them at once.
    const VERSIONS = 8;
    await Promise.all(
      contacts.map(async ({ id }) => {
        for (let v = 1; v <= VERSIONS; v++) await api("PATCH", `contacts(${id})`, { lastname: `V${v}`, address1_city: `C${v}` }, { "If-Match": "*" });
      }),
    );
    // Every delivery answered (each answer follows its contact's send): what SALESmanago holds now is final.
    await events.idle();
    await sleep(500);
    const held = contacts.map(({ email }) => {
      const c = inSalesmanago(email);
      return { email, name: c?.name, city: c?.address?.city };
    });
    const newest = contacts.map(({ email }, n) => ({ email, name: `Kontakt${n} V${VERSIONS}`, city: `C${VERSIONS}` }));
    assert.deepEqual(held, newest, "SALESmanago holds each contact's newest version");
    const { perTarget, refused } = proxy.stats();
    assert.ok(perTarget.every((n) => n > 0), `both instances received deliveries: ${perTarget}`);
    assert.ok(refused > 0 && events.stats().retried > retriedBefore, `some deliveries came again late (refused ${refused})`);
    assert.equal(events.failedJobs().filter((j) => contacts.some((c) => c.id === j.regardingobjectid)).length, 0, "no delivery failed for good");
  } finally {
    await pointWebhookAt(relay.url);
    await proxy.close();
    await second.stop();
  }
});

// Each instance reads the contact as Dataverse holds it and then sends it, with nothing ordering
// one instance's send after another's: the instance that read version 5 (before version 6 was
// written) may send it after the other instance, which read version 6, sent that. It then reads
// the versions again (core::job::recheck) and sends version 6 itself.
test("two relay instances, one with a slower path to SALESmanago: the newest version still wins", async () => {
  const events = world.sandbox.events;
  const slowPath = await startProxy([() => world.sim.url], { delayMs: 600 });
  const second = await startRelay({ ...relay.env, SALESMANAGO_ENDPOINT: slowPath.url });
  const proxy = await startProxy([() => relay.url, () => second.url]);
  try {
    await pointWebhookAt(proxy.url);
    const email = "slow.path@example.com";
    const id = await create({ firstname: "Wolna", lastname: "V0", emailaddress1: email });
    await events.idle();
    // Deliveries alternate: V1, V3, V5 to the slow instance, V2, V4, V6 to the fast one.
    for (let v = 1; v <= 6; v++) {
      await api("PATCH", `contacts(${id})`, { lastname: `V${v}` }, { "If-Match": "*" });
      await sleep(150);
    }
    await events.idle();
    await sleep(500);
    assert.equal(world.sandbox.dataverse.rows("contact").find((r) => r.contactid === id).lastname, "V6");
    assert.equal(inSalesmanago(email)?.name, "Wolna V6", "SALESmanago holds the newest version");
  } finally {
    await pointWebhookAt(relay.url);
    await proxy.close();
    await second.stop();
    await slowPath.close();
  }
});

test("a browser whose clock runs 10 minutes fast neither takes over a live run nor loses a change", async () => {
  // Webhooks off: a contact created through the Web API reaches SALESmanago only by Export changes.
  configure(world, { new_webhooks: false });
  const normal = world.page;
  const fast = await newPage(FAST_MS);
  try {
    await openIn(fast, "/integration");
    await open(world, "/integration");
    const skew = await fast.evaluate(() => Date.now()) - Date.now();
    assert.ok(Math.abs(skew - FAST_MS) < 5_000, `the fast page's clock runs ${skew} ms ahead`);

    // Export all in the normal page, slowed down by SALESmanago, still running…
    world.sim.setFaults({ latencyMs: 4_000 });
    await button(normal, "new.integration.ExportAll.Button").click();
    const lease = await until(() => {
      const text = record().new_exportlease;
      const holder = text && JSON.parse(text);
      return holder && !holder.released ? holder : null;
    }, { what: "the normal page's Export all to take its lease" });
    // …is refused in the fast page: its lease is alive on Dataverse's clock.
    await button(fast, "new.integration.ExportAll.Button").click();
    const refused = await takeDialog(fast, { timeout: 30_000 });
    assert.match(refused.text, /Export all contacts is already running|already running/, refused.text);
    assert.equal(JSON.parse(record().new_exportlease).token, lease.token, "the lease is still the normal page's");
    const summary = await takeDialog(normal, { timeout: 90_000 });
    assert.match(summary.text, /finished/, summary.text);
    while (await normal.locator("#dialogs .dialog").count()) await takeDialog(normal);
    world.sim.setFaults({});

    // Export changes in the fast page: its watermark is on Dataverse's clock, not 10 minutes ahead.
    const beforeRun = Date.now();
    assert.match(await jobSummary(fast, "new.integration.ExportChanges.Button"), /Export changes finished/);
    const watermark = Number(record().new_catchupwatermark);
    assert.ok(watermark >= beforeRun - 5_000 && watermark <= Date.now() + 2_000, `the watermark ${watermark} is Dataverse's time (now ${Date.now()})`);

    // A contact created next goes with Export changes from a normal page (through its delta link).
    const email = "after.fast.clock@example.com";
    await create({ firstname: "Po", lastname: "Szybkim", emailaddress1: email });
    await world.sandbox.events.idle();
    assert.ok(!inSalesmanago(email), "webhooks are off: not sent yet");
    const text = await jobSummary(normal, "new.integration.ExportChanges.Button");
    assert.match(text, /Export changes finished: \d+ contacts changed .* 0 failed\./, text);
    assert.ok(inSalesmanago(email), `sent by Export changes: ${text}`);

    // And once more with the delta link expired: the full read goes from the fast page's watermark.
    assert.match(await jobSummary(fast, "new.integration.ExportChanges.Button"), /Export changes finished/);
    world.sandbox.dataverse.advanceChangeTrackingClock(8 * 86_400_000);
    const later = "after.fast.clock.expired@example.com";
    await create({ firstname: "Po", lastname: "Wygaśnięciu", emailaddress1: later });
    const expired = await jobSummary(normal, "new.integration.ExportChanges.Button");
    assert.match(expired, /no longer keeps the changes/, expired);
    assert.ok(inSalesmanago(later), `sent by Export changes after a full read: ${expired}`);
    assert.deepEqual(world.problems, []);
  } finally {
    world.sim.setFaults({});
    await fast.close();
    configure(world, { new_webhooks: true });
  }
});

test("an e-mail change keeps one SALESmanago contact under its id; a change to another contact's address merges nothing", async () => {
  const events = world.sandbox.events;
  const SYNCED = 100000000;
  const FAILED = 100000001;
  const row = (id) => world.sandbox.dataverse.rows("contact").find((r) => r.contactid === id);
  /** Waits until the relay wrote back that contact `id` went to SALESmanago as `email`. */
  const syncedAs = (id, email) =>
    until(() => {
      const r = row(id);
      return r?.new_salesmanagosyncstatus === SYNCED && r.new_salesmanagoemail === email && r.new_salesmanagoid ? r : null;
    }, { what: `${email} written back as synced` });

  // The first part: A renamed to B.
  const a = "rename.before@example.com";
  const b = "rename.after@example.com";
  const id = await create({ firstname: "Zmienna", lastname: "Adresowa", emailaddress1: a });
  const smId = (await until(() => inSalesmanago(a), { what: "the contact under A in SALESmanago" })).id;
  const written = await syncedAs(id, a);
  assert.equal(written.new_salesmanagoid, smId, "the SALESmanago id written back is the simulator's");
  await events.idle();

  await api("PATCH", `contacts(${id})`, { emailaddress1: b }, { "If-Match": "*" });
  await until(() => inSalesmanago(b), { what: "the contact under B in SALESmanago" });
  const after = await syncedAs(id, b);
  await events.idle();
  assert.equal(inSalesmanago(b).id, smId, "B is the same SALESmanago contact A was (renamed, same id)");
  assert.equal(inSalesmanago(a), undefined, "nothing left under A in SALESmanago");
  const person = world.sim.contacts().filter((c) => c.id === smId || c.name === "Zmienna Adresowa");
  assert.deepEqual(person.map((c) => [c.id, c.email]), [[smId, b]], "one SALESmanago contact for this person");
  assert.equal(after.new_salesmanagoid, smId, "new_salesmanagoid unchanged");
  assert.equal(after.new_salesmanagoemail, b);
  assert.equal(after.new_salesmanagolasterror ?? null, null);

  // The second part: D changed to C, which a third, different SALESmanago contact has.
  const c = "rename.taken@example.com";
  const d = "rename.mover@example.com";
  const third = await create({ firstname: "Trzeci", lastname: "Właściciel", emailaddress1: c, address1_city: "Kraków" });
  await until(() => inSalesmanago(c)?.name === "Trzeci Właściciel", { what: "the third contact in SALESmanago" });
  await syncedAs(third, c);
  const mover = await create({ firstname: "Przenoszony", lastname: "Kontakt", emailaddress1: d, address1_city: "Gdańsk" });
  const moverSmId = (await until(() => inSalesmanago(d), { what: "the contact under D in SALESmanago" })).id;
  await syncedAs(mover, d);
  await events.idle();
  const thirdBefore = structuredClone(inSalesmanago(c));
  assert.notEqual(thirdBefore.id, moverSmId, "two different SALESmanago contacts");

  await api("PATCH", `contacts(${mover})`, { emailaddress1: c }, { "If-Match": "*" });
  const failed = await until(() => (row(mover)?.new_salesmanagosyncstatus === FAILED ? row(mover) : null), { what: "the changed contact marked Failed" });
  await events.idle();
  assert.match(String(failed.new_salesmanagolasterror), /already used by another SALESmanago contact/, failed.new_salesmanagolasterror);
  assert.ok(String(failed.new_salesmanagolasterror).includes(c), `the error names ${c}: ${failed.new_salesmanagolasterror}`);
  assert.deepEqual(inSalesmanago(c), thirdBefore, "the third SALESmanago contact keeps its own data");
  assert.equal(inSalesmanago(d)?.id, moverSmId, "the changed contact's SALESmanago contact stays under D, not merged");
  assert.equal(world.sim.contacts().filter((x) => x.id === thirdBefore.id || x.id === moverSmId).length, 2, "still two SALESmanago contacts");
  assert.equal(row(mover).new_salesmanagoid, moverSmId, "its SALESmanago id unchanged");
  assert.equal(row(third).new_salesmanagosyncstatus, SYNCED, "the third Dynamics contact is untouched");
});
