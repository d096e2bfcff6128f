// The SALESmanago activity table in the sandbox: built from the solution's custom activity, written
// as Pull activity writes it (PATCH of a row by its id: the Web API's upsert, with If-None-Match: *
// to create a row only once, alone and inside a $batch, each part with its own headers), its
// regarding contact bound through the Web API's navigation property; and the timeline the contact
// form shows of it in Chromium, in English and Polish, newest first, accessible.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { loadBuiltSolution, startSandbox, tablesFrom } from "../sandbox/server.mjs";
import { launchChromium } from "./support/browser.mjs";
import { withServer } from "./support/dataverse-server.mjs";

const SET = "new_salesmanagoactivities";
const BIND = "regardingobjectid_contact_new_salesmanagoactivity@odata.bind";
const DUPLICATE = "A record with matching key values already exists.";
const KINDS = {
  100000000: ["E-mail sent", "Wysłany e-mail"],
  100000001: ["E-mail opened", "Otwarty e-mail"],
  100000002: ["E-mail link clicked", "Kliknięty link w e-mailu"],
  100000003: ["E-mail bounced", "Odbity e-mail"],
  100000004: ["Unsubscribed", "Wypisanie z subskrypcji"],
  100000005: ["Website visit", "Wizyta na stronie"],
  100000006: ["External event", "Zdarzenie zewnętrzne"],
};
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const { solution } = loadBuiltSolution();
const contactId = (n) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const activityId = (n) => `aaaaaaaa-0000-4000-8000-${String(n).padStart(12, "0")}`;

/** The sandbox's tables as `npm start` has them, with two contacts. */
function withTables(fn) {
  return withServer(tablesFrom(solution), {}, async (server) => {
    server.dv.seed("contact", [
      { contactid: contactId(1), firstname: "Anna", lastname: "Kowalska", emailaddress1: "anna@example.com" },
      { contactid: contactId(2), firstname: "Jan", lastname: "Nowak", emailaddress1: "jan@example.com" },
    ]);
    await fn(server);
  });
}

/** One activity as Pull activity writes it. */
function activity(contact, kind, subject, actualend, extra = {}) {
  return { subject, new_kind: kind, actualend, description: `${subject}: details`, new_eventid: `ev-${subject}`, [BIND]: `/contacts(${contact})`, ...extra };
}

/**
 * A `$batch` of independent PATCHes (no change set), each with its own headers, as the engine
 * sends them: with `Prefer: odata.continue-on-error` unless `stopOnError`.
 */
function batch(api, parts, { stopOnError = false } = {}) {
  const boundary = "batch_activity";
  let body = "";
  for (const { url, headers = {}, json } of parts) {
    body += `--${boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n`;
    body += `PATCH ${api.base}${url} HTTP/1.1\r\nContent-Type: application/json\r\n`;
    for (const [name, value] of Object.entries(headers)) body += `${name}: ${value}\r\n`;
    body += `\r\n${JSON.stringify(json)}\r\n`;
  }
  body += `--${boundary}--\r\n`;
  const prefer = stopOnError ? {} : { Prefer: "odata.continue-on-error" };
  return api.call("POST", "$batch", { body, headers: { "Content-Type": `multipart/mixed; boundary=${boundary}`, ...prefer } });
}

/** Each part's status and error message, in order. */
function outcomes(text) {
  return text
    .split(/--batchresponse_[0-9a-f-]+/)
    .filter((part) => part.includes("HTTP/1.1 "))
    .map((part) => {
      const status = Number(/HTTP\/1\.1 (\d{3})/.exec(part)[1]);
      const error = /\{"error":.*\}/.exec(part);
      return error ? [status, JSON.parse(error[0]).error.message] : [status];
    });
}

test("the table is the solution's custom activity: keys, columns, choices and the regarding contact", () => {
  const entity = solution.entities.get("new_salesmanagoactivity");
  assert.ok(entity, "the built solution has the table");
  assert.equal(entity.isActivity, true);
  assert.deepEqual([entity.entitySet, entity.primaryKey, entity.primaryName], [SET, "activityid", "subject"]);
  assert.deepEqual(entity.label, { 1033: "SALESmanago activity", 1045: "Aktywność SALESmanago" });
  const custom = [...entity.columns.keys()].filter((c) => c.startsWith("new_")).sort();
  assert.deepEqual(custom, ["new_eventid", "new_kind"]);
  const column = (name) => entity.columns.get(name);
  assert.deepEqual([column("subject").type, column("subject").maxLength], ["String", 200]);
  assert.deepEqual([column("description").type, column("description").maxLength], ["Memo", 2000]);
  assert.deepEqual([column("new_eventid").type, column("new_eventid").maxLength], ["String", 200]);
  assert.deepEqual(column("new_eventid").label, { 1033: "SALESmanago event id", 1045: "Identyfikator zdarzenia SALESmanago" });
  assert.equal(column("actualend").type, "DateTime");
  assert.deepEqual(column("actualend").label, { 1033: "Occurred on", 1045: "Wystąpiło" });
  assert.equal(column("new_kind").type, "Picklist");
  assert.deepEqual(column("new_kind").label, { 1033: "Kind", 1045: "Rodzaj" });
  assert.deepEqual(
    Object.fromEntries(column("new_kind").options.map((o) => [o.value, [o.label[1033], o.label[1045]]])),
    KINDS,
  );
  assert.deepEqual(entity.lookups.get("regardingobjectid").label, { 1033: "Regarding", 1045: "Dotyczy" });

  const table = tablesFrom(solution).new_salesmanagoactivity;
  assert.deepEqual([table.entitySet, table.primaryKey, table.primaryName], [SET, "activityid", "subject"]);
  for (const name of ["subject", "description", "actualend", "new_kind", "new_eventid"]) assert.ok(table.columns[name], name);
  assert.deepEqual(table.lookups, {
    regardingobjectid_contact_new_salesmanagoactivity: { attribute: "regardingobjectid", set: "contacts", target: "contact", label: { 1033: "Regarding", 1045: "Dotyczy" } },
  });
});

test("a PATCH without conditions upserts: it creates the row with its id, then updates it", async () => {
  await withTables(async ({ dv, api }) => {
    const created = await api.patch(`${SET}(${activityId(1)})`, activity(contactId(1), 100000001, "Spring sale", "2026-03-01T10:00:00Z"));
    assert.equal(created.status, 204, created.text);
    assert.equal(created.headers.get("odata-entityid"), `${api.base}${SET}(${activityId(1)})`);
    const read = await api.get(`${SET}(${activityId(1)})?$select=subject,new_kind,actualend,description,new_eventid,_regardingobjectid_value`);
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.activityid, activityId(1));
    assert.equal(read.json.subject, "Spring sale");
    assert.equal(read.json.new_kind, 100000001);
    assert.equal(read.json.actualend, "2026-03-01T10:00:00Z");
    assert.equal(read.json.description, "Spring sale: details");
    assert.equal(read.json.new_eventid, "ev-Spring sale");
    assert.equal(read.json._regardingobjectid_value, contactId(1), "the bound contact reads back as _regardingobjectid_value");

    const updated = await api.patch(`${SET}(${activityId(1)})`, { subject: "Spring sale (2)" });
    assert.equal(updated.status, 204, updated.text);
    assert.equal(dv.rows("new_salesmanagoactivity").length, 1);
    assert.equal(dv.rows("new_salesmanagoactivity")[0].subject, "Spring sale (2)");
    assert.equal(dv.rows("new_salesmanagoactivity")[0]._regardingobjectid_value, contactId(1), "kept");

    const representation = await api.patch(`${SET}(${activityId(2)})?$select=subject`, { subject: "Shown" }, { Prefer: "return=representation" });
    assert.equal(representation.status, 201, representation.text);
    assert.equal(representation.json.subject, "Shown");
    assert.equal(representation.json.activityid, activityId(2));

    const otherKey = await api.patch(`${SET}(${activityId(3)})`, { activityid: activityId(4), subject: "x" });
    assert.equal(otherKey.status, 400, "the body's key must be the address's");
    assert.equal(dv.rows("new_salesmanagoactivity").length, 2);
  });
});

test("If-None-Match: * creates a row once; a repeat answers 412 and changes nothing", async () => {
  await withTables(async ({ dv, api }) => {
    const first = await api.patch(`${SET}(${activityId(1)})`, activity(contactId(1), 100000002, "Clicked", "2026-03-02T10:00:00Z"), { "If-None-Match": "*" });
    assert.equal(first.status, 204, first.text);
    const before = dv.rows("new_salesmanagoactivity");
    const again = await api.patch(`${SET}(${activityId(1)})`, activity(contactId(2), 100000003, "Changed", "2026-03-03T10:00:00Z"), { "If-None-Match": "*" });
    assert.equal(again.status, 412);
    assert.deepEqual(again.json.error, { code: "0x80040237", message: DUPLICATE });
    assert.deepEqual(dv.rows("new_salesmanagoactivity"), before, "the row stays as it was");
  });
});

test("If-Match: * only updates: a missing row answers 404, for activities and contacts alike", async () => {
  await withTables(async ({ dv, api }) => {
    const missing = await api.patch(`${SET}(${activityId(9)})`, { subject: "Nobody" }, { "If-Match": "*" });
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json.error, { code: "0x80040217", message: `new_salesmanagoactivity With Id = ${activityId(9)} Does Not Exist` });
    const contact = await api.patch(`contacts(${contactId(9)})`, { lastname: "Nobody" }, { "If-Match": "*" });
    assert.equal(contact.status, 404);
    assert.equal(dv.rows("new_salesmanagoactivity").length, 0);
    assert.equal(dv.rows("contact").length, 2);
    assert.equal((await api.patch(`contacts(${contactId(1)})`, { lastname: "Nowicka" }, { "If-Match": "*" })).status, 204);
    assert.equal(dv.rows("contact").find((c) => c.contactid === contactId(1)).lastname, "Nowicka");
  });
});

test("the regarding contact: bound by its navigation property, read and filtered as _regardingobjectid_value; a missing contact is refused", async () => {
  await withTables(async ({ dv, api }) => {
    for (const [n, contact, at] of [
      [1, contactId(1), "2026-03-01T10:00:00Z"],
      [2, contactId(2), "2026-03-02T10:00:00Z"],
      [3, contactId(1), "2026-03-03T10:00:00Z"],
    ]) {
      assert.equal((await api.patch(`${SET}(${activityId(n)})`, activity(contact, 100000005, `Visit ${n}`, at), { "If-None-Match": "*" })).status, 204);
    }
    const filter = encodeURIComponent(`_regardingobjectid_value eq ${contactId(1)}`);
    const list = await api.get(`${SET}?$select=subject&$filter=${filter}&$orderby=${encodeURIComponent("actualend desc")}`);
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(
      list.json.value.map((r) => r.subject),
      ["Visit 3", "Visit 1"],
    );

    const nobody = await api.patch(`${SET}(${activityId(4)})`, activity(contactId(9), 100000005, "Lost", "2026-03-04T10:00:00Z"), { "If-None-Match": "*" });
    assert.equal(nobody.status, 404);
    assert.deepEqual(nobody.json.error, { code: "0x80040217", message: `contact With Id = ${contactId(9)} Does Not Exist` });
    const wrongSet = await api.patch(`${SET}(${activityId(4)})`, { [BIND]: `/accounts(${contactId(1)})` });
    assert.equal(wrongSet.status, 400);
    assert.equal(dv.rows("new_salesmanagoactivity").length, 3);
  });
});

test("$batch: each part's If-None-Match applies to it alone; a row there already is 412 and the others go on", async () => {
  await withTables(async ({ dv, api }) => {
    const parts = [
      { url: `${SET}(${activityId(1)})`, headers: { "If-None-Match": "*" }, json: activity(contactId(1), 100000000, "Sent", "2026-03-01T10:00:00Z") },
      { url: `${SET}(${activityId(2)})`, headers: { "If-None-Match": "*" }, json: activity(contactId(1), 100000001, "Opened", "2026-03-01T11:00:00Z") },
      { url: `${SET}(${activityId(1)})`, headers: { "If-None-Match": "*" }, json: activity(contactId(2), 100000006, "Repeat", "2026-03-05T10:00:00Z") },
      { url: `${SET}(${activityId(3)})`, headers: { "If-Match": "*" }, json: { subject: "Never" } },
      { url: `contacts(${contactId(2)})`, headers: { "If-Match": "*" }, json: { lastname: "Nowakowski" } },
    ];
    const first = await batch(api, parts);
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(outcomes(first.text), [[204], [204], [412, DUPLICATE], [404, `new_salesmanagoactivity With Id = ${activityId(3)} Does Not Exist`], [204]]);
    const rows = dv.rows("new_salesmanagoactivity");
    assert.deepEqual(rows.map((r) => [r.activityid, r.subject, r._regardingobjectid_value]), [
      [activityId(1), "Sent", contactId(1)],
      [activityId(2), "Opened", contactId(1)],
    ]);

    // Pulled again: every creation is a 412, nothing changes.
    const again = await batch(api, parts.slice(0, 2));
    assert.deepEqual(outcomes(again.text), [
      [412, DUPLICATE],
      [412, DUPLICATE],
    ]);
    assert.deepEqual(dv.rows("new_salesmanagoactivity"), rows);

    // Without odata.continue-on-error, a batch stops at its first failure, a 412 included.
    const stopped = await batch(api, [parts[0], { ...parts[1], url: `${SET}(${activityId(5)})` }], { stopOnError: true });
    assert.equal(stopped.status, 400, "a batch stopped at a failure answers 400");
    assert.deepEqual(outcomes(stopped.text), [[412, DUPLICATE]]);
    assert.equal(dv.rows("new_salesmanagoactivity").length, 2);
  });
});

// ---- the contact form's timeline, in Chromium ---------------------------------------------------

let sandbox;
let chromium;
let page;
const problems = [];

before(async () => {
  sandbox = await startSandbox({ port: 0, contacts: 4 });
  chromium = await launchChromium();
  page = await chromium.context.newPage();
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
});

after(async () => {
  await chromium?.close();
  await sandbox?.close();
});

/** Opens contact `id`'s form in `lcid` and waits until its timeline is loaded; returns what it shows. */
async function timeline(id, lcid) {
  await page.goto(`${sandbox.url}/contacts/${id}?lcid=${lcid}`);
  await page.waitForFunction(() => window.__sandbox && (window.__sandbox.ready || window.__sandbox.fatal), null, { timeout: 20_000 });
  assert.equal(await page.evaluate(() => window.__sandbox.fatal || null), null);
  await page.locator('[data-timeline][data-state="ready"]').waitFor({ timeout: 20_000 });
  return page.evaluate(() => {
    const section = document.querySelector("[data-timeline]");
    return {
      heading: section.querySelector("h2").textContent,
      labelledBy: document.getElementById(section.getAttribute("aria-labelledby"))?.textContent ?? null,
      status: section.querySelector('[role="status"]').hidden ? null : section.querySelector('[role="status"]').textContent,
      rows: [...section.querySelectorAll("ol > li[data-activity]")].map((li) => ({
        id: li.getAttribute("data-activity"),
        kind: li.getAttribute("data-kind"),
        label: li.querySelector(".kind").textContent,
        subject: li.querySelector("h3").textContent,
        time: li.querySelector("time")?.getAttribute("datetime") ?? null,
        shown: li.querySelector("time")?.textContent ?? null,
        description: li.querySelector(".description")?.textContent ?? null,
      })),
    };
  });
}

test("the contact form's timeline lists the contact's SALESmanago activity, newest first, in the user's language", async () => {
  const [first, second] = sandbox.dataverse.rows("contact");
  const api = `${sandbox.url}/api/data/v9.2/`;
  const put = async (n, contact, kind, subject, at) => {
    const response = await fetch(`${api}${SET}(${activityId(n)})`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", "If-None-Match": "*", Authorization: `Bearer ${sandbox.token}` },
      body: JSON.stringify(activity(contact, kind, subject, at)),
    });
    assert.equal(response.status, 204, await response.text());
  };
  await put(1, first.contactid, 100000001, "Spring newsletter", "2026-03-01T09:30:00Z");
  await put(2, first.contactid, 100000005, "/pricing", "2026-03-04T15:00:00Z");
  await put(3, first.contactid, 100000002, "Spring newsletter", "2026-03-02T08:00:00Z");
  await put(4, second.contactid, 100000006, "Webinar", "2026-03-05T10:00:00Z");

  for (const [lcid, heading, n] of [
    [1033, "Timeline", 0],
    [1045, "Oś czasu", 1],
  ]) {
    const shown = await timeline(first.contactid, lcid);
    assert.equal(shown.heading, heading);
    assert.equal(shown.labelledBy, heading, "the section and its list are named by the heading");
    assert.equal(shown.status, null);
    assert.deepEqual(
      shown.rows.map((r) => [r.id, r.kind, r.label, r.subject, r.time, r.description]),
      [
        [activityId(2), "100000005", KINDS[100000005][n], "/pricing", "2026-03-04T15:00:00Z", "/pricing: details"],
        [activityId(3), "100000002", KINDS[100000002][n], "Spring newsletter", "2026-03-02T08:00:00Z", "Spring newsletter: details"],
        [activityId(1), "100000001", KINDS[100000001][n], "Spring newsletter", "2026-03-01T09:30:00Z", "Spring newsletter: details"],
      ],
    );
    assert.ok(shown.rows.every((r) => /2026/.test(r.shown)), JSON.stringify(shown.rows.map((r) => r.shown)));

    await page.addScriptTag({ content: AXE });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document.querySelector("[data-timeline]"), { resultTypes: ["violations"] });
      return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id);
    });
    assert.deepEqual(violations, [], `${lcid}`);
  }
  assert.deepEqual(problems, []);
});

test("a contact without activity: the timeline says so", async () => {
  const third = sandbox.dataverse.rows("contact")[2];
  for (const [lcid, text] of [
    [1033, "No activity yet"],
    [1045, "Brak aktywności"],
  ]) {
    const shown = await timeline(third.contactid, lcid);
    assert.deepEqual(shown.rows, []);
    assert.equal(shown.status, text);
  }
  assert.deepEqual(problems, []);
});

test("a long timeline shows a page of activity at a time, the next on request", async () => {
  const fourth = sandbox.dataverse.rows("contact")[3];
  const rows = Array.from({ length: 55 }, (_, i) => ({
    activityid: activityId(100 + i),
    subject: `Visit ${i}`,
    new_kind: 100000005,
    actualend: new Date(Date.UTC(2026, 0, 1) + i * 3_600_000).toISOString().replace(/\.000Z$/, "Z"),
    _regardingobjectid_value: fourth.contactid,
  }));
  sandbox.dataverse.seed("new_salesmanagoactivity", rows);
  const shown = await timeline(fourth.contactid, 1033);
  assert.equal(shown.rows.length, 50);
  assert.equal(shown.rows[0].subject, "Visit 54", "newest first");
  const more = page.locator("[data-timeline] button.timeline-more");
  assert.equal(await more.isVisible(), true);
  await more.click();
  await page.locator("[data-timeline] li[data-activity]").nth(54).waitFor();
  await page.locator('[data-timeline][data-state="ready"]').waitFor();
  const subjects = await page.locator("[data-timeline] li[data-activity] h3").allTextContents();
  assert.deepEqual(subjects, rows.map((r) => r.subject).reverse());
  assert.equal(await more.isVisible(), false, "nothing more");
  assert.deepEqual(problems, []);
});

test("only a saved contact's form has a timeline", async () => {
  for (const path of ["/contacts/new", "/integration"]) {
    await page.goto(`${sandbox.url}${path}?lcid=1033`);
    await page.waitForFunction(() => window.__sandbox && (window.__sandbox.ready || window.__sandbox.fatal), null, { timeout: 20_000 });
    assert.equal(await page.locator("[data-timeline]").count(), 0, path);
    const stray = await page.evaluate(() => [...document.getElementById("main").childNodes].filter((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim()).map((n) => n.textContent));
    assert.deepEqual(stray, [], path);
  }
  assert.deepEqual(problems, []);
});

test("the contact's donotbulkemail is labelled as Dynamics labels it (Do Not Allow / Allow), not Yes / No", async () => {
  await withTables(async ({ dv, api }) => {
    dv.seed("contact", [{ contactid: contactId(3), firstname: "Ewa", donotbulkemail: true }]);
    for (const [lcid, labels] of [["1033", ["Do Not Allow", "Allow"]], ["1045", ["Nie zezwalaj", "Zezwalaj"]]]) {
      const path = "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='donotbulkemail')/Microsoft.Dynamics.CRM.BooleanAttributeMetadata?$select=LogicalName&$expand=OptionSet";
      const meta = await api.call("GET", path, { headers: { "X-Sandbox-Lcid": lcid } });
      const label = (option) => meta.json.OptionSet[option].Label.UserLocalizedLabel.Label;
      assert.deepEqual([label("TrueOption"), label("FalseOption")], labels, lcid);
      const row = await api.call("GET", `contacts(${contactId(3)})?$select=donotbulkemail`, {
        headers: { "X-Sandbox-Lcid": lcid, Prefer: 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"' },
      });
      assert.equal(row.json["donotbulkemail@OData.Community.Display.V1.FormattedValue"], labels[0], lcid);
    }
  });
});
