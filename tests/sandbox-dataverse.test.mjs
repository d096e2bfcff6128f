// Tests of the Dataverse Web API stand-in (sandbox/dataverse.mjs) over real HTTP with global fetch.
// Every server listens on 127.0.0.1 port 0 and is closed at the end of its test; loops are bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { WHO_AM_I, createDataverse } from "../sandbox/dataverse.mjs";
import { idOrder, mergeIds, sortIds } from "../sandbox/dataverse/util.mjs";
import { BROWSER_TOKEN, REQUEST_TIMEOUT_MS, client, withServer as withDataverseServer } from "./support/dataverse-server.mjs";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const L = (en, pl) => ({ 1033: en, 1045: pl });

const TABLES = () => ({
  contact: {
    entitySet: "contacts",
    primaryKey: "contactid",
    primaryName: "fullname",
    columns: {
      fullname: { type: "String", maxLength: 160, label: L("Full Name", "Imię i nazwisko"), readOnly: true },
      firstname: { type: "String", maxLength: 50, label: L("First Name", "Imię") },
      lastname: { type: "String", maxLength: 50, label: L("Last Name", "Nazwisko") },
      emailaddress1: { type: "String", maxLength: 100, label: L("Email", "Adres e-mail") },
      description: { type: "Memo", label: L("Description", "Opis") },
      donotbulkemail: { type: "Boolean", label: L("Do not allow Bulk Emails", "Nie zezwalaj na masowe wiadomości e-mail") },
      birthdate: { type: "DateOnly", label: L("Birthday", "Data urodzenia") },
      new_syncedon: { type: "DateTime", label: L("Synced On", "Zsynchronizowano") },
      numberofchildren: { type: "Integer", label: L("No. of Children", "Liczba dzieci") },
      preferredcontactmethodcode: {
        type: "Picklist",
        label: L("Preferred Method of Contact", "Preferowana metoda kontaktu"),
        options: [
          { value: 1, label: L("Any", "Dowolna") },
          { value: 2, label: L("Email", "E-mail") },
        ],
      },
      new_externalid: { type: "Uniqueidentifier", label: L("External Id", "Identyfikator zewnętrzny") },
    },
    computed: { fullname: (row) => [row.firstname, row.lastname].filter(Boolean).join(" ") || null },
  },
  new_salesmanagointegration: {
    entitySet: "new_salesmanagointegrations",
    primaryKey: "new_salesmanagointegrationid",
    primaryName: "new_name",
    columns: { new_name: { type: "String", maxLength: 100, label: L("Name", "Nazwa") } },
  },
});

/** The stand-in of this file's tables behind an HTTP server (tests/support/dataverse-server.mjs). */
function withServer(options, fn) {
  return withDataverseServer(TABLES(), options, fn);
}

/** GET of a collection; returns the ids, asserting 200. */
async function ids(api, query) {
  const r = await api.get(`contacts?$select=contactid&${query}`);
  assert.equal(r.status, 200, `${query}: ${r.text}`);
  return r.json.value.map((row) => row.contactid);
}

const id = (n) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

/** Ten varied contacts with known ids id(1)…id(10). */
function sampleContacts() {
  return [
    { contactid: id(1), firstname: "Anna", lastname: "Kowalska", emailaddress1: "anna@example.com", numberofchildren: 0, donotbulkemail: false, birthdate: "1980-05-01", new_syncedon: "2024-01-01T10:00:00Z", preferredcontactmethodcode: 1 },
    { contactid: id(2), firstname: "Jan", lastname: "Nowak", emailaddress1: "JAN@EXAMPLE.COM", numberofchildren: 2, donotbulkemail: true, birthdate: "1975-12-31", new_syncedon: "2024-02-01T10:00:00Z", preferredcontactmethodcode: 2 },
    { contactid: id(3), firstname: "Piotr", lastname: "O'Brien", emailaddress1: null, numberofchildren: 1, donotbulkemail: false, birthdate: null, new_syncedon: null },
    { contactid: id(4), firstname: "Zofia", lastname: "Nowak", emailaddress1: "zofia@example.org", numberofchildren: 3, donotbulkemail: null, birthdate: "2000-01-01", new_syncedon: "2023-12-31T23:59:59Z" },
    { contactid: id(5), firstname: "Emma", lastname: "Smith", emailaddress1: "emma.smith@example.co.uk", numberofchildren: null, donotbulkemail: true, birthdate: "1990-06-15", new_externalid: "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE" },
    { contactid: id(6), firstname: "Łukasz", lastname: "Wójcik", emailaddress1: "lukasz@example.com", numberofchildren: 5, donotbulkemail: false, description: "likes 100% cotton" },
    { contactid: id(7), firstname: null, lastname: "Nobody", emailaddress1: "nobody@example.net", numberofchildren: 0 },
  ];
}

// ---------------------------------------------------------------------------------------------

test("handle answers only under /api/data/v9.2/, with OData headers; WhoAmI and unknown segments", async () => {
  await withServer({}, async ({ origin, api }) => {
    const other = await fetch(`${origin}/contacts`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    assert.equal(other.status, 404);
    assert.equal(await other.text(), "not the API");
    const noSlash = await fetch(`${origin}/api/data/v9.2`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    assert.equal(await noSlash.text(), "not the API");

    const who = await api.get("WhoAmI");
    assert.equal(who.status, 200);
    assert.equal(who.headers.get("content-type"), "application/json; odata.metadata=minimal");
    assert.equal(who.headers.get("odata-version"), "4.0");
    assert.match(who.json.UserId, GUID);
    assert.match(who.json.BusinessUnitId, GUID);
    assert.match(who.json.OrganizationId, GUID);
    assert.deepEqual((await api.get("WhoAmI()")).json.UserId, who.json.UserId);
    assert.equal((await api.post("WhoAmI", {})).status, 405);

    const unknown = await api.get("accounts");
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error.code, /^0x[0-9a-f]{8}$/);
    assert.match(unknown.json.error.message, /accounts/);
    const put = await api.call("PUT", "contacts", { body: {} });
    assert.equal(put.status, 405);
    assert.ok(put.json.error.message.includes("PUT"));
    const badKey = await api.get("contacts(not-a-guid)");
    assert.equal(badKey.status, 400);
    assert.ok(badKey.json.error);
  });
});

test("create, read, update and delete, with etags, 404s and Dataverse error shapes", async () => {
  await withServer({}, async ({ dv, api }) => {
    const created = await api.post("contacts", { firstname: "Anna", lastname: "Kowalska", emailaddress1: "anna@example.com" });
    assert.equal(created.status, 204);
    assert.equal(created.text, "");
    const entityId = created.headers.get("odata-entityid");
    const m = /\/api\/data\/v9\.2\/contacts\(([0-9a-f-]{36})\)$/.exec(entityId);
    assert.ok(m, entityId);
    assert.ok(entityId.startsWith(api.base));
    const newId = m[1];
    assert.match(newId, GUID);

    const read = await api.get(entityId);
    assert.equal(read.status, 200);
    assert.equal(read.json.contactid, newId);
    assert.equal(read.json.fullname, "Anna Kowalska"); // computed
    assert.equal(read.json.birthdate, null); // unset columns are null
    assert.match(read.json.createdon, ISO_Z);
    assert.equal(read.json.modifiedon, read.json.createdon);
    assert.match(read.json["@odata.etag"], /^W\/"\d+"$/);
    assert.equal(read.json["@odata.context"], `${api.base}$metadata#contacts/$entity`);

    const selected = await api.get(`contacts(${newId})?$select=emailaddress1,birthdate`);
    assert.deepEqual(Object.keys(selected.json).sort(), ["@odata.context", "@odata.etag", "birthdate", "contactid", "emailaddress1"]);
    assert.equal(selected.json.birthdate, null);
    assert.equal(selected.json["@odata.context"], `${api.base}$metadata#contacts(emailaddress1,birthdate)/$entity`);

    await new Promise((resolve) => setTimeout(resolve, 1050)); // modifiedon has whole seconds
    const updated = await api.patch(`contacts(${newId})`, { lastname: "Nowak", numberofchildren: 2 }, { "If-Match": "*" });
    assert.equal(updated.status, 204);
    const after = (await api.get(`contacts(${newId})`)).json;
    assert.equal(after.fullname, "Anna Nowak");
    assert.equal(after.numberofchildren, 2);
    assert.notEqual(after["@odata.etag"], read.json["@odata.etag"]);
    assert.ok(after.modifiedon > after.createdon, `${after.modifiedon} > ${after.createdon}`);
    assert.equal(after.createdon, read.json.createdon);

    const stale = await api.patch(`contacts(${newId})`, { lastname: "X" }, { "If-Match": read.json["@odata.etag"] });
    assert.equal(stale.status, 412);
    assert.equal(stale.json.error.code, "0x80060882");
    const current = await api.patch(`contacts(${newId})`, { lastname: "Y" }, { "If-Match": after["@odata.etag"] });
    assert.equal(current.status, 204);

    const tag = (await api.get(`contacts(${newId})`)).json["@odata.etag"];
    assert.equal((await api.get(`contacts(${newId})`, { "If-None-Match": tag })).status, 304);
    // never with annotations ("Perform conditional operations using the Web API")
    const annotated = await api.get(`contacts(${newId})`, { "If-None-Match": tag, Prefer: 'odata.include-annotations="*"' });
    assert.equal(annotated.status, 200, annotated.text);
    assert.equal(annotated.json["@odata.etag"], tag);
    const property = await api.get(`contacts(${newId})/lastname`);
    assert.deepEqual(property.json.value, "Y");
    assert.equal((await api.call("PUT", `contacts(${newId})/emailaddress1`, { body: { value: "put@example.com" } })).status, 204);
    assert.equal((await api.get(`contacts(${newId})/emailaddress1`)).json.value, "put@example.com");
    assert.equal((await api.del(`contacts(${newId})/emailaddress1`)).status, 204);
    assert.equal((await api.get(`contacts(${newId})/emailaddress1`)).status, 204, "a null property has no content");
    assert.equal((await api.get(`contacts(${newId})/nickname`)).status, 404);
    const service = await api.get("");
    assert.deepEqual(
      service.json.value.map((e) => e.name).sort(),
      ["contacts", "new_salesmanagointegrations"],
    );

    const missingId = "11111111-2222-4333-8444-555555555555";
    const notFound = await api.get(`contacts(${missingId})`);
    assert.equal(notFound.status, 404);
    assert.deepEqual(notFound.json, { error: { code: "0x80040217", message: `contact With Id = ${missingId} Does Not Exist` } });
    assert.equal((await api.patch(`contacts(${missingId})`, { lastname: "X" }, { "If-Match": "*" })).status, 404);
    assert.equal((await api.del(`contacts(${missingId})`)).json.error.code, "0x80040217");

    const rep = await api.post("contacts?$select=fullname", { firstname: "Jan", contactid: "ABCDEF01-0000-4000-8000-000000000001" }, { Prefer: "return=representation" });
    assert.equal(rep.status, 201);
    assert.equal(rep.headers.get("preference-applied"), "return=representation");
    assert.equal(rep.json.contactid, "abcdef01-0000-4000-8000-000000000001");
    assert.equal(rep.json.fullname, "Jan");
    assert.ok(!("emailaddress1" in rep.json));
    const duplicate = await api.post("contacts", { contactid: "abcdef01-0000-4000-8000-000000000001" });
    assert.equal(duplicate.status, 412);
    assert.equal(duplicate.json.error.code, "0x80040237");

    assert.equal(dv.rows("contact").length, 2);
    assert.equal((await api.del(`contacts(${newId})`)).status, 204);
    assert.equal((await api.get(`contacts(${newId})`)).status, 404);
    assert.equal((await api.del(`contacts(${newId})`)).status, 404);
    assert.deepEqual(
      dv.rows("contact").map((r) => r.contactid),
      ["abcdef01-0000-4000-8000-000000000001"],
    );

    const stats = dv.stats();
    assert.equal(stats.byMethod.DELETE, 4);
    assert.equal(stats.byMethod.PATCH, 4);
    assert.equal(stats.byMethod.PUT, 1);
    assert.ok(stats.requests >= 24);
    dv.resetStats();
    assert.equal(dv.stats().requests, 0);
  });
});

test("writes are checked: unknown columns, types, lengths, options, JSON", async () => {
  await withServer({}, async ({ dv, api }) => {
    const unknown = await api.post("contacts", { firstname: "A", nickname: "B" });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.code, "0x80060888");
    assert.match(unknown.json.error.message, /'nickname'.*Microsoft\.Dynamics\.CRM\.contact/);

    const bad = [
      { firstname: 5 },
      { numberofchildren: "2" },
      { numberofchildren: 1.5 },
      { donotbulkemail: "true" },
      { birthdate: "01/02/2000" },
      { birthdate: "2023-02-30" },
      { new_syncedon: 12345 },
      { new_externalid: "not-a-guid" },
      { firstname: "x".repeat(51) },
      { preferredcontactmethodcode: 9 },
      { description: { nested: true } },
    ];
    for (const body of bad) {
      const r = await api.post("contacts", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(r.json.error.code && r.json.error.message.length > 10, r.text);
    }
    const tooLong = await api.post("contacts", { firstname: "x".repeat(51) });
    assert.match(tooLong.json.error.message, /firstname.*50/);
    const wrongType = await api.post("contacts", { numberofchildren: "2" });
    assert.match(wrongType.json.error.message, /Edm\.Int32/);

    assert.throws(() => dv.seed("contact", [{ nickname: "x" }]), /row 0.*nickname/);
    assert.throws(() => dv.seed("contact", [{ contactid: id(1) }, { contactid: id(1) }]), /repeats/);
    assert.throws(() => dv.rows("account"), /unknown table 'account'/);
    assert.equal((await api.post("contacts", "{not json")).status, 400);
    assert.equal((await api.post("contacts", "[1,2]")).status, 400);

    const ok = await api.post(
      "contacts",
      {
        "@odata.type": "Microsoft.Dynamics.CRM.contact",
        firstname: "x".repeat(50),
        numberofchildren: null,
        birthdate: "2000-02-29",
        new_syncedon: "2024-03-01T12:30:00+02:00",
        new_externalid: "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE",
        fullname: "ignored, computed",
        createdon: "2001-01-01T00:00:00Z",
      },
      { Prefer: "return=representation" },
    );
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.new_syncedon, "2024-03-01T10:30:00Z");
    assert.equal(ok.json.new_externalid, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
    assert.equal(ok.json.fullname, "x".repeat(50));
    assert.notEqual(ok.json.createdon, "2001-01-01T00:00:00Z");
  });
});

test("$select errors and collection basics", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    const unknown = await api.get("contacts?$select=fullname,nickname");
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.json, { error: { code: "0x80060888", message: "Could not find a property named 'nickname' on type 'Microsoft.Dynamics.CRM.contact'." } });
    assert.equal((await api.get(`contacts(${id(1)})?$select=nope`)).status, 400);

    const all = await api.get("contacts");
    assert.equal(all.status, 200);
    assert.equal(all.json["@odata.context"], `${api.base}$metadata#contacts`);
    assert.equal(all.json.value.length, 7);
    assert.equal(all.json["@odata.nextLink"], undefined);
    assert.ok("description" in all.json.value[0] && "createdon" in all.json.value[0]);

    const some = await api.get("contacts?$select=emailaddress1");
    assert.equal(some.json["@odata.context"], `${api.base}$metadata#contacts(emailaddress1)`);
    const row3 = some.json.value.find((r) => r.contactid === id(3));
    assert.deepEqual(Object.keys(row3).sort(), ["@odata.etag", "contactid", "emailaddress1"]);
    assert.equal(row3.emailaddress1, null);

    assert.equal((await api.get("contacts?$skip=2")).status, 400);
    // Not served: refused by name (501), never "no such property".
    const expanded = await api.get("contacts?$expand=parentcustomerid($select=name)");
    assert.equal(expanded.status, 501);
    assert.match(expanded.json.error.message, /^The sandbox does not support \$expand of 'parentcustomerid\(\$select=name\)' on contacts/);
    // The user lookups every row has expand ("Join tables using OData"), with $select inside.
    const made = await api.post("contacts", { firstname: "Ex" }, { Prefer: "return=representation" });
    const joined = await api.get(`contacts(${made.json.contactid})?$select=firstname&$expand=createdby($select=fullname),ownerid`);
    assert.equal(joined.status, 200, joined.text);
    assert.deepEqual(joined.json.createdby, { fullname: "Sandbox User", systemuserid: "00000000-0000-0000-0000-0000000000aa" });
    assert.equal(joined.json.ownerid.fullname, "Sandbox User");
    const list = await api.get(`contacts?$select=firstname&$filter=firstname eq 'Ex'&$expand=modifiedby($select=fullname)`);
    assert.equal(list.json.value[0].modifiedby.fullname, "Sandbox User");
    assert.equal((await api.get("contacts?$expand=createdby($select=fullname;$expand=x)")).status, 501, "nested options refused by name");
    assert.equal((await api.get("contacts?$top=-1")).status, 400);
    assert.equal((await api.get("contacts?$select=fullname&$select=lastname")).status, 400);

    const annotated = await api.get(`contacts(${id(2)})?$select=preferredcontactmethodcode,donotbulkemail`, {
      Prefer: 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"',
      "X-Sandbox-Lcid": "1045",
    });
    assert.equal(annotated.json["preferredcontactmethodcode@OData.Community.Display.V1.FormattedValue"], "E-mail");
    assert.equal(annotated.json["donotbulkemail@OData.Community.Display.V1.FormattedValue"], "Tak");
  });
});

test("$filter: comparison operators, null, booleans, dates, guids and string collation", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    const q = async (filter) => (await ids(api, `$filter=${encodeURIComponent(filter)}`)).sort();
    const n = (...list) => list.map(id).sort();

    assert.deepEqual(await q("lastname eq 'nowak'"), n(2, 4), "eq is case-insensitive");
    assert.deepEqual(await q("emailaddress1 eq 'jan@example.com'"), n(2));
    assert.deepEqual(await q("lastname ne 'Nowak'"), n(1, 3, 5, 6, 7));
    assert.deepEqual(await q("numberofchildren ne 0"), n(2, 3, 4, 5, 6), "ne includes null, as Dataverse does");
    assert.deepEqual(await q("numberofchildren gt 1"), n(2, 4, 6));
    assert.deepEqual(await q("numberofchildren ge 1"), n(2, 3, 4, 6));
    assert.deepEqual(await q("numberofchildren lt 1"), n(1, 7));
    assert.deepEqual(await q("numberofchildren le 1"), n(1, 3, 7));
    assert.deepEqual(await q("numberofchildren eq null"), n(5));
    assert.deepEqual(await q("emailaddress1 ne null"), n(1, 2, 4, 5, 6, 7));
    assert.deepEqual(await q("null eq emailaddress1"), n(3));
    assert.deepEqual(await q("donotbulkemail eq true"), n(2, 5));
    assert.deepEqual(await q("donotbulkemail eq false"), n(1, 3, 6));
    assert.deepEqual(await q("donotbulkemail"), n(2, 5), "a boolean column is a predicate");
    assert.deepEqual(await q("new_syncedon gt 2024-01-01T10:00:00Z"), n(2));
    assert.deepEqual(await q("new_syncedon ge 2024-01-01T10:00:00Z"), n(1, 2));
    assert.deepEqual(await q("new_syncedon lt 2024-01-01T11:00:00+01:00"), n(4), "zone offsets are honoured");
    assert.deepEqual(await q("birthdate lt 1980-05-02"), n(1, 2));
    assert.deepEqual(await q("birthdate le 1975-12-31"), n(2));
    assert.deepEqual(await q(`contactid eq ${id(3).toUpperCase()}`), n(3));
    assert.deepEqual(await q("new_externalid eq aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"), n(5));
    assert.deepEqual(await q("lastname eq 'O''Brien'"), n(3), "quoted quotes");
    assert.deepEqual(await q("firstname eq 'łukasz'"), n(6));
    // Dataverse's default collation is accent-insensitive too, and `eq` ignores trailing spaces.
    assert.deepEqual(await q("lastname eq 'wojcik'"), n(6), "accents are ignored");
    assert.deepEqual(await q("lastname eq 'WÓJCIK   '"), n(6), "trailing spaces are ignored");
    assert.deepEqual(await q("startswith(lastname,'woj')"), n(6));
    // contains/startswith/endswith are SQL Server's LIKE: %, _, [set] and [^set] are wildcards,
    // a wildcard in brackets is itself ("Use wildcard characters in conditions for string values").
    assert.deepEqual(await q("contains(description,'0%c')"), n(6), "% is any run");
    assert.deepEqual(await q("contains(description,'100[%]')"), n(6), "[%] is a percent sign");
    assert.deepEqual(await q("contains(description,'100[%]x')"), []);
    assert.deepEqual(await q("startswith(emailaddress1,'_nna')"), n(1), "_ is any one character");
    assert.deepEqual(await q("endswith(emailaddress1,'example.co_')"), n(1, 2, 6));
    assert.deepEqual(await q("contains(emailaddress1,'[_]')"), [], "[_] is an underscore, and no e-mail has one");
    assert.deepEqual(await q("startswith(lastname,'[kn]')"), n(1, 2, 4, 7), "a set");
    assert.deepEqual(await q("startswith(lastname,'[^a-n]')"), n(3, 5, 6), "not in a range");
    assert.deepEqual(await q("contains(lastname,'.')"), [], "anything else is itself");
    assert.deepEqual(await q("Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['Wojcik','Smith'])"), n(5, 6));
    // PropertyValues is JSON ("Filter rows using OData", "Manage single quotes"): a value with a
    // quote goes in double quotes; an OData literal's doubled quote is "Invalid JSON".
    assert.deepEqual(await q(`Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=["O'Brien","Smith"])`), n(3, 5));
    const doubled = await api.get(`contacts?$filter=${encodeURIComponent("Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['O''Brien'])")}`);
    assert.equal(doubled.status, 400);
    assert.match(doubled.json.error.message, /^Invalid JSON\. A comma character ',' was expected in scope 'Array'/);
    assert.equal((await api.get(`contacts?$filter=${encodeURIComponent('lastname eq "Smith"')}`)).status, 400, "a JSON string is no OData literal");
    assert.deepEqual(await q("preferredcontactmethodcode eq 2"), n(2));
    assert.deepEqual(await q("lastname gt 'Smith'"), n(6));
  });
});

test("$filter: functions, and/or/not precedence, parentheses and errors", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    const q = async (filter) => (await ids(api, `$filter=${encodeURIComponent(filter)}`)).sort();
    const n = (...list) => list.map(id).sort();

    assert.deepEqual(await q("contains(emailaddress1,'EXAMPLE.COM')"), n(1, 2, 6));
    assert.deepEqual(await q("startswith(lastname,'no')"), n(2, 4, 7));
    assert.deepEqual(await q("endswith(emailaddress1,'.ORG')"), n(4));
    assert.deepEqual(await q("contains(lastname,'''')"), n(3));
    assert.deepEqual(await q("contains(description,'100%')"), n(6));
    assert.deepEqual(await q("not contains(emailaddress1,'example.com')"), n(3, 4, 5, 7));
    // and binds tighter than or
    assert.deepEqual(await q("lastname eq 'Smith' or lastname eq 'Nowak' and firstname eq 'Jan'"), n(2, 5));
    assert.deepEqual(await q("(lastname eq 'Smith' or lastname eq 'Nowak') and firstname eq 'Jan'"), n(2));
    assert.deepEqual(await q("firstname eq 'Jan' and lastname eq 'Nowak' or lastname eq 'Smith'"), n(2, 5));
    // not binds tighter than and/or
    assert.deepEqual(await q("not (lastname eq 'Nowak') and numberofchildren ge 1"), n(3, 6));
    assert.deepEqual(await q("not (lastname eq 'Nowak' or numberofchildren eq 0)"), n(3, 5, 6));
    assert.deepEqual(await q("not donotbulkemail and numberofchildren eq 0"), n(1, 7));
    assert.deepEqual(await q("not not donotbulkemail"), n(2, 5));
    assert.deepEqual(await q("((numberofchildren eq 1))"), n(3));
    assert.deepEqual(await q("Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['nowak','SMITH'])"), n(2, 4, 5));
    assert.deepEqual(await q("Microsoft.Dynamics.CRM.In(PropertyName='numberofchildren',PropertyValues=['0','5'])"), n(1, 6, 7));

    const errors = [
      ["lastname eq", /Syntax error/],
      ["lastname eq 'open", /unterminated/],
      ["(lastname eq 'a'", /Syntax error/],
      ["lastname eq 'a')", /Syntax error/],
      ["nickname eq 'a'", /Could not find a property named 'nickname'/],
      ["numberofchildren eq 'two'", /incompatible types/],
      ["not numberofchildren eq 1", /unary operator/],
      ["contains(numberofchildren,'1')", /contains/],
      ["tolower(lastname) eq 'a'", /not supported/],
      ["lastname", /boolean/],
      ["lastname eq 'a' and", /Syntax error/],
      ["lastname eq 'a' xor firstname eq 'b'", /Syntax error/],
      ["", /empty/],
      ["lastname eq 'a' # 1", /Syntax error/],
    ];
    for (const [filter, message] of errors) {
      const r = await api.get(`contacts?$filter=${encodeURIComponent(filter)}`);
      assert.equal(r.status, 400, filter);
      assert.equal(r.json.error.code, "0x80060888", filter);
      assert.match(r.json.error.message, message, filter);
    }
    // Dataverse's own query functions the sandbox lacks: 501, by name, never all rows.
    for (const filter of ["Microsoft.Dynamics.CRM.LastXDays(PropertyName='new_syncedon',PropertyValue=7)", "Microsoft.Dynamics.CRM.Today(PropertyName='birthdate')"]) {
      const r = await api.get(`contacts?$filter=${encodeURIComponent(filter)}`);
      assert.equal(r.status, 501, filter);
      assert.match(r.json.error.message, new RegExp(`^The sandbox does not support the query function ${filter.split("(")[0].replace(/\./g, "\\.")}`), filter);
    }
  });
});

test("$filter In: read through an index that follows every write, paged and combined with and", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", Array.from({ length: 300 }, (_, i) => ({ firstname: `F${i}`, lastname: `L${i % 7}`, numberofchildren: i % 3 })));
    const filter = "Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['l1','L2']) and numberofchildren eq 0";
    const expected = () =>
      dv
        .rows("contact")
        .filter((r) => ["l1", "l2"].includes(r.lastname.toLowerCase()) && r.numberofchildren === 0)
        .map((r) => r.contactid)
        .sort((a, b) => (idOrder(a) < idOrder(b) ? -1 : 1));
    const read = async () => {
      const seen = [];
      let url = `contacts?$select=contactid&$filter=${encodeURIComponent(filter)}&$count=true`;
      for (let pages = 0; url && pages < 100; pages++) {
        const r = await api.get(url, { Prefer: "odata.maxpagesize=10" });
        assert.equal(r.status, 200);
        assert.equal(r.json["@odata.count"], expected().length);
        seen.push(...r.json.value.map((row) => row.contactid));
        url = r.json["@odata.nextLink"];
      }
      return seen;
    };
    const before = expected();
    assert.equal(before.length, 28, "rows 21k + 9 and 21k + 15 of 300");
    assert.deepEqual(await read(), before, "every match once, in key order, across pages");

    // A row leaves the set, another joins it, one is created and one deleted: each next read sees it.
    const joining = dv.rows("contact").find((r) => r.lastname === "L3" && r.numberofchildren === 0).contactid;
    const writes = [
      () => api.patch(`contacts(${before[0]})`, { lastname: "L5" }),
      () => api.patch(`contacts(${joining})`, { lastname: "l2" }),
      () => api.post("contacts", { firstname: "New", lastname: "L1", numberofchildren: 0 }),
      () => api.del(`contacts(${before[1]})`),
    ];
    for (const write of writes) {
      assert.equal((await write()).status, 204);
      assert.deepEqual(await read(), expected());
    }
    const after = expected();
    assert.equal(after.length, before.length);
    assert.ok(!after.includes(before[0]) && !after.includes(before[1]) && after.includes(joining));
  });
});

test("ids are ordered and compared as SQL Server orders uniqueidentifier, and a range of them is sought", async () => {
  await withServer({}, async ({ dv, api }) => {
    // The text's order is not the database's: the last group counts most, the first group's
    // last byte before its first (.NET's SqlGuid.Compare; learn.microsoft.com, "Comparing GUID
    // and uniqueidentifier Values").
    const ids = ["ff000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002", "000000ff-0000-0000-0000-000000000002", "01000000-0000-0000-0000-000000000002", "00000000-0000-0000-0001-000000000002"];
    dv.seed("contact", ids.map((contactid, i) => ({ contactid, firstname: `F${i}` })));
    const order = [ids[0], ids[1], ids[3], ids[2], ids[4]];
    assert.deepEqual(sortIds(ids), order);
    const read = async (filter) => {
      const q = filter ? `&$filter=${encodeURIComponent(filter)}` : "";
      const r = await api.get(`contacts?$select=contactid&$orderby=contactid asc${q}`);
      assert.equal(r.status, 200, r.text);
      return r.json.value.map((row) => row.contactid);
    };
    assert.deepEqual(await read(), order);
    assert.deepEqual(await read(`contactid gt ${ids[0]}`), order.slice(1));
    assert.deepEqual(await read(`contactid gt ${ids[1]} and contactid le ${ids[2]}`), [ids[3], ids[2]]);
    assert.deepEqual(await read(`(firstname ne null) and contactid ge ${ids[3]} and contactid lt ${ids[4]}`), [ids[3], ids[2]]);
    assert.deepEqual(await read(`contactid lt ${ids[3]} or contactid gt ${ids[2]}`), [ids[0], ids[1], ids[4]]);
    assert.deepEqual(await read(`not (contactid gt ${ids[3]})`), [ids[0], ids[1], ids[3]], "a range under `not` is not sought");
    assert.deepEqual(await read(`contactid gt ${ids[2]} and contactid le ${ids[3]}`), [], "an empty range");
    // New rows get ids as Dataverse makes them: sequential in that order, not the text's.
    const made = [];
    for (let i = 0; i < 300; i++) made.push((await api.post("contacts", { firstname: `N${i}` })).headers.get("odata-entityid").match(/\(([^)]+)\)/)[1]);
    assert.deepEqual(sortIds(made), made, "in the order they were made");
    assert.notDeepEqual([...made].sort(), made, "which is not the text's");
  });
});

test("$orderby, $top and $count", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    assert.deepEqual(await ids(api, "$orderby=lastname desc,firstname asc"), [id(6), id(5), id(3), id(2), id(4), id(7), id(1)]);
    assert.deepEqual(await ids(api, "$orderby=lastname desc,firstname desc"), [id(6), id(5), id(3), id(4), id(2), id(7), id(1)]);
    assert.deepEqual(await ids(api, "$orderby=numberofchildren,contactid desc"), [id(5), id(7), id(1), id(3), id(2), id(4), id(6)], "nulls first");
    assert.deepEqual(await ids(api, "$orderby=numberofchildren desc"), [id(6), id(4), id(2), id(3), id(1), id(7), id(5)], "ties by primary key");
    assert.deepEqual(await ids(api, "$orderby=contactid desc&$top=3"), [id(7), id(6), id(5)]);
    assert.deepEqual(await ids(api, "$filter=numberofchildren ge 1&$orderby=numberofchildren&$top=2"), [id(3), id(2)]);
    assert.deepEqual(await ids(api, "$top=0"), []);
    assert.equal((await api.get("contacts?$orderby=nickname")).status, 400);
    assert.equal((await api.get("contacts?$orderby=lastname sideways")).status, 400);

    const counted = await api.get("contacts?$select=contactid&$count=true&$top=2&$filter=numberofchildren ge 0");
    assert.equal(counted.json["@odata.count"], 6);
    assert.equal(counted.json.value.length, 2);
    assert.equal((await api.get("contacts?$count=true")).json["@odata.count"], 7);
    assert.equal((await api.get("contacts")).json["@odata.count"], undefined);
  });
});

test("paging with odata.maxpagesize through @odata.nextLink: 2,500 rows, no duplicate, no gap", async () => {
  await withServer({}, async ({ dv, api }) => {
    const rows = [];
    for (let i = 0; i < 2500; i++) rows.push({ firstname: `F${i % 7}`, lastname: `L${String(i % 13).padStart(2, "0")}`, numberofchildren: i % 10, emailaddress1: i % 5 === 0 ? null : `c${i}@example.com` });
    dv.seed("contact", rows);
    const all = dv.rows("contact");
    assert.equal(all.length, 2500);
    assert.ok(all.every((r) => GUID.test(r.contactid) && ISO_Z.test(r.createdon)));

    async function walk(first, expectedPages, pageSize = 1000) {
      const seen = [];
      let url = first;
      let pages = 0;
      for (let guard = 0; url && guard < 50; guard++) {
        const r = await api.get(url, { Prefer: `odata.maxpagesize=${pageSize}` });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get("preference-applied"), `odata.maxpagesize=${pageSize}`);
        assert.ok(r.json.value.length <= pageSize);
        seen.push(...r.json.value);
        pages++;
        url = r.json["@odata.nextLink"];
        if (url) assert.ok(url.startsWith(api.base), url);
      }
      assert.equal(pages, expectedPages);
      return seen;
    }

    // primary-key order
    const byKey = await walk("contacts?$select=contactid,lastname", 3);
    assert.equal(byKey.length, 2500);
    assert.equal(new Set(byKey.map((r) => r.contactid)).size, 2500);
    assert.deepEqual(
      byKey.map((r) => r.contactid),
      sortIds(all.map((r) => r.contactid)),
    );

    // descending key order
    const desc = await walk("contacts?$select=contactid&$orderby=contactid desc", 3);
    assert.deepEqual(
      desc.map((r) => r.contactid),
      sortIds(all.map((r) => r.contactid)).reverse(),
    );

    // a filter and an order with many ties, as a consistent sequence
    const filter = encodeURIComponent("emailaddress1 ne null and numberofchildren lt 8");
    const sorted = await walk(`contacts?$select=contactid,lastname,numberofchildren&$filter=${filter}&$orderby=lastname desc,numberofchildren&$count=true`, 2);
    const expected = all
      .filter((r) => r.emailaddress1 !== null && r.numberofchildren < 8)
      .sort((a, b) => (a.lastname < b.lastname ? 1 : a.lastname > b.lastname ? -1 : a.numberofchildren - b.numberofchildren || (idOrder(a.contactid) < idOrder(b.contactid) ? -1 : 1)));
    assert.equal(expected.length, 1500);
    assert.deepEqual(
      sorted.map((r) => r.contactid),
      expected.map((r) => r.contactid),
    );

    // $top alone caps the rows; with a page size, $top is ignored ("Page results": "Don't use $top
    // with the Prefer: odata.maxpagesize request header. If you include both, $top is ignored.");
    // $count is on every page
    const capped = await api.get("contacts?$select=contactid&$top=1500&$count=true");
    assert.equal(capped.json.value.length, 1500);
    assert.equal(capped.json["@odata.nextLink"], undefined);
    const first = await api.get("contacts?$select=contactid&$top=1500&$count=true", { Prefer: "odata.maxpagesize=1000" });
    assert.equal(first.json.value.length, 1000);
    assert.equal(first.json["@odata.count"], 2500);
    const pages = [first.json];
    while (pages.at(-1)["@odata.nextLink"] && pages.length < 10) {
      const next = await api.get(pages.at(-1)["@odata.nextLink"], { Prefer: "odata.maxpagesize=1000" });
      assert.equal(next.json["@odata.count"], 2500);
      pages.push(next.json);
    }
    const every = pages.flatMap((p) => p.value.map((r) => r.contactid));
    assert.deepEqual([pages.length, every.length, new Set(every).size], [3, 2500, 2500]);

    // a row inserted between pages does not shift the sequence
    const p1 = await api.get("contacts?$select=contactid", { Prefer: "odata.maxpagesize=1000" });
    await api.post("contacts", { contactid: "00000000-0000-4000-8000-000000000000", firstname: "Early" });
    const p2 = await api.get(p1.json["@odata.nextLink"], { Prefer: "odata.maxpagesize=1000" });
    assert.ok(p2.json.value[0].contactid > p1.json.value[999].contactid);

    // the default page size is 5000 and the skip token is checked
    assert.equal((await api.get("contacts?$select=contactid")).json.value.length, 2501);
    assert.equal((await api.get("contacts?$skiptoken=garbage")).status, 400);
  });
});

// ---------------------------------------------------------------------------------------------
// $batch

function batchBody(boundary, items) {
  let out = "";
  const request = ({ method, url, body, headers = {}, contentId }) => {
    let part = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n";
    if (contentId) part += `Content-ID: ${contentId}\r\n`;
    part += `\r\n${method} ${url} HTTP/1.1\r\n`;
    const all = { ...headers };
    if (body !== undefined) all["Content-Type"] = "application/json; type=entry";
    for (const [k, v] of Object.entries(all)) part += `${k}: ${v}\r\n`;
    part += `\r\n${body !== undefined ? JSON.stringify(body) : ""}\r\n`;
    return part;
  };
  for (const item of items) {
    if (Array.isArray(item)) {
      const cs = `changeset_${Math.random().toString(16).slice(2)}`;
      out += `--${boundary}\r\nContent-Type: multipart/mixed; boundary=${cs}\r\n\r\n`;
      for (const r of item) out += `--${cs}\r\n${request(r)}`;
      out += `--${cs}--\r\n`;
    } else {
      out += `--${boundary}\r\n${request(item)}`;
    }
  }
  return `${out}--${boundary}--\r\n`;
}

/** Parses a batch response into [{status, headers, body, contentId} | {changeset: [...]}]. */
function parseBatchResponse(contentType, text) {
  const boundary = /boundary=([^;]+)/.exec(contentType)[1];
  const split = (body, b) => {
    const chunks = body.split(`--${b}`);
    assert.ok(chunks[chunks.length - 1].startsWith("--"), "closing delimiter");
    return chunks.slice(1, -1).map((c) => c.replace(/^\r\n/, ""));
  };
  const parsePart = (chunk) => {
    const [mime, ...rest] = chunk.split("\r\n\r\n");
    const mimeHeaders = Object.fromEntries(mime.split("\r\n").map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
    const inner = rest.join("\r\n\r\n");
    if (mimeHeaders["content-type"].startsWith("multipart/mixed")) {
      const b = /boundary=([^;]+)/.exec(mimeHeaders["content-type"])[1];
      assert.match(b, /^changesetresponse_/);
      return { changeset: split(inner, b).map(parsePart) };
    }
    assert.equal(mimeHeaders["content-type"], "application/http");
    assert.equal(mimeHeaders["content-transfer-encoding"], "binary");
    const [head, ...bodyParts] = inner.split("\r\n\r\n");
    const [statusLine, ...headerLines] = head.split("\r\n");
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)[1]);
    const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
    const body = bodyParts.join("\r\n\r\n").trim();
    return { status, headers, body: body ? JSON.parse(body) : null, contentId: mimeHeaders["content-id"] };
  };
  return split(text, boundary).map(parsePart);
}

/** Posts a `$batch` of `items`; its parts, answered with `status` (400: stopped at a failure). */
async function postBatch(api, items, headers = {}, status = 200) {
  const boundary = `batch_${Math.random().toString(16).slice(2)}`;
  const r = await api.call("POST", "$batch", { body: batchBody(boundary, items), headers: { "Content-Type": `multipart/mixed; boundary=${boundary}`, ...headers } });
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get("content-type"), /^multipart\/mixed; boundary=batchresponse_[0-9a-f-]{36}$/);
  return { parts: parseBatchResponse(r.headers.get("content-type"), r.text), headers: r.headers };
}

test("$batch: a change set that succeeds, with Content-ID references and absolute URLs", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    dv.resetStats();
    const { parts } = await postBatch(api, [
      { method: "GET", url: `${api.base}contacts(${id(1)})?$select=firstname` },
      [
        { method: "POST", url: "contacts", body: { firstname: "Batch", lastname: "One" }, contentId: "1" },
        { method: "PATCH", url: "$1", body: { lastname: "Uno" }, contentId: "2" },
        { method: "PATCH", url: `/api/data/v9.2/contacts(${id(2)})`, body: { numberofchildren: 9 }, headers: { "If-Match": "*" }, contentId: "3" },
        { method: "DELETE", url: `contacts(${id(7)})`, contentId: "4" },
      ],
      { method: "GET", url: `contacts?$select=contactid&$filter=${encodeURIComponent("lastname eq 'Uno'")}` },
    ]);
    assert.equal(parts.length, 3);
    assert.equal(parts[0].status, 200);
    assert.equal(parts[0].body.firstname, "Anna");
    assert.equal(parts[1].changeset.length, 4);
    assert.deepEqual(
      parts[1].changeset.map((p) => [p.contentId, p.status]),
      [
        ["1", 204],
        ["2", 204],
        ["3", 204],
        ["4", 204],
      ],
    );
    assert.match(parts[1].changeset[0].headers["odata-entityid"], /contacts\([0-9a-f-]{36}\)$/);
    assert.equal(parts[2].status, 200);
    assert.equal(parts[2].body.value.length, 1);
    const created = dv.rows("contact").find((r) => r.lastname === "Uno");
    assert.equal(created.fullname, "Batch Uno");
    assert.equal(dv.rows("contact").find((r) => r.contactid === id(2)).numberofchildren, 9);
    assert.equal(dv.rows("contact").length, 7);
    const stats = dv.stats();
    assert.equal(stats.batches, 1);
    assert.equal(stats.batchedOperations, 6);
    assert.equal(stats.requests, 1);
    assert.equal(stats.byMethod.POST, 1);
  });
});

test("$batch: a failing change set rolls back as a whole; stop or continue on error", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    const before = dv.rows("contact");
    const { parts } = await postBatch(api, [
      [
        { method: "POST", url: "contacts", body: { firstname: "Ghost" }, contentId: "1" },
        { method: "PATCH", url: `contacts(${id(1)})`, body: { lastname: "Changed" }, contentId: "2" },
        { method: "DELETE", url: `contacts(${id(3)})`, contentId: "3" },
        { method: "PATCH", url: `contacts(${id(2)})`, body: { numberofchildren: "many" }, contentId: "4" },
        { method: "PATCH", url: `contacts(${id(4)})`, body: { lastname: "Never" }, contentId: "5" },
      ],
      { method: "GET", url: `contacts(${id(1)})` },
    ], {}, 400);
    assert.equal(parts.length, 1, "stops after the failed change set");
    assert.equal(parts[0].status, 400);
    assert.equal(parts[0].contentId, "4");
    assert.ok(parts[0].body.error.message.includes("Edm.Int32"));
    assert.deepEqual(dv.rows("contact"), before, "everything rolled back, order kept");

    // without continue-on-error the batch stops at the first failing request
    const missing = "99999999-0000-4000-8000-000000000000";
    const stopped = await postBatch(api, [
      { method: "GET", url: `contacts(${id(1)})?$select=firstname` },
      { method: "GET", url: `contacts(${missing})` },
      { method: "PATCH", url: `contacts(${id(1)})`, body: { lastname: "After" } },
    ], {}, 400);
    // Stopped at a failure, the batch itself answers 400 (with continue-on-error, 200).
    assert.deepEqual(
      stopped.parts.map((p) => p.status),
      [200, 404],
    );
    assert.equal(stopped.headers.get("preference-applied"), null);
    assert.equal(dv.rows("contact")[0].lastname, "Kowalska");

    const continued = await postBatch(
      api,
      [
        { method: "GET", url: `contacts(${missing})` },
        [{ method: "POST", url: "contacts", body: { nickname: "x" }, contentId: "a" }],
        { method: "PATCH", url: `contacts(${id(1)})`, body: { lastname: "After" } },
        [{ method: "GET", url: `contacts(${id(1)})`, contentId: "b" }],
        [{ method: "POST", url: "contacts", body: { firstname: "Kept" }, contentId: "c" }],
      ],
      { Prefer: "odata.continue-on-error" },
    );
    assert.equal(continued.headers.get("preference-applied"), "odata.continue-on-error");
    assert.equal(continued.parts.length, 5);
    assert.equal(continued.parts[0].status, 404);
    assert.equal(continued.parts[1].status, 400);
    assert.equal(continued.parts[1].contentId, "a");
    assert.equal(continued.parts[2].status, 204);
    assert.equal(continued.parts[3].status, 400, "GET is not allowed in a change set");
    assert.equal(continued.parts[4].changeset[0].status, 204);
    assert.equal(dv.rows("contact").find((r) => r.contactid === id(1)).lastname, "After");
    assert.ok(dv.rows("contact").some((r) => r.firstname === "Kept"));
  });
});

test("$batch: limits and malformed bodies", async () => {
  await withServer({}, async ({ dv, api }) => {
    const boundary = "batch_big";
    const items = Array.from({ length: 1001 }, () => ({ method: "GET", url: "WhoAmI" }));
    const big = await api.call("POST", "$batch", { body: batchBody(boundary, items), headers: { "Content-Type": `multipart/mixed; boundary=${boundary}` } });
    assert.equal(big.status, 400);
    assert.match(big.json.error.message, /1000/);

    const ok = await postBatch(api, items.slice(0, 1000));
    assert.equal(ok.parts.length, 1000);
    assert.ok(ok.parts.every((p) => p.status === 200));

    const noBoundary = await api.call("POST", "$batch", { body: "x", headers: { "Content-Type": "application/json" } });
    assert.equal(noBoundary.status, 400);
    const unclosed = await api.call("POST", "$batch", { body: "--b\r\nContent-Type: application/http\r\n\r\nGET WhoAmI HTTP/1.1\r\n\r\n", headers: { "Content-Type": "multipart/mixed; boundary=b" } });
    assert.equal(unclosed.status, 400);
    assert.equal((await api.get("$batch")).status, 405);
    assert.equal(dv.stats().batches, 4);
  });
});

test("metadata: EntityDefinitions with localized labels, Attributes, option sets and an added column", async () => {
  await withServer({}, async ({ dv, api }) => {
    const query = "EntityDefinitions(LogicalName='contact')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute&$expand=Attributes($select=LogicalName,AttributeType,DisplayName)";
    const en = await api.get(query);
    assert.equal(en.status, 200, en.text);
    assert.equal(en.json.LogicalName, "contact");
    assert.equal(en.json.EntitySetName, "contacts");
    assert.equal(en.json.PrimaryIdAttribute, "contactid");
    assert.equal(en.json.PrimaryNameAttribute, "fullname");
    assert.equal(en.json.DisplayName, undefined, "$select is honoured");
    assert.match(en.json.MetadataId, GUID);
    const email = en.json.Attributes.find((a) => a.LogicalName === "emailaddress1");
    assert.equal(email.AttributeType, "String");
    assert.deepEqual(
      email.DisplayName.LocalizedLabels.map((l) => [l.Label, l.LanguageCode]).sort(),
      [
        ["Adres e-mail", 1045],
        ["Email", 1033],
      ],
    );
    assert.equal(email.DisplayName.UserLocalizedLabel.Label, "Email");
    assert.equal(email.DisplayName.UserLocalizedLabel.LanguageCode, 1033);
    assert.equal(email.MaxLength, undefined, "not selected");
    const types = Object.fromEntries(en.json.Attributes.map((a) => [a.LogicalName, a.AttributeType]));
    assert.equal(types.contactid, "Uniqueidentifier");
    assert.equal(types.createdon, "DateTime");
    assert.equal(types.donotbulkemail, "Boolean");
    assert.equal(types.preferredcontactmethodcode, "Picklist");
    assert.equal(types.numberofchildren, "Integer");
    assert.equal(types.description, "Memo");
    assert.equal(types.birthdate, "DateTime", "date-only columns are DateTime attributes with Format DateOnly");

    const pl = await api.get(query, { "X-Sandbox-Lcid": "1045" });
    const emailPl = pl.json.Attributes.find((a) => a.LogicalName === "emailaddress1");
    assert.deepEqual(
      { Label: emailPl.DisplayName.UserLocalizedLabel.Label, LanguageCode: emailPl.DisplayName.UserLocalizedLabel.LanguageCode },
      { Label: "Adres e-mail", LanguageCode: 1045 },
    );
    const created = pl.json.Attributes.find((a) => a.LogicalName === "createdon");
    assert.equal(created.DisplayName.UserLocalizedLabel.Label, "Data utworzenia");

    assert.equal(en.json.Attributes.some((a) => a.LogicalName === "new_consent_marketing"), false);
    dv.addColumn("contact", { logicalName: "new_consent_marketing", type: "Boolean", label: L("Marketing consent", "Zgoda marketingowa") });
    dv.addColumn("contact", { logicalName: "new_consent_marketing", type: "Boolean", label: L("Marketing consent", "Zgoda marketingowa") }); // idempotent
    assert.throws(() => dv.addColumn("contact", { logicalName: "new_consent_marketing", type: "String" }), /already has/);
    assert.throws(() => dv.addColumn("contact", { logicalName: "x", type: "Money" }), /unknown type/);
    assert.deepEqual(Object.keys(dv.columns("contact")), ["new_consent_marketing"]);
    const withConsent = await api.get("EntityDefinitions(LogicalName='contact')/Attributes?$select=LogicalName,AttributeType,DisplayName", { "X-Sandbox-Lcid": "1045" });
    assert.equal(withConsent.status, 200);
    const consent = withConsent.json.value.find((a) => a.LogicalName === "new_consent_marketing");
    assert.equal(consent.AttributeType, "Boolean");
    assert.equal(consent.DisplayName.UserLocalizedLabel.Label, "Zgoda marketingowa");

    // the new column is usable at once
    const posted = await api.post("contacts", { firstname: "C", new_consent_marketing: true }, { Prefer: "return=representation" });
    assert.equal(posted.json.new_consent_marketing, true);
    assert.deepEqual(await ids(api, "$filter=new_consent_marketing eq true"), [posted.json.contactid]);

    const picklists = await api.get("EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet", { "X-Sandbox-Lcid": "1045" });
    assert.equal(picklists.status, 200);
    assert.deepEqual(
      picklists.json.value.map((a) => a.LogicalName),
      ["preferredcontactmethodcode"],
    );
    assert.deepEqual(
      picklists.json.value[0].OptionSet.Options.map((o) => [o.Value, o.Label.UserLocalizedLabel.Label]),
      [
        [1, "Dowolna"],
        [2, "E-mail"],
      ],
    );

    const single = await api.get("EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='firstname')");
    assert.equal(single.json.MaxLength, 50);
    const tolerant = await api.get("EntityDefinitions(LogicalName='contact')?$select=LogicalName,NoSuchProperty&$expand=Attributes($select=LogicalName;$filter=IsValidForRead eq true),Keys,ManyToOneRelationships");
    assert.equal(tolerant.status, 200);
    assert.equal(tolerant.json.LogicalName, "contact");
    const list = await api.get("EntityDefinitions?$select=LogicalName,EntitySetName");
    assert.deepEqual(
      list.json.value.map((e) => e.EntitySetName).sort(),
      ["contacts", "new_salesmanagointegrations"],
    );
    const encoded = await api.get("EntityDefinitions(LogicalName=%27new_salesmanagointegration%27)?$select=PrimaryNameAttribute");
    assert.equal(encoded.json.PrimaryNameAttribute, "new_name");
    assert.equal((await api.get("EntityDefinitions(LogicalName='account')")).status, 404);
    assert.equal((await api.post("EntityDefinitions", {})).status, 405);
  });
});

// ---------------------------------------------------------------------------------------------
// Faults and service protection

test("the throttle fault answers every Nth request 429 with Retry-After, K times at most", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.setFaults({ throttle: { every: 2, retryAfter: 7, count: 2 } });
    const statuses = [];
    for (let i = 0; i < 7; i++) {
      const r = await api.get("WhoAmI");
      statuses.push(r.status);
      if (r.status === 429) {
        assert.equal(r.headers.get("retry-after"), "7");
        assert.equal(r.json.error.code, "0x80072322");
      }
    }
    assert.deepEqual(statuses, [200, 429, 200, 429, 200, 200, 200]);
    assert.equal(dv.stats().throttled, 2);
    dv.setFaults({ throttle: null });
    assert.equal((await api.get("WhoAmI")).status, 200);
  });
});

test("service protection: request count over the sliding window, batches counted per operation", async () => {
  await withServer({ protection: { maxRequests: 5, windowMs: 1000, batchCountsOperations: true } }, async ({ dv, api }) => {
    for (let i = 0; i < 5; i++) assert.equal((await api.get("WhoAmI")).status, 200);
    const limited = await api.get("WhoAmI");
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "1");
    assert.deepEqual(limited.json, { error: { code: "0x80072322", message: "Number of requests exceeded the limit of 5 over time window of 1 seconds." } });
    assert.equal(dv.stats().throttled, 1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await api.get("WhoAmI")).status, 200, "the window slid");

    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await api.get("WhoAmI")).status, 200);
    const boundary = "batch_x";
    const batch = (n) =>
      api.call("POST", "$batch", {
        body: batchBody(
          boundary,
          Array.from({ length: n }, () => ({ method: "GET", url: "WhoAmI" })),
        ),
        headers: { "Content-Type": `multipart/mixed; boundary=${boundary}` },
      });
    assert.equal((await batch(4)).status, 200, "1 + 4 = 5 requests");
    const over = await batch(1);
    assert.equal(over.status, 429);
    assert.equal(over.json.error.code, "0x80072322");
  });

  // By default a batch counts as one request towards the count (its execution time still adds up).
  await withServer({ protection: { maxRequests: 2, windowMs: 1000 } }, async ({ api }) => {
    const boundary = "batch_y";
    const body = batchBody(boundary, Array.from({ length: 10 }, () => ({ method: "GET", url: "WhoAmI" })));
    const headers = { "Content-Type": `multipart/mixed; boundary=${boundary}` };
    assert.equal((await api.call("POST", "$batch", { body, headers })).status, 200);
    assert.equal((await api.call("POST", "$batch", { body, headers })).status, 200);
    assert.equal((await api.call("POST", "$batch", { body, headers })).status, 429);
  });

  // default limits are Dataverse's
  await withServer({ protection: true }, async ({ api }) => {
    for (let i = 0; i < 3; i++) assert.equal((await api.get("WhoAmI")).status, 200);
  });
});

test("service protection: combined execution time and its Retry-After", async () => {
  await withServer({ protection: { windowMs: 3000, maxExecutionMs: 1500, costMs: { POST: 1000, GET: 2 } } }, async ({ dv, api }) => {
    assert.equal((await api.post("contacts", { firstname: "A" })).status, 204);
    assert.equal((await api.get("WhoAmI")).status, 200);
    const limited = await api.post("contacts", { firstname: "B" });
    assert.equal(limited.status, 429);
    assert.deepEqual(limited.json.error, {
      code: "0x80072321",
      message: "Combined execution time of incoming requests exceeded limit of 1,500 milliseconds over time window of 3 seconds.",
    });
    const retry = Number(limited.headers.get("retry-after"));
    assert.ok(retry >= 2 && retry <= 3, `Retry-After ${retry}`);
    assert.equal(dv.rows("contact").length, 1, "the throttled write did nothing");
    assert.equal((await api.get("WhoAmI")).status, 200, "cheap requests still fit");
  });
});

test("service protection: concurrent requests beyond the limit are refused at once", async () => {
  await withServer({ latencyMs: 300, protection: { maxConcurrent: 2 } }, async ({ dv, api }) => {
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const t0 = performance.now();
        const r = await api.get("WhoAmI");
        return { r, ms: performance.now() - t0 };
      }),
    );
    const ok = results.filter((x) => x.r.status === 200);
    const refused = results.filter((x) => x.r.status === 429);
    assert.equal(ok.length, 2);
    assert.equal(refused.length, 3);
    for (const { r, ms } of refused) {
      assert.equal(r.headers.get("retry-after"), "1");
      assert.deepEqual(r.json.error, { code: "0x80072326", message: "Number of concurrent requests exceeded the limit of 2." });
      assert.ok(ms < 300, `refused after ${ms} ms`);
    }
    assert.ok(performance.now() - started >= 299);
    const stats = dv.stats();
    assert.equal(stats.throttled, 3);
    assert.ok(stats.inFlightPeak >= 3, `peak ${stats.inFlightPeak}`);
  });
});

test("latency: every answer waits latencyMs, and setFaults overrides it", async () => {
  await withServer({ latencyMs: 150 }, async ({ dv, api }) => {
    let t0 = performance.now();
    assert.equal((await api.get("WhoAmI")).status, 200);
    assert.ok(performance.now() - t0 >= 149, `${performance.now() - t0} ms`);
    t0 = performance.now();
    assert.equal((await api.get("contacts(00000000-0000-4000-8000-000000000001)")).status, 404);
    assert.ok(performance.now() - t0 >= 149);
    dv.setFaults({ latencyMs: 300 });
    t0 = performance.now();
    await api.get("WhoAmI");
    assert.ok(performance.now() - t0 >= 299);
    dv.setFaults({ latencyMs: 0 });
    t0 = performance.now();
    await api.get("WhoAmI");
    assert.ok(performance.now() - t0 < 140);
    assert.throws(() => dv.setFaults({ latencyMs: -1 }));
  });
});

// ---------------------------------------------------------------------------------------------
// Persistence

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), "sandbox-dataverse-"));
}

test("persistence: a second instance on the same file sees rows, versions of columns and added columns", async () => {
  const dir = tempDir();
  const file = path.join(dir, "nested", "dataverse.json");
  try {
    let createdId;
    await withServer({ file }, async ({ dv, api }) => {
      dv.addColumn("contact", { logicalName: "new_consent_marketing", type: "Boolean", label: L("Marketing consent", "Zgoda marketingowa") });
      dv.seed("contact", sampleContacts());
      dv.seed("new_salesmanagointegration", [{ new_name: "SALESmanago" }]);
      const r = await api.post("contacts", { firstname: "Saved", new_consent_marketing: true });
      createdId = /\(([0-9a-f-]{36})\)$/.exec(r.headers.get("odata-entityid"))[1];
      await api.patch(`contacts(${id(1)})`, { lastname: "Zmieniona" });
      await api.del(`contacts(${id(7)})`);
      await dv.flush();
      assert.ok(fs.existsSync(file));
      const data = JSON.parse(fs.readFileSync(file, "utf8"));
      assert.equal(data.version, 1);
      assert.equal(data.tables.contact.length, 7);
      assert.equal(data.columns.contact.new_consent_marketing.type, "Boolean");
      assert.deepEqual(
        fs.readdirSync(path.dirname(file)),
        ["dataverse.json"],
        "no temporary file left",
      );
    });

    const first = createDataverse({ tables: TABLES(), file });
    const rows = first.rows("contact");
    assert.equal(rows.length, 7);
    assert.equal(rows.find((r) => r.contactid === id(1)).lastname, "Zmieniona");
    assert.equal(rows.find((r) => r.contactid === id(1)).fullname, "Anna Zmieniona");
    assert.equal(rows.find((r) => r.contactid === createdId).new_consent_marketing, true);
    assert.equal(rows.some((r) => r.contactid === id(7)), false);
    assert.equal(first.rows("new_salesmanagointegration")[0].new_name, "SALESmanago");
    assert.deepEqual(Object.keys(first.columns("contact")), ["new_consent_marketing"]);

    // debounced save without flush: the file follows within a second
    await withServer({ file }, async ({ dv, api }) => {
      const found = await api.get(`contacts?$select=fullname&$filter=new_consent_marketing eq true`);
      assert.equal(found.status, 200);
      assert.deepEqual(
        found.json.value.map((r) => r.contactid),
        [createdId],
      );
      await api.patch(`contacts(${createdId})`, { firstname: "Debounced" });
      let seen = false;
      for (let i = 0; i < 24 && !seen; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        seen = fs.readFileSync(file, "utf8").includes("Debounced");
      }
      assert.ok(seen, "saved within 1.2 s without flush");
      assert.equal(dv.rows("contact").length, 7);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("persistence: a corrupt file is refused with a message naming it", () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, "dataverse.json");
    for (const content of ["{\"version\":1,\"tables\":{\"contact\":[", "", "[]", '{"version":2,"tables":{}}', '{"version":1,"tables":{"contact":{}}}', '{"version":1,"tables":{"contact":[{"firstname":"no id"}]}}']) {
      fs.writeFileSync(file, content);
      assert.throws(
        () => createDataverse({ tables: TABLES(), file }),
        (error) => error.message.includes(file) && /corrupt/.test(error.message) && error.message.includes("--reset") && /delete/i.test(error.message),
        JSON.stringify(content),
      );
    }
    fs.writeFileSync(file, '{"version":1,"tables":{}}');
    assert.equal(createDataverse({ tables: TABLES(), file }).rows("contact").length, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("100,000 contacts: seed, save, load and page with a filter in a few seconds", async () => {
  const dir = tempDir();
  const file = path.join(dir, "big.json");
  try {
    const rows = [];
    for (let i = 0; i < 100_000; i++) {
      rows.push({
        firstname: `First${i % 97}`,
        lastname: `Last${i % 1013}`,
        emailaddress1: `person${i}@example.com`,
        numberofchildren: i % 4,
        birthdate: `19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 9}`,
        donotbulkemail: i % 3 === 0,
      });
    }
    let t0 = performance.now();
    const dv = createDataverse({ tables: TABLES(), file });
    dv.seed("contact", rows);
    await dv.flush();
    const saveMs = performance.now() - t0;
    assert.ok(saveMs < 8000, `seed + save took ${saveMs} ms`);

    t0 = performance.now();
    const loaded = createDataverse({ tables: TABLES(), file });
    const loadMs = performance.now() - t0;
    assert.ok(loadMs < 5000, `load took ${loadMs} ms`);
    assert.equal(loaded.rows("contact").length, 100_000);

    loaded.addPrincipal(BROWSER_TOKEN, WHO_AM_I.UserId);
    const server = http.createServer(async (req, res) => {
      if (!(await loaded.handle(req, res))) res.writeHead(404).end();
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const api = client(`http://127.0.0.1:${server.address().port}`);
      t0 = performance.now();
      let url = `contacts?$select=contactid,emailaddress1&$filter=${encodeURIComponent("numberofchildren eq 1 and donotbulkemail eq false")}&$count=true`;
      let total = 0;
      let pages = 0;
      const seen = new Set();
      for (; url && pages < 20; pages++) {
        const r = await api.get(url, { Prefer: "odata.maxpagesize=5000" });
        assert.equal(r.status, 200);
        assert.equal(r.json["@odata.count"], 5000, "capped at 5000 as Dataverse does");
        for (const row of r.json.value) seen.add(row.contactid);
        total += r.json.value.length;
        url = r.json["@odata.nextLink"];
      }
      const expected = rows.filter((_, i) => i % 4 === 1 && i % 3 !== 0).length;
      assert.equal(total, expected);
      assert.equal(seen.size, expected);
      const queryMs = performance.now() - t0;
      assert.ok(queryMs < 5000, `paging took ${queryMs} ms`);

      t0 = performance.now();
      const sorted = await api.get(`contacts?$select=lastname&$orderby=lastname desc,birthdate&$top=3&$filter=${encodeURIComponent("startswith(lastname,'Last10')")}`);
      assert.equal(sorted.status, 200);
      assert.deepEqual(
        sorted.json.value.map((r) => r.lastname),
        ["Last109", "Last109", "Last109"],
      );
      assert.ok(performance.now() - t0 < 3000);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Commit observers, callers and who modified a row

const BROWSER_USER = "00000000-0000-0000-0000-0000000000aa"; // WHO_AM_I.UserId
const APP_USER = "6a0d7c1e-0000-4000-8000-00000000a001";
const OTHER_APP_USER = "6a0d7c1e-0000-4000-8000-00000000a002";
const asApp = { Authorization: "Bearer app-token" };

test("onCommit: a create, an update, a PUT and a DELETE of a property, a delete, each told once after it committed", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    const events = [];
    const stop = dv.onCommit((event) => events.push(event));
    dv.seed("contact", sampleContacts());
    assert.equal(events.length, 0, "seed tells no one");

    const t0 = Date.now();
    const created = await api.post("contacts", { firstname: "Ewa", lastname: "Lis", fullname: "ignored", numberofchildren: 1 });
    assert.equal(created.status, 204);
    assert.equal(events.length, 1, "told before the answer");
    const newId = /\(([0-9a-f-]{36})\)$/.exec(created.headers.get("odata-entityid"))[1];
    const [create] = events;
    assert.deepEqual(Object.keys(create).sort(), ["at", "id", "message", "post", "pre", "table", "target", "userId"]);
    assert.equal(create.table, "contact");
    assert.equal(create.message, "Create");
    assert.equal(create.id, newId);
    assert.equal(create.pre, null);
    assert.deepEqual(create.post, dv.rows("contact").find((r) => r.contactid === newId), "the full row after");
    assert.equal(create.post.fullname, "Ewa Lis");
    assert.deepEqual(create.target, { firstname: "Ewa", lastname: "Lis", numberofchildren: 1 }, "just the columns the request set");
    assert.equal(create.userId, BROWSER_USER);
    assert.ok(create.at >= t0 && create.at <= Date.now(), `${create.at}`);

    // the rows given are copies
    create.post.lastname = "Changed";
    create.target.lastname = "Changed";
    assert.equal(dv.rows("contact").find((r) => r.contactid === newId).lastname, "Lis");

    assert.equal((await api.patch(`contacts(${id(1)})`, { lastname: "Nowicka", "@odata.etag": "x" })).status, 204);
    assert.equal(events.length, 2);
    const update = events[1];
    assert.equal(update.message, "Update");
    assert.equal(update.id, id(1));
    assert.equal(update.pre.lastname, "Kowalska");
    assert.equal(update.pre.fullname, "Anna Kowalska");
    assert.equal(update.post.lastname, "Nowicka");
    assert.equal(update.post.fullname, "Anna Nowicka");
    assert.equal(update.post.emailaddress1, "anna@example.com", "the full row, not just what changed");
    assert.deepEqual(update.target, { lastname: "Nowicka" });

    assert.equal((await api.call("PUT", `contacts(${id(2)})/emailaddress1`, { body: { value: "jan@example.org" } })).status, 204);
    assert.equal((await api.del(`contacts(${id(2)})/numberofchildren`)).status, 204);
    assert.deepEqual(
      events.slice(2).map((e) => [e.message, e.id, e.target]),
      [
        ["Update", id(2), { emailaddress1: "jan@example.org" }],
        ["Update", id(2), { numberofchildren: null }],
      ],
    );
    assert.equal(events[3].pre.emailaddress1, "jan@example.org");

    const before = dv.rows("contact").find((r) => r.contactid === id(3));
    assert.equal((await api.del(`contacts(${id(3)})`)).status, 204);
    const remove = events[4];
    assert.equal(remove.message, "Delete");
    assert.equal(remove.id, id(3));
    assert.deepEqual(remove.pre, before);
    assert.equal(remove.post, null);
    assert.deepEqual(remove.target, {});

    // what fails, and what only reads, tells no one
    assert.equal((await api.post("contacts", { numberofchildren: "many" })).status, 400);
    assert.equal((await api.patch(`contacts(${id(3)})`, { lastname: "Gone" }, { "If-Match": "*" })).status, 404);
    assert.equal((await api.del(`contacts(${id(3)})`)).status, 404);
    assert.equal((await api.get(`contacts(${id(1)})`)).status, 200);
    assert.equal(events.length, 5);

    stop();
    assert.equal((await api.patch(`contacts(${id(1)})`, { lastname: "Kowalska" })).status, 204);
    assert.equal(events.length, 5, "unsubscribed");
  });
});

test("onCommit: a change set is told once it committed, in order; a rolled-back one tells nothing", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    const events = [];
    dv.onCommit((event) => {
      // the whole change set stands when its first write is told
      events.push({ ...event, seventhLeft: dv.rows("contact").some((r) => r.contactid === id(7)) });
    });
    const { parts } = await postBatch(
      api,
      [
        { method: "GET", url: `contacts(${id(1)})?$select=firstname` },
        [
          { method: "POST", url: "contacts", body: { firstname: "Batch", lastname: "One" }, contentId: "1" },
          { method: "PATCH", url: "$1", body: { lastname: "Uno" }, contentId: "2" },
          { method: "DELETE", url: `contacts(${id(7)})`, contentId: "3" },
        ],
        [
          { method: "PATCH", url: `contacts(${id(1)})`, body: { lastname: "Never" }, contentId: "4" },
          { method: "DELETE", url: `contacts(${id(2)})`, contentId: "5" },
          { method: "PATCH", url: `contacts(${id(4)})`, body: { numberofchildren: "many" }, contentId: "6" },
        ],
        { method: "PATCH", url: `contacts(${id(5)})`, body: { lastname: "Alone" } },
      ],
      { Prefer: "odata.continue-on-error" },
    );
    assert.deepEqual(
      parts.map((p) => p.changeset?.map((c) => c.status) ?? p.status),
      [200, [204, 204, 204], 400, 204],
    );
    const createdId = dv.rows("contact").find((r) => r.lastname === "Uno").contactid;
    assert.deepEqual(
      events.map((e) => [e.message, e.id, e.target, e.seventhLeft]),
      [
        ["Create", createdId, { firstname: "Batch", lastname: "One" }, false],
        ["Update", createdId, { lastname: "Uno" }, false],
        ["Delete", id(7), {}, false],
        ["Update", id(5), { lastname: "Alone" }, false],
      ],
    );
    assert.equal(events[1].pre.lastname, "One");
    assert.equal(events[1].post.fullname, "Batch Uno");
    assert.ok(events.every((e) => e.userId === BROWSER_USER), "no principal registered: the browser user");
    assert.equal(dv.rows("contact").find((r) => r.contactid === id(1)).lastname, "Kowalska", "rolled back");
  });
});

test("onCommit: an observer that throws is reported and breaks neither the request nor the other observers", async () => {
  await withServer({}, async ({ dv, api }) => {
    const seen = [];
    const reported = [];
    const error = console.error;
    console.error = (...args) => reported.push(args.map(String).join(" "));
    try {
      dv.onCommit(() => {
        throw new Error("observer broke");
      });
      dv.onCommit((event) => seen.push(event.message));
      const created = await api.post("contacts", { firstname: "Still" }, { Prefer: "return=representation" });
      assert.equal(created.status, 201);
      assert.equal(created.json.firstname, "Still");
      const batch = await postBatch(api, [[{ method: "PATCH", url: `contacts(${created.json.contactid})`, body: { lastname: "Saved" } }]]);
      assert.equal(batch.parts[0].changeset[0].status, 204);
    } finally {
      console.error = error;
    }
    assert.deepEqual(seen, ["Create", "Update"]);
    assert.equal(reported.length, 2);
    assert.match(reported[0], /observer broke/);
    assert.equal(dv.rows("contact")[0].lastname, "Saved");
    assert.throws(() => dv.onCommit("not a function"), /needs a function/);
  });
});

test("principals: a registered bearer token acts as its application user; rows carry who created and modified them", async () => {
  await withServer({ principals: { "app-token": APP_USER.toUpperCase() } }, async ({ dv, api }) => {
    const who = async (headers) => (await api.get("WhoAmI", headers)).json.UserId;
    assert.equal(await who(), BROWSER_USER);
    assert.equal(await who(asApp), APP_USER, "lower case, as GUIDs are answered");
    // No credential, a token nobody registered, or another scheme: 401 with Dataverse's challenge
    // ("Discover the authority at run time": `WWW-Authenticate: Bearer authorization_uri=…`), no body.
    for (const Authorization of [null, "Bearer unknown-token", "Basic app-token", "Bearer"]) {
      const refused = await api.get("WhoAmI", { Authorization });
      assert.equal(refused.status, 401, `${Authorization}: ${refused.text}`);
      assert.match(refused.headers.get("www-authenticate"), /^Bearer authorization_uri=https:\/\/login\.microsoftonline\.com\/[0-9a-f-]{36}\/oauth2\/authorize, resource_id=http:\/\/127\.0\.0\.1:\d+\/$/);
      assert.equal(refused.text, "");
    }
    // Nothing is looked at before the caller is known: not even a write.
    const before = dv.rows("contact").length;
    assert.equal((await api.post("contacts", { firstname: "Nobody" }, { Authorization: null })).status, 401);
    assert.equal(dv.rows("contact").length, before);
    // The browser's session cookie acts as the browser user; an unknown one is no one.
    const session = dv.openSession();
    assert.equal(await who({ Authorization: null, Cookie: `theme=dark; CrmOwinAuth=${session}` }), BROWSER_USER);
    assert.equal((await api.get("WhoAmI", { Authorization: null, Cookie: "CrmOwinAuth=made-up" })).status, 401);

    // created by the browser user, then modified by the application user
    const created = await api.post("contacts", { firstname: "Ola", _modifiedby_value: OTHER_APP_USER }, { Prefer: "return=representation" });
    assert.equal(created.status, 201);
    const newId = created.json.contactid;
    assert.equal(created.json._createdby_value, BROWSER_USER);
    assert.equal(created.json._modifiedby_value, BROWSER_USER, "read-only: what a body gives is ignored");
    assert.equal((await api.patch(`contacts(${newId})`, { lastname: "Lis" }, asApp)).status, 204);
    const full = await api.get(`contacts(${newId})`);
    assert.equal(full.json._createdby_value, BROWSER_USER);
    assert.equal(full.json._modifiedby_value, APP_USER, "in a GET without $select");
    assert.equal(full.json.lastname, "Lis");
    const selected = await api.get(`contacts(${newId})?$select=_modifiedby_value`);
    assert.deepEqual(Object.keys(selected.json).sort(), ["@odata.context", "@odata.etag", "_modifiedby_value", "contactid"]);
    assert.equal(selected.json._modifiedby_value, APP_USER);
    assert.equal((await api.get(`contacts(${newId})/_modifiedby_value`)).json.value, APP_USER);
    assert.equal((await api.call("PUT", `contacts(${newId})/_modifiedby_value`, { body: { value: BROWSER_USER } })).status, 400);

    // created by the application user, in a change set
    const { parts } = await postBatch(api, [[{ method: "POST", url: "contacts", body: { firstname: "Jan" }, contentId: "1" }]], asApp);
    const batchId = /\(([0-9a-f-]{36})\)$/.exec(parts[0].changeset[0].headers["odata-entityid"])[1];
    const byApp = dv.rows("contact").find((r) => r.contactid === batchId);
    assert.equal(byApp._createdby_value, APP_USER);
    assert.equal(byApp._modifiedby_value, APP_USER);

    assert.deepEqual((await ids(api, `$filter=_modifiedby_value eq ${APP_USER}`)).sort(), [newId, batchId].sort());
    assert.deepEqual(await ids(api, `$filter=_createdby_value eq ${BROWSER_USER}`), [newId]);
    assert.deepEqual((await ids(api, `$filter=_modifiedby_value ne ${APP_USER}`)).length, 0);
    const list = await api.get(`contacts?$select=firstname,_modifiedby_value&$orderby=_modifiedby_value`);
    assert.equal(list.status, 200);
    assert.ok(list.json.value.every((r) => r._modifiedby_value === APP_USER));

    // the lookups are not described as attributes (their attributes would be Lookup ones)
    const attributes = await api.get("EntityDefinitions(LogicalName='contact')/Attributes?$select=LogicalName");
    assert.equal(attributes.json.value.some((a) => a.LogicalName.includes("_value")), false);

    // seeded rows keep what they give, else have none
    dv.seed("contact", [{ firstname: "Seeded" }, { firstname: "Kept", _modifiedby_value: OTHER_APP_USER }]);
    assert.deepEqual(
      dv.rows("contact").map((r) => [r.firstname, r._createdby_value, r._modifiedby_value]),
      [
        ["Seeded", null, null],
        ["Kept", null, OTHER_APP_USER],
      ],
    );

    // a principal added later, and removed
    const remove = dv.addPrincipal("later-token", OTHER_APP_USER);
    assert.equal(await who({ Authorization: "Bearer later-token" }), OTHER_APP_USER);
    remove();
    assert.equal((await api.get("WhoAmI", { Authorization: "Bearer later-token" })).status, 401, "a removed token is no one");
    assert.throws(() => dv.addPrincipal("token", "not-a-guid"), /not a GUID/);
    assert.throws(() => dv.addPrincipal("", APP_USER), /token/);
  });
  assert.throws(() => createDataverse({ tables: TABLES(), principals: "app-token" }), /principals/);
});

test("principals: the browser user's privileges apply to it alone; an application user may do everything", async () => {
  await withServer({ principals: new Map([["app-token", APP_USER]]) }, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    dv.seed("new_salesmanagointegration", [{ new_name: "SALESmanago" }]);
    const events = [];
    dv.onCommit((event) => events.push(event));
    const access = async (user, row) =>
      (await api.get(`systemusers(${user})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@t)?@t={'@odata.id':'contacts(${row})'}`)).json.AccessRights;
    assert.match(await access(BROWSER_USER, id(1)), /DeleteAccess/);

    dv.setPrivileges({ delete: false, readIntegration: false });
    assert.deepEqual(dv.privileges(), { delete: false, readIntegration: false });
    const refused = await api.del(`contacts(${id(1)})`);
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error.message, `Principal user (Id=${BROWSER_USER}, type=8) is missing prvDeleteContact privilege`);
    assert.equal((await api.get("new_salesmanagointegrations")).status, 403);
    assert.doesNotMatch(await access(BROWSER_USER, id(1)), /DeleteAccess/);

    assert.equal((await api.get("new_salesmanagointegrations", asApp)).status, 200);
    assert.match(await access(APP_USER, id(1)), /DeleteAccess/);
    assert.equal((await api.del(`contacts(${id(1)})`, asApp)).status, 204);
    assert.deepEqual(
      events.map((e) => [e.message, e.id, e.userId]),
      [["Delete", id(1), APP_USER]],
    );
  });
});

test("persistence: a data file written before rows carried who modified them loads, and reads them as null", async () => {
  const dir = tempDir();
  const file = path.join(dir, "dataverse.json");
  try {
    fs.writeFileSync(file, JSON.stringify({ version: 1, tables: { contact: [{ contactid: id(1), firstname: "Old", createdon: "2020-01-01T00:00:00Z", modifiedon: "2020-01-01T00:00:00Z" }] } }));
    await withServer({ file, principals: { "app-token": APP_USER } }, async ({ dv, api }) => {
      assert.equal(dv.rows("contact")[0]._modifiedby_value, null);
      const old = await api.get(`contacts(${id(1)})`);
      assert.equal(old.status, 200);
      assert.equal(old.json._createdby_value, null);
      assert.equal(old.json._modifiedby_value, null);
      assert.deepEqual(await ids(api, "$filter=_modifiedby_value eq null"), [id(1)]);
      assert.equal((await api.patch(`contacts(${id(1)})`, { lastname: "New" }, asApp)).status, 204);
    });
    const [row] = JSON.parse(fs.readFileSync(file, "utf8")).tables.contact;
    assert.equal(row._modifiedby_value, APP_USER);
    assert.equal(row._createdby_value ?? null, null);
    assert.equal(createDataverse({ tables: TABLES(), file }).rows("contact")[0]._modifiedby_value, APP_USER);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("what the sandbox does not serve is refused by name (501), never answered wrongly nor called missing", async () => {
  await withServer({}, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    const refused = async (path, pattern) => {
      const answer = await api.get(path);
      assert.equal(answer.status, 501, path);
      assert.match(answer.json.error.message, pattern, path);
    };
    // Microsoft Learn, "Count rows using OData": `contacts/$count` is the number as plain text.
    const count = await api.get("contacts/$count");
    assert.equal(count.status, 200, count.text);
    assert.match(count.headers.get("content-type"), /^text\/plain/);
    assert.equal(count.text, String(dv.rows("contact").length));
    const some = await api.get(`contacts/$count?$filter=${encodeURIComponent("startswith(lastname,'now')")}`);
    assert.equal(some.text, "2");
    assert.equal((await api.get("contacts/$count?$select=lastname")).status, 400, "only $filter goes with it");
    await refused("GlobalOptionSetDefinitions", /does not support global choices \(GlobalOptionSetDefinitions\)/);
    await refused("environmentvariablevalues?$select=value", /does not support environment variable values/);
    await refused("environmentvariabledefinitions", /does not support environment variables/);
    await refused("RelationshipDefinitions", /does not support relationship metadata/);
    // Metadata filters other than the one it evaluates: answering every row would be wrong.
    await refused("EntityDefinitions?$filter=IsCustomEntity eq true", /this \$filter on EntityDefinitions \('IsCustomEntity eq true'\): only LogicalName eq/);
    await refused("EntityDefinitions(LogicalName='contact')/Attributes?$filter=AttributeType eq 'String'", /\$filter on Attributes/);
    const one = await api.get("EntityDefinitions?$select=LogicalName&$filter=LogicalName eq 'contact'");
    assert.deepEqual(one.json.value.map((e) => e.LogicalName), ["contact"]);
    // A resource that exists nowhere is still Dataverse's 404.
    assert.equal((await api.get("nosuchset")).status, 404);
  });
});

test("RetrievePrincipalAccess as Microsoft documents it: any alias, either JSON quoting, a user that does not exist is 404", async () => {
  await withServer({ principals: new Map([["app-token", APP_USER]]) }, async ({ dv, api }) => {
    dv.seed("contact", sampleContacts());
    const path = (user, alias, target) => `systemusers(${user})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=${alias})?${alias}=${encodeURIComponent(target)}`;
    const single = `{'@odata.id':'contacts(${id(1)})'}`;
    const double = `{"@odata.id":"contacts(${id(1)})"}`;
    for (const [alias, target] of [["@t", single], ["@target", single], ["@p1", double]]) {
      const answer = await api.get(path(BROWSER_USER, alias, target));
      assert.equal(answer.status, 200, `${alias} ${target}`);
      assert.match(answer.json.AccessRights, /ReadAccess/);
    }
    assert.equal((await api.get(path(`{${APP_USER.toUpperCase()}}`, "@t", single))).status, 200);
    const nobody = await api.get(path("00000000-0000-4000-8000-00000000dead", "@t", single));
    assert.equal(nobody.status, 404);
    assert.equal(nobody.json.error.message, "systemuser With Id = 00000000-0000-4000-8000-00000000dead Does Not Exist");
    const noValue = await api.get(`systemusers(${BROWSER_USER})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@t)`);
    assert.equal(noValue.status, 400);
    assert.match(noValue.json.error.message, /@t has no value/);
  });
});

test("keys of rows created since the last read merge into SQL Server's order", () => {
  // Seeded, so a failure repeats: random GUIDs, and some of the sequential kind Dataverse makes.
  let state = 7;
  const hex = (digits) => Array.from({ length: digits }, () => ((state = (state * 1103515245 + 12345) % 2 ** 31) % 16).toString(16)).join("");
  const guid = () => `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
  for (let round = 0; round < 100; round++) {
    const held = Array.from({ length: round % 40 }, guid);
    const added = Array.from({ length: (round * 7) % 30 }, (_, i) => (i % 3 ? guid() : `${hex(8)}-0000-ef11-abcd-000d3a123456`));
    assert.deepEqual(mergeIds(sortIds(held), added), sortIds([...held, ...added]), `round ${round}`);
  }
});
