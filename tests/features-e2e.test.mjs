// The integration's features, end to end in the sandbox: each through its button or event, as
// a user would, checked in Dataverse's data and in SALESmanago's (the simulator, which refuses
// browsers: every call goes through salesmanago-relay, the real binary).
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { root } from "./support/package.mjs";
import { button, configure, gridRow, open, startSandboxWorld, takeDialog, until, jobSummary } from "./support/sandbox.mjs";

let world;
const SCREENSHOTS = join(root, "target", "screenshots");
const rows = () => world.sandbox.dataverse.rows("contact");
const row = (id) => rows().find((r) => r.contactid === id);
const inSalesmanago = (email) => world.sim.contacts().find((c) => c.email === email?.trim().toLowerCase());
const validEmail = (r) => typeof r.emailaddress1 === "string" && /^[a-z]+\.[a-z]+\d+@example\.com$/.test(r.emailaddress1);
/** An e-mail SALESmanago accepts once trimmed and lower-cased (the demo data's upper-case ones too). */
const sendable = (r) => typeof r.emailaddress1 === "string" && /^[a-z]+\.[a-z]+\d+@example\.com$/.test(r.emailaddress1.trim().toLowerCase());
const SYNCED = 100000000;

before(async () => {
  // Through salesmanago-relay, as a real org runs (the world's default); tests/direct-e2e.test.mjs
  // runs a few of these with the browser calling SALESmanago directly.
  world = await startSandboxWorld({ contacts: 120 });
  configure(world);
  mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await world?.close();
});

beforeEach(() => {
  world.sim.setFaults({});
  world.sandbox.dataverse.setFaults({});
});

/** A contact with a valid e-mail that SALESmanago does not hold. */
function notInSalesmanago(skip = 0) {
  return rows().filter((r) => validEmail(r) && !inSalesmanago(r.emailaddress1))[skip];
}

/** A contact SALESmanago holds with a different phone (the demo data's "differs" group). */
function differing(skip = 0) {
  return rows().filter((r) => validEmail(r) && inSalesmanago(r.emailaddress1)?.phone === "+48 600 000 000" && r.mobilephone !== "+48 600 000 000")[skip];
}

test("Send to SALESmanago creates the contact there and records its id, time and status", async () => {
  const contact = notInSalesmanago(0);
  await open(world, `/contacts/${contact.contactid}`);
  await button(world.page, "new.contact.Send.Button").click();
  const dialog = await takeDialog(world.page);
  assert.equal(dialog.kind, "alert", dialog.text);
  assert.match(dialog.text, /^Sent to SALESmanago\./);
  const held = inSalesmanago(contact.emailaddress1);
  assert.ok(held, "SALESmanago holds it");
  assert.equal(held.name, `${contact.firstname} ${contact.lastname}`);
  assert.equal(held.address.city, contact.address1_city);
  const after = row(contact.contactid);
  assert.equal(after.new_salesmanagoid, held.id);
  assert.equal(after.new_salesmanagosyncstatus, SYNCED);
  assert.ok(Date.now() - Date.parse(after.new_salesmanagosyncedon) < 60_000, after.new_salesmanagosyncedon);
  assert.equal(await world.page.locator("#field-new_salesmanagoid").inputValue(), held.id, "the form shows the new id");
});

test("Send for a contact without an e-mail says why, sends nothing and records it as skipped", async () => {
  const contact = rows().find((r) => !r.emailaddress1);
  const calls = world.sim.stats().total;
  await open(world, `/contacts/${contact.contactid}`);
  await button(world.page, "new.contact.Send.Button").click();
  const dialog = await takeDialog(world.page);
  assert.equal(dialog.kind, "error");
  assert.match(dialog.text, /no e-mail address/);
  assert.equal(world.sim.stats().total, calls, "nothing was sent");
  assert.equal(row(contact.contactid).new_salesmanagosyncstatus, 100000002);
  assert.match(row(contact.contactid).new_salesmanagolasterror, /no e-mail address/);
});

test("a contact form says when SALESmanago holds different data, and Fetch fills the form unsaved", async () => {
  const contact = differing(0);
  await open(world, `/contacts/${contact.contactid}`);
  const notice = world.page.locator('#form-notifications [data-id="salesmanago.differs"]');
  await notice.waitFor({ timeout: 15_000 });
  assert.match(await notice.innerText(), /SALESmanago holds different data for this contact \(\d+ fields\)/);
  await world.page.screenshot({ path: join(SCREENSHOTS, "contact-differs.png") });
  assert.equal(row(contact.contactid).mobilephone, contact.mobilephone, "nothing changed unasked");

  await button(world.page, "new.contact.Fetch.Button").click();
  const dialog = await takeDialog(world.page);
  assert.match(dialog.text, /fields were filled in from SALESmanago/);
  assert.equal(await world.page.locator("#field-mobilephone").inputValue(), "+48 600 000 000");
  assert.equal(await world.page.locator("#field-address1_line1").inputValue(), "ul. Nowa 1");
  assert.match(await world.page.locator(".dirty").innerText(), /Unsaved/);
  await world.page.screenshot({ path: join(SCREENSHOTS, "contact-fetched.png") });
  assert.equal(row(contact.contactid).mobilephone, contact.mobilephone, "the user reviews and saves");
});

test("a contact form shows what SALESmanago knows of the contact, in the user's language", async () => {
  const contact = differing(2);
  const held = inSalesmanago(contact.emailaddress1);
  const day = new Date(held.lastVisit).toISOString().slice(0, 10);
  const newsletter = (en) => (held.optedOut ? (en ? "unsubscribed" : "wypisany") : en ? "subscribed" : "zapisany");
  for (const [lcid, expected] of [
    [1033, `score ${held.score} · ${{ PROSPECT: "prospect", CUSTOMER: "customer", PARTNER: "partner" }[held.state]} · last visit ${day} · newsletter: ${newsletter(true)}`],
    [1045, `punkty ${held.score} · ${{ PROSPECT: "potencjalny klient", CUSTOMER: "klient", PARTNER: "partner" }[held.state]} · ostatnia wizyta ${day} · newsletter: ${newsletter(false)}`],
  ]) {
    await open(world, `/contacts/${contact.contactid}`, lcid);
    const standing = world.page.locator('#form-notifications [data-id="salesmanago.standing"]');
    await standing.waitFor({ timeout: 15_000 });
    const text = await standing.innerText();
    assert.ok(text.startsWith(`SALESmanago: ${expected}`), text);
    if (lcid === 1033) await world.page.screenshot({ path: join(SCREENSHOTS, "contact-standing.png") });
  }
});

test("Fetch for a contact SALESmanago does not hold says so", async () => {
  const contact = notInSalesmanago(1);
  await open(world, `/contacts/${contact.contactid}`, 1045);
  await button(world.page, "new.contact.Fetch.Button").click();
  const dialog = await takeDialog(world.page);
  assert.match(dialog.text, new RegExp(`W SALESmanago nie ma kontaktu z adresem ${contact.emailaddress1.replace(/\./g, "\\.")}`));
});

test("saving a changed contact sends it; a failure keeps the save and shows on the form", async () => {
  const contact = notInSalesmanago(2);
  await open(world, `/contacts/${contact.contactid}`);
  await world.page.locator("#field-address1_city").fill("Sopot");
  await world.page.locator("#field-address1_city").dispatchEvent("change");
  await button(world.page, "Mscrm.SavePrimary").click();
  await until(() => inSalesmanago(contact.emailaddress1)?.address.city === "Sopot", { what: "the save to reach SALESmanago" });
  await until(() => row(contact.contactid).new_salesmanagosyncstatus === SYNCED, { what: "the status" });

  world.sim.setFaults({ serverError: { every: 1, status: 503, count: 100 } });
  await world.page.locator("#field-address1_city").fill("Hel");
  await world.page.locator("#field-address1_city").dispatchEvent("change");
  await button(world.page, "Mscrm.SavePrimary").click();
  const notice = world.page.locator('#form-notifications [data-id="salesmanago.sync"][data-level="ERROR"]');
  await notice.waitFor({ timeout: 30_000 });
  assert.match(await notice.innerText(), /Saved in Dynamics, but not sent to SALESmanago: .*503/);
  assert.equal(row(contact.contactid).address1_city, "Hel", "the save stands");
  assert.equal(row(contact.contactid).new_salesmanagosyncstatus, 100000001);
  assert.equal(inSalesmanago(contact.emailaddress1).address.city, "Sopot");
});

test("saving without a synchronised change sends nothing", async () => {
  const contact = notInSalesmanago(3);
  await open(world, `/contacts/${contact.contactid}`);
  const calls = world.sim.stats().calls["contact/upsert"] ?? 0;
  await button(world.page, "Mscrm.SavePrimary").click();
  await world.page.waitForFunction(() => window.__sandbox.log.some((e) => e.kind === "saved"));
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(world.sim.stats().calls["contact/upsert"] ?? 0, calls);
});

test("Delete on the form deletes in SALESmanago, then in Dynamics; a SALESmanago failure keeps both", async () => {
  const keep = differing(1);
  await open(world, `/contacts/${keep.contactid}`);
  world.sim.setFaults({ serverError: { every: 1, status: 500, count: 100 } });
  await button(world.page, "Mscrm.DeletePrimaryRecord").click();
  const confirm = await takeDialog(world.page);
  assert.equal(confirm.kind, "confirm");
  assert.match(confirm.text, /Delete 1 contact\(s\) in Dynamics and in SALESmanago/);
  const failed = await takeDialog(world.page, { timeout: 30_000 });
  assert.equal(failed.kind, "error");
  assert.match(failed.text, /were not deleted anywhere; try again/);
  assert.ok(row(keep.contactid), "still in Dynamics");
  assert.ok(inSalesmanago(keep.emailaddress1), "still in SALESmanago");

  world.sim.setFaults({});
  await button(world.page, "Mscrm.DeletePrimaryRecord").click();
  await takeDialog(world.page);
  const done = await takeDialog(world.page);
  assert.match(done.text, /1 contact\(s\) deleted in Dynamics and deleted in SALESmanago/);
  assert.equal(row(keep.contactid), undefined);
  assert.equal(inSalesmanago(keep.emailaddress1), undefined);
});

test("Delete in the grid, with “only opt out” set, opts the contacts out in SALESmanago", async () => {
  configure(world, { new_optoutondelete: true });
  try {
    const contact = rows().find((r) => validEmail(r) && inSalesmanago(r.emailaddress1) && !inSalesmanago(r.emailaddress1).optedOut);
    await open(world, "/contacts");
    await (await gridRow(world.page, contact.contactid)).check();
    await button(world.page, "Mscrm.DeleteSelectedRecord").click();
    assert.match((await takeDialog(world.page)).text, /opt them out of newsletters and SMS/);
    assert.match((await takeDialog(world.page)).text, /1 contact\(s\) deleted in Dynamics and opted out in SALESmanago/);
    assert.equal(row(contact.contactid), undefined);
    const held = inSalesmanago(contact.emailaddress1);
    assert.equal(held.optedOut, true);
    assert.equal(held.optedOutPhone, true);
  } finally {
    configure(world, { new_optoutondelete: false });
  }
});

test("a user who may not delete contacts sees no Delete, and the engine deletes nothing anywhere for them", async () => {
  const contact = rows().find((r) => validEmail(r) && inSalesmanago(r.emailaddress1));
  world.sandbox.dataverse.setPrivileges({ delete: false });
  try {
    await open(world, `/contacts/${contact.contactid}`);
    assert.equal(await button(world.page, "Mscrm.DeletePrimaryRecord").count(), 0, "no Delete on the form");
    assert.equal(await button(world.page, "new.contact.Send.Button").count(), 1, "the other buttons stay");
    // Called anyway (a stale page, another ribbon): the contact stays in both systems, and the user is told why.
    const called = world.page.evaluate(() => window.SalesManago.Contact.delete(window.__sandbox.formContext));
    assert.equal((await takeDialog(world.page)).kind, "confirm");
    const refused = await takeDialog(world.page, { timeout: 30_000 });
    await called;
    assert.match(refused.text, /you may not delete this contact in Dynamics 365, so it was left as it is in SALESmanago too/);
    assert.ok(row(contact.contactid), "still in Dynamics");
    assert.ok(inSalesmanago(contact.emailaddress1), "still in SALESmanago");
    await open(world, "/contacts");
    await (await gridRow(world.page, contact.contactid)).check();
    assert.equal(await button(world.page, "Mscrm.DeleteSelectedRecord").count(), 0, "no Delete in the grid");
  } finally {
    world.sandbox.dataverse.setPrivileges({ delete: true });
  }
  await open(world, "/contacts");
  await (await gridRow(world.page, contact.contactid)).check();
  assert.equal(await button(world.page, "Mscrm.DeleteSelectedRecord").count(), 1, "Delete is back with the right");
});

test("a user without the role “SALESmanago user” is told which role to ask for, in their language", async () => {
  const contact = rows().find((r) => validEmail(r));
  world.sandbox.dataverse.setPrivileges({ readIntegration: false });
  try {
    for (const [lcid, said] of [
      [1033, /^Your security roles do not let you read the SALESmanago Integration record\. Ask your administrator to assign you the role “SALESmanago user”/],
      [1045, /^Twoje role zabezpieczeń nie pozwalają odczytać rekordu Integracja z SALESmanago\. Poproś administratora o przypisanie roli „SALESmanago user”/],
    ]) {
      await open(world, `/contacts/${contact.contactid}`, lcid);
      await button(world.page, "new.contact.Send.Button").click();
      const dialog = await takeDialog(world.page);
      assert.equal(dialog.kind, "error");
      assert.match(dialog.text, said);
    }
  } finally {
    world.sandbox.dataverse.setPrivileges({ readIntegration: true });
  }
});

test("Export to SALESmanago sends the selected rows and lists the ones that did not go", async () => {
  const invalid = rows().find((r) => r.emailaddress1 && r.emailaddress1.endsWith("@"));
  const fresh = [notInSalesmanago(4), notInSalesmanago(5)];
  await open(world, "/contacts", 1045);
  for (const contact of [invalid, ...fresh]) {
    await (await gridRow(world.page, contact.contactid)).check();
    // Selection is per page, as in Dynamics: export each page's selection.
    await button(world.page, "new.contact.ExportSelected.Button").click();
    const summary = await takeDialog(world.page);
    assert.match(summary.text, /Eksportuj do SALESmanago: zakończono\. Kontakty: 1\./, summary.text);
    if (contact === invalid) {
      assert.match(summary.text, /pominięto: 1/);
      const download = world.page.waitForEvent("download");
      const prompt = await takeDialog(world.page);
      assert.match(prompt.text, /Pobrać listę 1 kontaktów/);
      const csv = readFileSync(await (await download).path(), "utf8");
      assert.match(csv, /^\ufeffIdentyfikator kontaktu,E-mail,Nazwa,Wynik,Powód\r\n/);
      assert.ok(csv.includes(invalid.contactid) && csv.includes("pominięty"), csv);
    } else {
      assert.match(summary.text, /Wysłano: 1/);
      assert.ok(inSalesmanago(contact.emailaddress1));
    }
    await open(world, "/contacts", 1045);
  }
});

test("Export all sends every contact; the counts add up; a second run writes nothing to contacts", async () => {
  await open(world, "/integration");
  await button(world.page, "new.integration.ExportAll.Button").click();
  const summary = await takeDialog(world.page, { timeout: 60_000, screenshot: join(SCREENSHOTS, "export-all-summary.png") });
  const [, total, sent, skipped, failed] = summary.text.match(/finished: (\d+) contacts\. (\d+) sent, (\d+) skipped, (\d+) failed\./).map(Number);
  assert.equal(total, rows().length);
  assert.equal(sent + skipped + failed, total);
  assert.equal(failed, 0);
  assert.equal(skipped, rows().filter((r) => !sendable(r)).length);
  for (const r of rows().filter(sendable)) assert.ok(inSalesmanago(r.emailaddress1), r.emailaddress1);
  await takeDialog(world.page); // the download prompt, declined below by taking its first button
  const record = world.sandbox.dataverse.rows("new_salesmanagointegration")[0];
  assert.equal(record.new_exportcheckpoint ?? null, null);
  assert.match(record.new_exportlastresult, /finished/);

  world.sandbox.dataverse.resetStats();
  await button(world.page, "new.integration.ExportAll.Button").click();
  assert.match((await takeDialog(world.page, { timeout: 60_000 })).text, new RegExp(`finished: ${total} contacts\\. ${sent} sent`));
  await takeDialog(world.page);
  // On the integration record only the lease taken, then the summary with the lease given up;
  // no contact written again (no $batch at all).
  assert.equal(world.sandbox.dataverse.stats().byMethod.PATCH, 2);
  assert.equal(world.sandbox.dataverse.stats().batches, 0);
  const lease = JSON.parse(world.sandbox.dataverse.rows("new_salesmanagointegration")[0].new_exportlease);
  assert.equal(lease.released, true);
  assert.equal(lease.user, "Sandbox User");
});

test("Export all clicked twice runs once; the second click says who runs it and how far it is", async () => {
  await open(world, "/integration");
  const before = world.sim.stats().calls["contact/batchupsert"] ?? 0;
  world.sandbox.dataverse.resetStats();
  // A double click: the second starts before the first has done anything.
  await world.page.evaluate(() => {
    const button = document.querySelector('#commandbar button[data-id="new.integration.ExportAll.Button"]');
    button.click();
    button.click();
  });
  // The second start is refused in one of two ways, by when it reads the lease again after its
  // write lost (412): while the run goes on ("already running", and the summary opens over the
  // refusal later), or after the run ended ("has just run", over the summary). Each dialog is
  // closed from the top, with the download prompt that follows the summary.
  await world.page.locator('#dialogs .dialog[data-kind="error"]').waitFor({ timeout: 60_000 });
  await world.page.locator('#dialogs .dialog[data-kind="alert"]', { hasText: "Export all contacts finished" }).waitFor({ timeout: 60_000 });
  const seen = [];
  for (let left = 6; left > 0 && (await world.page.locator("#dialogs .dialog").count()); left--) {
    const top = world.page.locator("#dialogs .dialog").last();
    const dialog = world.page.locator(`#dialogs .dialog[aria-labelledby="${await top.getAttribute("aria-labelledby")}"]`);
    seen.push({ kind: await dialog.getAttribute("data-kind"), text: await dialog.locator(".text").innerText() });
    await dialog.locator(".buttons button").first().click();
    await dialog.waitFor({ state: "detached" });
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.equal(await world.page.locator("#dialogs .dialog").count(), 0, JSON.stringify(seen));
  const refusals = seen.filter((d) => d.kind === "error");
  assert.equal(refusals.length, 1, JSON.stringify(seen));
  const running = /^Export all contacts is already running: Sandbox User started it 0 min ago, and \d+ (of \d+ )?contacts are done so far\. Wait for it to finish\./;
  const ran = /^Export all contacts has just run: Sandbox User started it while this start was on its way, and it has already ended \(\d+ (of \d+ )?contacts handled\)\. This start was dropped/;
  assert.ok(running.test(refusals[0].text) || ran.test(refusals[0].text), refusals[0].text);
  const summaries = seen.filter((d) => /^Export all contacts finished:/.test(d.text));
  assert.equal(summaries.length, 1, `one summary only: ${JSON.stringify(seen)}`);
  assert.match(summaries[0].text, new RegExp(`Export all contacts finished: ${rows().length} contacts\\.`));
  // One run's traffic: a page of contacts is one batch upsert.
  const pages = Math.ceil(rows().filter(sendable).length / 400);
  assert.ok(world.sim.stats().calls["contact/batchupsert"] - before <= pages, "the export ran once");
  assert.equal(JSON.parse(world.sandbox.dataverse.rows("new_salesmanagointegration")[0].new_exportlease).released, true);
});

test("Export all resumes from its checkpoint after the tab was closed, taking over the silent run's lease", async () => {
  const ordered = rows().map((r) => r.contactid).sort();
  const after = ordered[99];
  // The closed tab's lease: its last heartbeat ten minutes ago.
  const silent = Date.now() - 600_000;
  const lease = { token: "closed-tab", userId: "u-2", user: "Piotr Zieliński", since: silent - 60_000, heartbeat: silent, done: 100, total: null };
  configure(world, { new_exportcheckpoint: JSON.stringify({ after, total: 100, done: 90, skipped: 10, failed: 0 }), new_exportlease: JSON.stringify(lease) });
  const before = world.sim.stats().calls["contact/batchupsert"] ?? 0;
  await open(world, "/integration");
  await button(world.page, "new.integration.ExportAll.Button").click();
  const summary = await takeDialog(world.page, { timeout: 60_000 });
  const [, total, sent, skipped, failed] = summary.text.match(/finished: (\d+) contacts\. (\d+) sent, (\d+) skipped, (\d+) failed/).map(Number);
  const rest = rows().filter((r) => r.contactid > after);
  assert.equal(total, 100 + rest.length);
  assert.equal(sent, 90 + rest.filter(sendable).length);
  assert.equal(skipped, 10 + rest.filter((r) => !sendable(r)).length);
  assert.equal(failed, 0);
  assert.equal(world.sim.stats().calls["contact/batchupsert"], before + 1, "only the rest was sent, in one batch");
  const logged = await world.page.evaluate(() => window.__sandbox.log.filter((e) => e.kind === "progress").map((e) => e.text));
  assert.ok(logged.some((t) => /Continuing the interrupted export: 90 contacts/.test(t)), logged.join("\n"));
  const taken = JSON.parse(world.sandbox.dataverse.rows("new_salesmanagointegration")[0].new_exportlease);
  assert.equal(taken.user, "Sandbox User");
  assert.equal(taken.released, true);
  if (rest.some((r) => !sendable(r))) await takeDialog(world.page);
});

test("Pull consents updates only contacts that differ, and an older opt-in never overrides an opt-out", async () => {
  const [a, b] = rows().filter((r) => validEmail(r) && inSalesmanago(r.emailaddress1));
  const now = Date.now();
  world.sandbox.dataverse.seed("contact", rows().map((r) => (r.contactid === b.contactid ? { ...r, donotbulkemail: true, modifiedon: new Date(now).toISOString() } : r)));
  world.sim.seed([
    { ...inSalesmanago(a.emailaddress1), optedOut: true, consents: [{ consentName: "MARKETING", consentAccept: false }], modifiedOn: now + 1000 },
    { ...inSalesmanago(b.emailaddress1), optedOut: false, modifiedOn: now - 86_400_000 },
  ]);
  await open(world, "/integration");
  await button(world.page, "new.integration.PullConsents.Button").click();
  const summary = await takeDialog(world.page, { timeout: 60_000 });
  const [, total, updated, same, missing, skipped, failed] = summary.text
    .match(/(\d+) contacts checked\. (\d+) updated, (\d+) already the same, (\d+) not in SALESmanago's file \(only contacts sent from Dynamics are in it\), (\d+) skipped \(no valid e-mail\), (\d+) failed/)
    .map(Number);
  assert.equal(total, rows().filter((r) => r.emailaddress1).length);
  assert.equal(updated + same + missing + skipped + failed, total);
  assert.ok(updated >= 1);
  assert.equal(row(a.contactid).donotbulkemail, true);
  assert.equal(row(a.contactid).new_consent_marketing, false);
  assert.equal(row(b.contactid).donotbulkemail, true, "the Dynamics opt-out stays");
  if (skipped + failed > 0) assert.match((await takeDialog(world.page)).text, /Download the list/);
});

test("the consent rule: a consent withdrawn in SALESmanago is never granted back, an opt-out made in Dynamics is never undone", async () => {
  const [c, d] = rows().filter((r) => validEmail(r) && inSalesmanago(r.emailaddress1)).slice(4, 6);
  const now = Date.now();
  const twoDaysAgo = new Date(now - 2 * 86_400_000).toISOString();
  // As an install from before the rule: no consent base on either contact.
  world.sandbox.dataverse.seed("contact", rows().map((r) => {
    if (r.contactid === c.contactid) return { ...r, new_consent_marketing: true, modifiedon: twoDaysAgo, new_salesmanagoconsentbase: null };
    if (r.contactid === d.contactid) return { ...r, donotbulkemail: true, new_donotsms: true, modifiedon: twoDaysAgo, new_salesmanagoconsentbase: null };
    return r;
  }));
  // SALESmanago: c's marketing withdrawn an hour ago; d allows both and its phone changed then.
  world.sim.seed([
    { ...inSalesmanago(c.emailaddress1), consents: [{ consentName: "MARKETING", consentAccept: false, optOut: true, agreementDate: now - 3_600_000 }], modifiedOn: now - 3_600_000 },
    { ...inSalesmanago(d.emailaddress1), optedOut: false, optedOutPhone: false, phone: "+48600999000", modifiedOn: now - 3_600_000 },
  ]);
  const marketing = () => inSalesmanago(c.emailaddress1).consents.find((x) => x.consentName === "MARKETING");
  const withdrawn = () => assert.equal(marketing()?.consentAccept, false, JSON.stringify(marketing()));
  const optedOut = () => {
    assert.equal(row(d.contactid).donotbulkemail, true, "the newsletter opt-out stays");
    assert.equal(row(d.contactid).new_donotsms, true, "the SMS opt-out stays");
  };

  await open(world, "/integration");
  assert.match(await jobSummary(world.page, "new.integration.ExportAll.Button"), /finished/);
  withdrawn();

  await open(world, `/contacts/${c.contactid}`);
  await button(world.page, "new.contact.Send.Button").click();
  await takeDialog(world.page);
  withdrawn();
  await world.page.locator("#field-address1_city").fill("Ustka");
  await world.page.locator("#field-address1_city").dispatchEvent("change");
  await button(world.page, "Mscrm.SavePrimary").click();
  await until(() => inSalesmanago(c.emailaddress1)?.address.city === "Ustka", { what: "the save to reach SALESmanago" });
  withdrawn();

  await open(world, "/integration");
  assert.match(await jobSummary(world.page, "new.integration.PullConsents.Button"), /finished/);
  optedOut();
  assert.equal(row(c.contactid).new_consent_marketing, false, "SALESmanago's withdrawal reaches Dynamics");
  assert.match(await jobSummary(world.page, "new.integration.PullChanges.Button"), /finished/);
  optedOut();
  withdrawn();
  // Both now agree, and say so in their base.
  assert.deepEqual(JSON.parse(row(c.contactid).new_salesmanagoconsentbase).MARKETING, false);
  // SALESmanago's history: after the withdrawal, MARKETING was never given again, not even for a moment.
  const history = inSalesmanago(c.emailaddress1).consentHistory.filter((change) => change.consentName === "MARKETING");
  const withdrawal = history.findIndex((change) => change.consentAccept === false);
  assert.ok(withdrawal >= 0, JSON.stringify(history));
  assert.deepEqual(history.slice(withdrawal).filter((change) => change.consentAccept), [], JSON.stringify(history));
});

test("Pull changes updates the matched contacts, creates none, and stores the watermark", async () => {
  const target = rows().find((r) => validEmail(r) && inSalesmanago(r.emailaddress1));
  const count = rows().length;
  world.sim.seed([
    { ...inSalesmanago(target.emailaddress1), address: { city: "Zakopane" }, modifiedOn: Date.now() },
    { email: "brand.new.in.salesmanago@example.com", name: "Only There", modifiedOn: Date.now() },
  ]);
  // Pull changes lists up to the earliest Dataverse's time can be (its Date header counts whole
  // seconds): a change made within the second the pull starts goes with the next pull.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await open(world, "/integration");
  await button(world.page, "new.integration.PullChanges.Button").click();
  const summary = await takeDialog(world.page, { timeout: 60_000 });
  const [, total, updated, , missing, failed] = summary.text
    .match(/(\d+) contacts changed in SALESmanago\. (\d+) updated in Dynamics, (\d+) already the same, (\d+) not in Dynamics.*, (\d+) failed/)
    .map(Number);
  assert.ok(total >= 2 && updated >= 1 && missing >= 1 && failed === 0, summary.text);
  assert.equal(row(target.contactid).address1_city, "Zakopane");
  assert.equal(rows().length, count, "no contact created");
  const record = world.sandbox.dataverse.rows("new_salesmanagointegration")[0];
  assert.ok(Number(record.new_changeswatermark) > Date.now() - 120_000, record.new_changeswatermark);

  await button(world.page, "new.integration.PullChanges.Button").click();
  assert.match((await takeDialog(world.page, { timeout: 60_000 })).text, /finished: 0 contacts changed/);
});

test("Pull activity puts SALESmanago's activity on the contact's timeline once, in the user's language, with the kinds the record keeps", async () => {
  // A contact SALESmanago holds with its id in Dynamics (after the exports above), else one sent now.
  let contact = rows().find((r) => validEmail(r) && r.new_salesmanagoid && inSalesmanago(r.emailaddress1)?.id === r.new_salesmanagoid);
  if (!contact) {
    contact = notInSalesmanago(0);
    await open(world, `/contacts/${contact.contactid}`);
    await button(world.page, "new.contact.Send.Button").click();
    await takeDialog(world.page);
  }
  const held = inSalesmanago(contact.emailaddress1);
  assert.ok(held && row(contact.contactid).new_salesmanagoid === held.id, "the contact is in SALESmanago, with its id in Dynamics");
  const now = Date.now();
  const minutes = (m) => now - m * 60_000;
  world.sim.addActivity(held.email, {
    emailMessages: [{ id: "m-e2e-1", subject: "Spring sale", sentOn: minutes(180), openedOn: minutes(120), clickedOn: minutes(119), bouncedOn: null, unsubscribedOn: null }],
    contactVisits: [{ conversationId: "v-e2e-1", time: minutes(30), url: "https://shop.example.com/spring", duration: "42", visitSource: "google", host: "shop.example.com" }],
    contactExtEvents: [{ eventId: "e-e2e-1", contactExtEventType: "PURCHASE", date: minutes(10), description: "Order 1001", value: 99.5 }],
  });
  const activities = () => world.sandbox.dataverse.rows("new_salesmanagoactivity").filter((a) => a._regardingobjectid_value === contact.contactid);

  await open(world, "/integration");
  await button(world.page, "new.integration.PullActivity.Button").click();
  const first = await takeDialog(world.page, { timeout: 60_000 });
  assert.match(first.text, /^Pull activity finished: \d+ contacts checked\. \d+ activities added to their timelines, \d+ there already, \d+ contacts not in SALESmanago, 0 failed\.$/, first.text);
  // By default every kind but e-mails sent: opened, clicked, the visit and the purchase.
  const kinds = activities().map((a) => a.new_kind).sort();
  assert.deepEqual(kinds, [100000001, 100000002, 100000005, 100000006], JSON.stringify(activities()));
  const visit = activities().find((a) => a.new_kind === 100000005);
  assert.equal(visit.subject, "https://shop.example.com/spring");
  assert.equal(Date.parse(visit.actualend), minutes(30) - (minutes(30) % 1000));
  assert.match(visit.description, /duration: 42/);

  for (const [lcid, labels, heading] of [
    [1033, ["External event", "Website visit", "E-mail link clicked", "E-mail opened"], /Timeline/],
    [1045, ["Zdarzenie zewnętrzne", "Wizyta na stronie", "Kliknięty link w e-mailu", "Otwarty e-mail"], /Oś czasu/],
  ]) {
    await open(world, `/contacts/${contact.contactid}`, lcid);
    const timeline = world.page.locator('[data-timeline][data-state="ready"]');
    await timeline.waitFor({ timeout: 15_000 });
    assert.match(await timeline.innerText(), heading);
    const items = await world.page.locator("[data-timeline] [data-activity]").allInnerTexts();
    assert.equal(items.length, 4, items.join(" | "));
    // Newest first, each under its kind's label in the user's language.
    labels.forEach((label, i) => assert.ok(items[i].includes(label), `${lcid}: ${items[i]} has ${label}`));
    assert.ok(items[0].includes("Order 1001") && items[1].includes("shop.example.com/spring"), items.join(" | "));
  }
  await world.page.screenshot({ path: join(SCREENSHOTS, "contact-timeline.png") });

  // Again: nothing new, nothing twice. Then an admin keeps e-mails sent too: the send comes.
  await open(world, "/integration");
  await button(world.page, "new.integration.PullActivity.Button").click();
  assert.match((await takeDialog(world.page, { timeout: 60_000 })).text, /\. 0 activities added to their timelines, \d+ there already/);
  assert.equal(activities().length, 4);
  const [record] = world.sandbox.dataverse.rows("new_salesmanagointegration");
  world.sandbox.dataverse.seed("new_salesmanagointegration", [{ ...record, new_activitykinds: "sent, opened, clicked, visit, event" }]);
  await open(world, "/integration");
  await button(world.page, "new.integration.PullActivity.Button").click();
  assert.match((await takeDialog(world.page, { timeout: 60_000 })).text, /\. 1 activities added to their timelines/);
  assert.deepEqual(activities().map((a) => a.new_kind).sort(), [100000000, 100000001, 100000002, 100000005, 100000006]);

  // A kind that is not one: refused with the names to use, nothing pulled.
  world.sandbox.dataverse.seed("new_salesmanagointegration", [{ ...record, new_activitykinds: "opened, clicks" }]);
  await open(world, "/integration");
  await button(world.page, "new.integration.PullActivity.Button").click();
  const refused = await takeDialog(world.page, { timeout: 60_000 });
  assert.match(refused.text, /names “clicks”, which is not a kind of activity, so nothing was pulled\. Use these names/);
  world.sandbox.dataverse.seed("new_salesmanagointegration", [{ ...record }]);
});

test("a consent column an admin adds is synchronised without any change to the solution", async () => {
  world.sandbox.dataverse.addColumn("contact", { logicalName: "new_consent_profiling", type: "Boolean", label: { 1033: "Profiling consent", 1045: "Zgoda na profilowanie" } });
  const contact = rows().find(sendable);
  // Granted in Dynamics after both sides agreed it was not: a change, so it travels.
  const granted = { new_consent_profiling: true, new_salesmanagoconsentbase: JSON.stringify({ PROFILING: false }) };
  world.sandbox.dataverse.seed("contact", rows().map((r) => (r.contactid === contact.contactid ? { ...r, ...granted } : r)));
  await open(world, `/contacts/${contact.contactid}`);
  assert.equal(await world.page.locator("#field-new_consent_profiling").count(), 1);
  await button(world.page, "new.contact.Send.Button").click();
  await takeDialog(world.page);
  const consents = inSalesmanago(contact.emailaddress1).consents;
  assert.ok(consents.some((c) => c.consentName === "PROFILING" && c.consentAccept === true), JSON.stringify(consents));
});

test("a second integration record is refused with a clear message", async () => {
  await open(world, "/integration/new");
  const notice = world.page.locator('#form-notifications [data-id="salesmanago.single"]');
  await notice.waitFor({ timeout: 15_000 });
  assert.match(await notice.innerText(), /already exists, and there can be only one/);
  await world.page.locator("#field-new_name").fill("Second");
  await world.page.locator("#field-new_name").dispatchEvent("change");
  await button(world.page, "Mscrm.SavePrimary").click();
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(world.sandbox.dataverse.rows("new_salesmanagointegration").length, 1);
});

test("an export never forces an opt-in that Dynamics does not hold", async () => {
  const contact = rows().find((r) => sendable(r) && inSalesmanago(r.emailaddress1) && r.donotbulkemail === false);
  world.sim.seed([{ ...inSalesmanago(contact.emailaddress1), optedOut: true }]);
  await open(world, `/contacts/${contact.contactid}`);
  await button(world.page, "new.contact.Send.Button").click();
  assert.match((await takeDialog(world.page)).text, /Sent to SALESmanago/);
  assert.equal(inSalesmanago(contact.emailaddress1).optedOut, true, "still opted out in SALESmanago");

  // A deliberate opt-in (the user allows bulk e-mail and saves) is passed on.
  world.sandbox.dataverse.seed("contact", rows().map((r) => (r.contactid === contact.contactid ? { ...r, donotbulkemail: true } : r)));
  await open(world, `/contacts/${contact.contactid}`);
  await world.page.locator("#field-donotbulkemail").selectOption("false");
  await button(world.page, "Mscrm.SavePrimary").click();
  await until(() => inSalesmanago(contact.emailaddress1).optedOut === false, { what: "the opt-in to reach SALESmanago" });
});

test("a job waits out 429s from Dataverse and SALESmanago and still finishes with the right counts", async () => {
  const expected = rows().filter((r) => r.emailaddress1).length;
  await open(world, "/integration");
  world.sandbox.dataverse.resetStats();
  const throttledBefore = world.sandbox.dataverse.stats().throttled;
  world.sandbox.dataverse.setFaults({ throttle: { every: 2, retryAfter: 1, count: 2 } });
  world.sim.setFaults({ throttle: { every: 2, retryAfter: 1, count: 1 } });
  await button(world.page, "new.integration.PullConsents.Button").click();
  const summary = await takeDialog(world.page, { timeout: 60_000 });
  assert.match(summary.text, new RegExp(`: ${expected} contacts checked\\.`), summary.text);
  assert.match(summary.text, /, 0 failed\./);
  assert.ok(world.sandbox.dataverse.stats().throttled - throttledBefore >= 1, "Dataverse answered 429 at least once");
  // While it waits, the progress indicator says which service asked and for how long.
  const shown = await world.page.evaluate(() => window.__sandbox.log.filter((e) => e.kind === "progress" && e.text).map((e) => e.text));
  const waits = shown.filter((text) => /asked to slow down/.test(text));
  assert.ok(
    waits.some((text) => /^Pull consents: \d+ contacts… Dynamics 365 asked to slow down \(service protection limits\): continuing in 1 s\.$/.test(text)),
    `a Dataverse wait was shown: ${JSON.stringify(waits)}`,
  );
  assert.ok(
    waits.some((text) => /^Pull consents: \d+ contacts… SALESmanago asked to slow down: continuing in 1 s\.$/.test(text)),
    `a SALESmanago wait was shown: ${JSON.stringify(waits)}`,
  );
  assert.match(shown.at(-1), /^Pull consents: \d+ contacts…$/, "the last progress shown is the count, once the waits were over");
  // Before it compares, it says that SALESmanago prepares the file, then that it reads it.
  const preparing = shown.findIndex((text) => /^Pull consents: SALESmanago is preparing the file of consents and opt-outs \(\d+ s so far\)\./.test(text));
  const reading = shown.findIndex((text) => /^Pull consents: reading SALESmanago's file, \d+ contacts so far…$/.test(text));
  assert.ok(preparing >= 0 && reading > preparing, `the file's preparation, then its reading, were shown: ${JSON.stringify(shown)}`);
  if (Number(summary.text.match(/(\d+) skipped/)[1]) > 0) assert.match((await takeDialog(world.page)).text, /Download the list/);
});

test("every call reached SALESmanago through the relay, with the browser's key, from the sandbox", () => {
  // The sum of the tests above: SALESmanago (refusing browsers) answered only calls the relay forwarded.
  const lines = world.relay.log.map((line) => JSON.parse(line)).filter((line) => "status" in line);
  const forwarded = {};
  for (const line of lines) {
    assert.equal(line.origin, world.sandbox.url, JSON.stringify(line));
    // SALESmanago's file goes by the address the relay signed; every API call with the browser's key.
    if (line.method === "file") continue;
    assert.equal(line.key, "browser", JSON.stringify(line));
    forwarded[line.method] = (forwarded[line.method] ?? 0) + 1;
  }
  assert.deepEqual(forwarded, world.sim.stats().calls, "each call SALESmanago answered, once through the relay");
  assert.ok(lines.some((line) => line.method === "file" && line.status === 200), "Pull consents read SALESmanago's file through the relay");
});
