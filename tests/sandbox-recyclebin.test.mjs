// Tests of FetchXML and the recycle bin in the Dataverse Web API stand-in
// (sandbox/dataverse/fetchxml.mjs) over real HTTP: deleted rows read back with
// <fetch datasource="bin">, live FetchXML queries (eq, in, ne, null, or, order, top, count/page),
// the refusal of everything outside the subset, the bin off, its retention and its persistence
// across a restart. Every server listens on 127.0.0.1 port 0 and is closed at the end of its
// test; loops are bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createDataverse } from "../sandbox/dataverse.mjs";
import { withServer as withDataverseServer } from "./support/dataverse-server.mjs";

const DAY_MS = 86_400_000;

const TABLES = () => ({
  contact: {
    entitySet: "contacts",
    primaryKey: "contactid",
    primaryName: "fullname",
    columns: {
      fullname: { type: "String", maxLength: 160, readOnly: true },
      firstname: { type: "String", maxLength: 50 },
      lastname: { type: "String", maxLength: 50 },
      emailaddress1: { type: "String", maxLength: 100 },
      numberofchildren: { type: "Integer" },
      donotbulkemail: { type: "Boolean" },
      new_syncedon: { type: "DateTime" },
    },
    computed: { fullname: (row) => [row.firstname, row.lastname].filter(Boolean).join(" ") || null },
  },
  new_salesmanagointegration: {
    entitySet: "new_salesmanagointegrations",
    primaryKey: "new_salesmanagointegrationid",
    primaryName: "new_name",
    columns: { new_name: { type: "String", maxLength: 100 } },
  },
});

const id = (n) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
/** Contacts from..to: c<n>@example.com, except that every fifth has no e-mail; n children. */
const contacts = (from, to) =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const n = from + i;
    return { contactid: id(n), firstname: `First${n}`, lastname: `Last${n}`, emailaddress1: n % 5 === 0 ? null : `c${n}@example.com`, numberofchildren: n % 3, donotbulkemail: n % 2 === 0 };
  });

/** The stand-in of this file's tables behind an HTTP server (tests/support/dataverse-server.mjs). */
function withServer(options, fn) {
  return withDataverseServer(TABLES(), options, fn);
}

/** The FetchXML of Microsoft's example: the deleted contacts among `ids`, with their e-mails. */
const binById = (ids, attributes = ["emailaddress1", "firstname"]) =>
  `<fetch datasource="bin"><entity name="contact">${attributes.map((a) => `<attribute name="${a}"/>`).join("")}` +
  `<filter><condition attribute="contactid" operator="in">${ids.map((v) => `<value>${v}</value>`).join("")}</condition></filter></entity></fetch>`;

const ids = (r) => r.json.value.map((row) => row.contactid);

// ---------------------------------------------------------------------------------------------

test("deleted contacts are read back from the bin by id with `in`: their full rows, in the shape of a live FetchXML read", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", contacts(1, 6));
    for (const n of [2, 5]) assert.equal((await api.del(`contacts(${id(n)})`)).status, 204);

    // 2 and 5 deleted, 3 live, 99 never existed: only the deleted ones, in key order
    const r = await api.fetchXml("contacts", binById([id(5), id(2), id(3), id(99)]));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json["@odata.context"], `${api.base}$metadata#contacts(emailaddress1,firstname,contactid)`);
    assert.deepEqual(
      r.json.value.map(({ "@odata.etag": etag, ...row }) => (assert.match(etag, /^W\/"\d+"$/), row)),
      [
        { emailaddress1: "c2@example.com", firstname: "First2", contactid: id(2) },
        // contact 5 had no e-mail: FetchXML answers leave null properties out
        { firstname: "First5", contactid: id(5) },
      ],
    );
    // ids in braces and upper case name the same rows; any column of the row is kept
    const braces = await api.fetchXml("contacts", binById([`{${id(2).toUpperCase()}}`], ["lastname", "numberofchildren", "donotbulkemail", "createdon"]));
    assert.equal(braces.status, 200, braces.text);
    assert.equal(braces.json.value.length, 1);
    assert.equal(braces.json.value[0].lastname, "Last2");
    assert.equal(braces.json.value[0].numberofchildren, 2);
    assert.equal(braces.json.value[0].donotbulkemail, true);
    assert.match(braces.json.value[0].createdon, /^\d{4}-\d{2}-\d{2}T/);

    // the live table no longer has them; the bin has nothing else
    assert.deepEqual(ids(await api.fetchXml("contacts", `<fetch><entity name="contact"><attribute name="firstname"/></entity></fetch>`)), [id(1), id(3), id(4), id(6)]);
    assert.deepEqual(ids(await api.fetchXml("contacts", `<fetch datasource="bin"><entity name="contact"><attribute name="firstname"/></entity></fetch>`)), [id(2), id(5)]);
    const kept = dv.recycleBin("contact");
    assert.deepEqual(
      kept.map((e) => [e.id, e.row.emailaddress1]),
      [
        [id(2), "c2@example.com"],
        [id(5), null],
      ],
    );
    for (const e of kept) assert.ok(Math.abs(Date.parse(e.deletedAt) - Date.now()) < 60_000, e.deletedAt);

    // created again with the same key and deleted again: the bin keeps the first copy, as documented
    assert.equal((await api.post("contacts", { contactid: id(2), firstname: "Again", emailaddress1: "again@example.com" })).status, 204);
    assert.equal((await api.del(`contacts(${id(2)})`)).status, 204);
    assert.deepEqual((await api.fetchXml("contacts", binById([id(2)]))).json.value.map((row) => row.emailaddress1), ["c2@example.com"]);

    // a table without the bin: nothing is kept, and its bin reads as empty
    dv.seed("new_salesmanagointegration", [{ new_salesmanagointegrationid: id(7), new_name: "x" }]);
    assert.equal((await api.del(`new_salesmanagointegrations(${id(7)})`)).status, 204);
    const other = await api.fetchXml("new_salesmanagointegrations", `<fetch datasource="bin"><entity name="new_salesmanagointegration"><attribute name="new_name"/></entity></fetch>`);
    assert.equal(other.status, 200, other.text);
    assert.deepEqual(other.json.value, []);
  });
});

test("a change set that rolls back keeps nothing in the bin; a bin read works inside a $batch", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", contacts(1, 3));
    const op = (n, lines) => ["--changeset_1", "Content-Type: application/http", "Content-Transfer-Encoding: binary", `Content-ID: ${n}`, "", ...lines];
    const rolledBack = [
      "--batch_1",
      "Content-Type: multipart/mixed; boundary=changeset_1",
      "",
      ...op(1, [`DELETE ${api.base}contacts(${id(2)}) HTTP/1.1`, ""]),
      // If-Match: an update only (without it, the PATCH would create the row: an upsert), which fails
      ...op(2, [`PATCH ${api.base}contacts(${id(99)}) HTTP/1.1`, "Content-Type: application/json", "If-Match: *", "", '{"firstname":"nobody"}']),
      "--changeset_1--",
      "--batch_1--",
      "",
    ].join("\r\n");
    const r = await api.call("POST", "$batch", { body: rolledBack, headers: { "Content-Type": "multipart/mixed; boundary=batch_1" } });
    // Stopped at its failure (no odata.continue-on-error): the batch answers 400.
    assert.equal(r.status, 400, r.text);
    assert.equal(dv.rows("contact").length, 3, "rolled back");
    assert.deepEqual(dv.recycleBin("contact"), []);

    await api.del(`contacts(${id(3)})`);
    const read = [
      "--batch_2",
      "Content-Type: application/http",
      "Content-Transfer-Encoding: binary",
      "",
      `GET ${api.base}contacts?fetchXml=${encodeURIComponent(binById([id(3)]))} HTTP/1.1`,
      "Accept: application/json",
      "",
      "--batch_2--",
      "",
    ].join("\r\n");
    const b = await api.call("POST", "$batch", { body: read, headers: { "Content-Type": "multipart/mixed; boundary=batch_2" } });
    assert.equal(b.status, 200, b.text);
    assert.ok(b.text.includes('"emailaddress1":"c3@example.com"'), b.text);
  });
});

test("live FetchXML: eq and in filter the rows (no longer ignored), with ne, null, or, nested filters, order, top, count and page", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", contacts(1, 12));
    const q = (inner, fetch = "") => `<fetch${fetch}><entity name="contact"><attribute name="emailaddress1"/>${inner}</entity></fetch>`;
    const where = (conditions, type = "and") => q(`<filter type="${type}">${conditions}</filter>`);

    // eq ignores case, as SQL Server's collation
    const eq = await api.fetchXml("contacts", where(`<condition attribute="emailaddress1" operator="eq" value="C7@EXAMPLE.com"/>`));
    assert.equal(eq.status, 200, eq.text);
    assert.equal(eq.json["@odata.context"], `${api.base}$metadata#contacts(emailaddress1,contactid)`);
    assert.deepEqual(eq.json.value, [{ "@odata.etag": eq.json.value[0]["@odata.etag"], emailaddress1: "c7@example.com", contactid: id(7) }]);
    assert.deepEqual(ids(await api.fetchXml("contacts", where(`<condition attribute="contactid" operator="eq" value="${id(4)}"/>`))), [id(4)]);

    const inIds = await api.fetchXml("contacts", where(`<condition attribute="contactid" operator="in"><value>${id(9)}</value><value>${id(3)}</value><value>${id(77)}</value></condition>`));
    assert.deepEqual(ids(inIds), [id(3), id(9)]);
    assert.deepEqual(ids(await api.fetchXml("contacts", where(`<condition attribute="numberofchildren" operator="in"><value>2</value></condition>`))), [2, 5, 8, 11].map(id));
    assert.deepEqual(ids(await api.fetchXml("contacts", where(`<condition attribute="donotbulkemail" operator="eq" value="1"/><condition attribute="numberofchildren" operator="eq" value="0"/>`))), [6, 12].map(id));

    // null, not-null; ne includes the rows where the column is null
    assert.deepEqual(ids(await api.fetchXml("contacts", where(`<condition attribute="emailaddress1" operator="null"/>`))), [5, 10].map(id));
    assert.equal((await api.fetchXml("contacts", where(`<condition attribute="emailaddress1" operator="not-null"/>`))).json.value.length, 10);
    const ne = await api.fetchXml("contacts", where(`<condition attribute="emailaddress1" operator="ne" value="c1@example.com"/>`));
    assert.equal(ne.json.value.length, 11);
    assert.ok(!ids(ne).includes(id(1)));

    // or, and a nested filter
    assert.deepEqual(ids(await api.fetchXml("contacts", where(`<condition attribute="contactid" operator="eq" value="${id(1)}"/><condition attribute="emailaddress1" operator="eq" value="c2@example.com"/>`, "or"))), [1, 2].map(id));
    const nested = where(`<condition attribute="numberofchildren" operator="eq" value="1"/><filter type="or"><condition attribute="emailaddress1" operator="null"/><condition attribute="firstname" operator="eq" value="first4"/></filter>`);
    assert.deepEqual(ids(await api.fetchXml("contacts", nested)), [4, 10].map(id));

    // order, top; count and page with Microsoft.Dynamics.CRM.morerecords
    const ordered = await api.fetchXml("contacts", q(`<order attribute="numberofchildren" descending="true"/><order attribute="firstname"/>`, ` top="4"`));
    assert.deepEqual(ids(ordered), [11, 2, 5, 8].map(id)); // numberofchildren 2: First11 < First2 < First5 < First8
    const annotations = { Prefer: 'odata.include-annotations="Microsoft.Dynamics.CRM.morerecords"' };
    const page1 = await api.fetchXml("contacts", q("", ` count="5" page="1"`), annotations);
    assert.deepEqual(ids(page1), [1, 2, 3, 4, 5].map(id));
    assert.equal(page1.json["@Microsoft.Dynamics.CRM.morerecords"], true);
    assert.equal(page1.headers.get("preference-applied"), 'odata.include-annotations="Microsoft.Dynamics.CRM.morerecords"');
    const page3 = await api.fetchXml("contacts", q("", ` count="5" page="3"`), annotations);
    assert.deepEqual(ids(page3), [11, 12].map(id));
    assert.equal(page3.json["@Microsoft.Dynamics.CRM.morerecords"], false);

    // <all-attributes/>, a lookup by its attribute name answered as _createdby_value, and
    // $count=true (sent by Microsoft's own example) accepted
    const all = await api.fetchXml("contacts", `<fetch top="1"><entity name="contact"><all-attributes/></entity></fetch>`, undefined, "&$count=true");
    assert.equal(all.status, 200, all.text);
    assert.equal(all.json.value[0].lastname, "Last1");
    assert.equal(all.json["@odata.count"], undefined);
    assert.equal((await api.post("contacts", { contactid: id(50), firstname: "Made" })).status, 204);
    const lookup = await api.fetchXml("contacts", `<fetch><entity name="contact"><attribute name="createdby"/><filter><condition attribute="contactid" operator="eq" value="${id(50)}"/></filter></entity></fetch>`);
    assert.equal(lookup.status, 200, lookup.text);
    assert.match(lookup.json.value[0]._createdby_value, /^[0-9a-f-]{36}$/);
  });
});

test("FetchXML outside the subset, and malformed FetchXML, are refused with 400 naming what is wrong", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", contacts(1, 3));
    const e = (inner, fetch = "") => `<fetch${fetch}><entity name="contact"><attribute name="firstname"/>${inner}</entity></fetch>`;
    const refused = [
      [e(`<link-entity name="account" from="accountid" to="parentcustomerid"/>`), /<link-entity>/],
      [e("", ` aggregate="true"`), /'aggregate' of <fetch>/],
      [e("", ` returntotalrecordcount="true"`), /'returntotalrecordcount'/],
      [e("", ` count="2" paging-cookie="x"`), /'paging-cookie'/],
      [e("", ` distinct="true"`), /distinct='true'/],
      [e(`<filter><condition attribute="firstname" operator="like" value="First%"/></filter>`), /operator 'like'/],
      [e(`<filter><condition attribute="firstname" operator="eq" value="x" entityname="a"/></filter>`), /'entityname' of <condition>/],
      [e(`<filter><condition attribute="firstname" operator="eq" valueof="lastname"/></filter>`), /'valueof' of <condition>/],
      [e(`<filter><condition attribute="new_syncedon" operator="eq" value="2026-01-01"/></filter>`), /DateTime column 'new_syncedon'/],
      [e(`<order attribute="firstname" alias="f"/>`), /'alias' of <order>/],
      [`<fetch><entity name="contact"><attribute name="firstname" alias="f"/></entity></fetch>`, /'alias' of <attribute>/],
      [`<fetch><entity name="contact"/></fetch>`, /without <attribute>/],
      [e("", ` datasource="retained"`), /datasource='retained'/],
      [e("", ` top="2" count="2"`), /top attribute of <fetch> cannot be used with paging/],
      [e("", ` top="5001"`), /cannot exceed 5000/],
      [e("", ` top="-1"`), /positive whole number/],
      [`<fetch><entity name="account"><attribute name="name"/></entity></fetch>`, /entity 'account'.*'contacts'/],
      [e(`<filter type="xor"/>`), /'and' or 'or'/],
      [e(`<filter><condition attribute="contactid" operator="eq" value="not-a-guid"/></filter>`), /not a GUID/],
      [e(`<filter><condition attribute="contactid" operator="in" value="${id(1)}"/></filter>`), /<value> elements/],
      [e(`<filter><condition attribute="firstname" operator="eq"/></filter>`), /needs a value/],
      [`<fetch><entity name="contact"><attribute name="firstname"/></entity>`, /not well-formed XML/],
      [`<query/>`, /root element is <fetch>/],
      ["", /empty/],
    ];
    for (const [xml, message] of refused) {
      const r = await api.fetchXml("contacts", xml);
      assert.equal(r.status, 400, `${xml}: ${r.text}`);
      assert.equal(r.json.error.code, "0x80060888", xml);
      assert.match(r.json.error.message, message, xml);
    }
    // Dataverse's message for any other datasource, as a probe of a real org reported it
    const bad = await api.fetchXml("contacts", e("", ` datasource="recyclebin"`));
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.message, "The only valid value for datasource is 'retained' or 'bin'");
    // columns by their logical names only: the Web API's _createdby_value is not one
    for (const name of ["_createdby_value", "nosuchcolumn"]) {
      const r = await api.fetchXml("contacts", `<fetch><entity name="contact"><attribute name="${name}"/></entity></fetch>`);
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(r.json.error, { code: "0x80041103", message: `'contact' entity doesn't contain attribute with Name = '${name}' and NameMapping = 'Logical'.` });
    }
    // other query options and change tracking do not go with fetchXml
    for (const [extra, headers] of [
      ["&$select=firstname", undefined],
      ["&$filter=firstname eq 'x'", undefined],
      ["&$top=1", undefined],
      ["", { Prefer: "odata.track-changes" }],
    ]) {
      const r = await api.fetchXml("contacts", e(""), headers, extra);
      assert.equal(r.status, 400, `${extra} ${JSON.stringify(headers)}: ${r.text}`);
    }
  });
});

test("with the bin off nothing is kept and a bin read finds no rows (or, with whenOff: 'error', is refused)", async () => {
  const allDeleted = `<fetch datasource="bin"><entity name="contact"><attribute name="emailaddress1"/></entity></fetch>`;
  await withServer({ recycleBin: { enabled: false } }, async ({ dv, api }) => {
    dv.seed("contact", contacts(1, 3));
    assert.equal((await api.del(`contacts(${id(1)})`)).status, 204);
    assert.deepEqual(dv.recycleBin("contact"), []);
    const r = await api.fetchXml("contacts", binById([id(1)]));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.value, []);

    // turned on: only what is deleted from then on is kept
    dv.setRecycleBin({ enabled: true });
    assert.equal((await api.del(`contacts(${id(2)})`)).status, 204);
    assert.deepEqual(ids(await api.fetchXml("contacts", allDeleted)), [id(2)]);
    // turned off again: what was kept is gone, and reads are refused with whenOff: "error"
    dv.setRecycleBin({ enabled: false, whenOff: "error" });
    assert.deepEqual(dv.recycleBin("contact"), []);
    const refused = await api.fetchXml("contacts", allDeleted);
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.error.code, "0x80060888");
    assert.match(refused.json.error.message, /recycle bin is off.*Keep deleted Dataverse records/);
    // a live FetchXML query is not concerned
    assert.equal((await api.fetchXml("contacts", `<fetch><entity name="contact"><attribute name="firstname"/></entity></fetch>`)).status, 200);
  });
  await withServer({ recycleBin: { enabled: false, whenOff: "error" } }, async ({ api }) => {
    const r = await api.fetchXml("contacts", allDeleted);
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /recycle bin is off/);
  });
  // on, but not for contacts: nothing kept, no rows
  await withServer({ recycleBin: { tables: [] } }, async ({ dv, api }) => {
    dv.seed("contact", contacts(1, 2));
    await api.del(`contacts(${id(1)})`);
    assert.deepEqual((await api.fetchXml("contacts", allDeleted)).json.value, []);
  });
  assert.throws(() => createDataverse({ tables: TABLES(), recycleBin: { tables: ["account"] } }), /account/);
  assert.throws(() => createDataverse({ tables: TABLES(), recycleBin: { retentionDays: 0 } }), /retentionDays/);
  assert.throws(() => createDataverse({ tables: TABLES(), recycleBin: { whenOff: "maybe" } }), /whenOff/);
});

test("a deleted row is kept for the retention period (30 days by default), then dropped", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", contacts(1, 3));
    await api.del(`contacts(${id(1)})`);
    dv.advanceClock(29 * DAY_MS);
    await api.del(`contacts(${id(2)})`);
    assert.deepEqual(ids(await api.fetchXml("contacts", binById([id(1), id(2)]))), [id(1), id(2)]);
    dv.advanceClock(2 * DAY_MS); // 31 days after the first deletion, 2 after the second
    assert.deepEqual(ids(await api.fetchXml("contacts", binById([id(1), id(2)]))), [id(2)]);
    assert.deepEqual(
      dv.recycleBin("contact").map((e) => e.id),
      [id(2)],
    );
  });
  await withServer({ recycleBin: { retentionDays: 2 } }, async ({ dv, api }) => {
    dv.seed("contact", contacts(1, 1));
    await api.del(`contacts(${id(1)})`);
    dv.advanceChangeTrackingClock(DAY_MS);
    assert.deepEqual(ids(await api.fetchXml("contacts", binById([id(1)]))), [id(1)]);
    dv.advanceChangeTrackingClock(1.5 * DAY_MS);
    assert.deepEqual(ids(await api.fetchXml("contacts", binById([id(1)]))), []);
  });
});

test("persistence: the bin survives a restart, with each row's deletion time; the retention still applies", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandbox-recyclebin-"));
  const file = path.join(dir, "dataverse.json");
  try {
    let deletedAt;
    await withServer({ file }, async ({ dv, api }) => {
      dv.seed("contact", contacts(1, 3));
      await api.del(`contacts(${id(2)})`);
      deletedAt = dv.recycleBin("contact")[0].deletedAt;
      await dv.flush();
      const data = JSON.parse(fs.readFileSync(file, "utf8"));
      assert.equal(data.bin.contact.length, 1);
      assert.equal(data.bin.contact[0][0], id(2));
      assert.equal(data.bin.contact[0][2].emailaddress1, "c2@example.com");
    });

    await withServer({ file }, async ({ dv, api }) => {
      const r = await api.fetchXml("contacts", binById([id(2)]));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.value.map((row) => [row.contactid, row.emailaddress1, row.firstname]), [[id(2), "c2@example.com", "First2"]]);
      assert.deepEqual(dv.recycleBin("contact").map((e) => e.deletedAt), [deletedAt]);
      await api.del(`contacts(${id(3)})`);
      dv.advanceClock(30 * DAY_MS + 60_000); // both older than 30 days
      assert.deepEqual(ids(await api.fetchXml("contacts", binById([id(2), id(3)]))), []);
      await dv.flush();
      assert.deepEqual(JSON.parse(fs.readFileSync(file, "utf8")).bin.contact, []);
    });

    // a file whose bin is not a list of [id, time, row] is refused as corrupt
    const data = JSON.parse(fs.readFileSync(file, "utf8"));
    data.bin.contact = [[id(9), "yesterday", {}]];
    fs.writeFileSync(file, JSON.stringify(data));
    assert.throws(() => createDataverse({ tables: TABLES(), file }), /recycle bin of "contact"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
