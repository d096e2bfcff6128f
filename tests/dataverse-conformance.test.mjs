// The sandbox's Dataverse, driven by a client nobody here wrote: `dynamics-web-api` (2.5.0, a
// widely used Dataverse Web API client), as a new user of the stand-in would drive it. Each case
// names the behaviour Microsoft documents (pages on learn.microsoft.com, Power Apps developer
// docs, "Dataverse Web API") and expects it, so code tested against the stand-in behaves the
// same against a real org. Every server listens on 127.0.0.1 port 0 and is closed after its test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DynamicsWebApi } from "dynamics-web-api";
import { WHO_AM_I } from "../sandbox/dataverse.mjs";
import { BROWSER_TOKEN, withServer } from "./support/dataverse-server.mjs";

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
      numberofchildren: { type: "Integer", label: L("No. of Children", "Liczba dzieci") },
      // Labelled as in Dynamics: "Do Not Allow" for true.
      donotbulkemail: {
        type: "Boolean",
        label: L("Do not allow Bulk Emails", "Nie zezwalaj na masowe wiadomości e-mail"),
        options: [
          { value: 0, label: L("Allow", "Zezwalaj") },
          { value: 1, label: L("Do Not Allow", "Nie zezwalaj") },
        ],
      },
      preferredcontactmethodcode: {
        type: "Picklist",
        label: L("Preferred Method of Contact", "Preferowana metoda kontaktu"),
        options: [
          { value: 1, label: L("Any", "Dowolna") },
          { value: 2, label: L("Email", "E-mail") },
        ],
      },
    },
    computed: { fullname: (row) => [row.firstname, row.lastname].filter(Boolean).join(" ") || null },
  },
});

const id = (n) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

const PEOPLE = [
  { contactid: id(1), firstname: "Anna", lastname: "Kowalska", emailaddress1: "anna@example.com", numberofchildren: 0, donotbulkemail: false, preferredcontactmethodcode: 1 },
  { contactid: id(2), firstname: "Żaneta", lastname: "Nowak", emailaddress1: "zaneta@example.com", numberofchildren: 2, donotbulkemail: true, preferredcontactmethodcode: 2 },
  { contactid: id(3), firstname: "Jan", lastname: "O'Neil", emailaddress1: "o'neil@example.ie", numberofchildren: 1, donotbulkemail: false },
  { contactid: id(4), firstname: "Zofia", lastname: "Nowak", emailaddress1: "zofia_n@example.org", numberofchildren: 3, donotbulkemail: null },
];

/** A stand-in with `PEOPLE`, and a client of it acting as the browser user with a bearer token. */
function withClient(fn, { token = BROWSER_TOKEN, ...config } = {}) {
  return withServer(TABLES(), {}, async ({ dv, origin }) => {
    dv.seed("contact", PEOPLE);
    const api = new DynamicsWebApi({ serverUrl: `${origin}/`, dataApi: { version: "9.2" }, onTokenRefresh: async () => token, ...config });
    await fn({ dv, api, origin });
  });
}

/** The error a request fails with (fails the test when it succeeds). */
async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("the request succeeded");
}

const ids = (rows) => rows.map((r) => r.contactid).sort();

// ----- authentication ---------------------------------------------------------------------------

test("authentication: a bearer token is required; without a valid one, 401 and the authority to ask (\"Discover the authority at run time\")", async () => {
  await withClient(async ({ api }) => {
    assert.equal((await api.callFunction("WhoAmI")).UserId, WHO_AM_I.UserId);
  });
  await withClient(
    async ({ api }) => {
      const refused = await failure(api.callFunction("WhoAmI"));
      assert.equal(refused.status, 401);
      assert.match(refused.headers["www-authenticate"], /^Bearer authorization_uri=https:\/\/login\.microsoftonline\.com\/[0-9a-f-]{36}\/oauth2\/authorize/);
    },
    { token: "a-token-nobody-issued" },
  );
});

// ----- create, retrieve, update, delete ---------------------------------------------------------

test("CRUD (\"Create\", \"Retrieve\", \"Update and delete table rows\"): 204 with the new id, a row with its etag, 404 for a row that does not exist", async () => {
  await withClient(async ({ api }) => {
    const created = await api.create({ collection: "contacts", data: { firstname: "Ola", lastname: "Lis" } });
    assert.match(created, /^[0-9a-f-]{36}$/);
    const row = await api.retrieve({ collection: "contacts", key: created, select: ["fullname", "firstname"] });
    assert.equal(row.fullname, "Ola Lis", "a computed column");
    assert.match(row["@odata.etag"], /^W\/"\d+"$/);
    // returnRepresentation: 201 with the row ("Create with data returned")
    const shown = await api.create({ collection: "contacts", data: { firstname: "Ewa" }, returnRepresentation: true, select: ["firstname"] });
    assert.equal(shown.firstname, "Ewa");
    await api.update({ collection: "contacts", key: created, data: { lastname: "Lisowska" } });
    assert.equal((await api.retrieve({ collection: "contacts", key: created, select: ["fullname"] })).fullname, "Ola Lisowska");
    await api.deleteRecord({ collection: "contacts", key: created });
    const gone = await failure(api.retrieve({ collection: "contacts", key: created }));
    assert.equal(gone.status, 404);
    assert.equal(gone.message, `contact With Id = ${created} Does Not Exist`);
    // an unknown column: 400 naming it
    const unknown = await failure(api.create({ collection: "contacts", data: { nosuchcolumn: 1 } }));
    assert.equal(unknown.status, 400);
    assert.match(unknown.message, /nosuchcolumn/);
  });
});

// ----- upsert and conditional requests ----------------------------------------------------------

test("upsert (\"Upsert a table row\", \"Perform conditional operations\"): creates when missing, If-Match: * never creates, If-None-Match: * never updates", async () => {
  await withClient(async ({ api, dv }) => {
    const fresh = id(90);
    await api.upsert({ collection: "contacts", key: fresh, data: { firstname: "Nowa" } });
    assert.equal(dv.rows("contact").find((r) => r.contactid === fresh)?.firstname, "Nowa", "a PATCH without If-Match creates the row");
    // The client swallows the 404 / 412 of a limited upsert (its documented choice): the row
    // tells what happened.
    await api.upsert({ collection: "contacts", key: id(91), data: { firstname: "Never" }, ifmatch: "*" });
    assert.equal(dv.rows("contact").some((r) => r.contactid === id(91)), false, "If-Match: * does not create");
    await api.upsert({ collection: "contacts", key: id(1), data: { firstname: "Overwritten" }, ifnonematch: "*" });
    assert.equal(dv.rows("contact").find((r) => r.contactid === id(1)).firstname, "Anna", "If-None-Match: * does not update");
    // update() sends If-Match: * itself: a missing row is 404, not a new one
    assert.equal((await failure(api.update({ collection: "contacts", key: id(92), data: { firstname: "X" } }))).status, 404);
  });
});

test("conditional requests (\"Perform conditional operations\"): 304 for an unchanged row, never with annotations; 412 for a stale etag", async () => {
  await withClient(async ({ api }) => {
    const row = await api.retrieve({ collection: "contacts", key: id(1), select: ["firstname"] });
    const etag = row["@odata.etag"];
    assert.equal(await api.retrieve({ collection: "contacts", key: id(1), select: ["firstname"], ifnonematch: etag }), undefined, "304: nothing new");
    const annotated = await api.retrieve({ collection: "contacts", key: id(1), select: ["firstname"], ifnonematch: etag, includeAnnotations: "*" });
    assert.equal(annotated.firstname, "Anna", "with annotations a GET never answers 304");
    await api.update({ collection: "contacts", key: id(1), data: { lastname: "Kowalczyk" } });
    // The client reads a 412 on an update with an etag as `false` (its documented choice)…
    assert.equal(await api.update({ collection: "contacts", key: id(1), data: { lastname: "Stale" }, ifmatch: etag }), false);
    assert.equal((await api.retrieve({ collection: "contacts", key: id(1), select: ["lastname"] })).lastname, "Kowalczyk");
  });
  // …and, told to propagate errors, shows Dataverse's answer.
  await withClient(
    async ({ api }) => {
      const etag = (await api.retrieve({ collection: "contacts", key: id(1), select: ["firstname"] }))["@odata.etag"];
      await api.update({ collection: "contacts", key: id(1), data: { lastname: "Kowalczyk" } });
      const stale = await failure(api.update({ collection: "contacts", key: id(1), data: { lastname: "Stale" }, ifmatch: etag }));
      assert.equal(stale.status, 412);
      assert.equal(stale.message, "The version of the existing record doesn't match the RowVersion property provided.");
    },
    { propagateErrors: true },
  );
});

// ----- queries ----------------------------------------------------------------------------------

test("queries (\"Filter rows\", \"Order rows\", \"Count rows\"): collation without case or accents, LIKE wildcards, In with JSON values, order, top and counts", async () => {
  await withClient(async ({ api }) => {
    const find = async (filter) => ids((await api.retrieveMultiple({ collection: "contacts", select: ["contactid"], filter })).value);
    assert.deepEqual(await find("firstname eq 'zaneta'"), [id(2)], "case- and accent-insensitive");
    assert.deepEqual(await find("lastname eq 'nowak   '"), [id(2), id(4)], "trailing spaces ignored by eq");
    assert.deepEqual(await find("contains(emailaddress1,'[_]')"), [id(4)], "a wildcard in brackets is itself");
    assert.deepEqual(await find("startswith(emailaddress1,'z_')"), [id(2), id(4)], "_ is any one character");
    assert.deepEqual(await find(`Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=["o'neil@example.ie","anna@example.com"])`), [id(1), id(3)]);
    const doubled = await failure(api.retrieveMultiple({ collection: "contacts", filter: "Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['O''Neil'])" }));
    assert.equal(doubled.status, 400);
    assert.match(doubled.message, /^Invalid JSON/);
    const ordered = await api.retrieveMultiple({ collection: "contacts", select: ["lastname", "numberofchildren"], orderBy: ["lastname desc", "numberofchildren"], top: 3 });
    assert.deepEqual(ordered.value.map((r) => r.contactid), [id(3), id(2), id(4)]);
    const counted = await api.retrieveMultiple({ collection: "contacts", select: ["contactid"], filter: "numberofchildren gt 0", count: true });
    assert.equal(counted["@odata.count"], 3);
    assert.equal(await api.count({ collection: "contacts" }), 4, "the $count segment");
    assert.equal(await api.count({ collection: "contacts", filter: "donotbulkemail eq true" }), 1);
  });
});

test("paging (\"Page results\"): pages of odata.maxpagesize with @odata.nextLink until the last; $top with a page size is ignored", async () => {
  await withClient(async ({ api, dv }) => {
    // seed replaces the table's rows: 25 contacts
    dv.seed("contact", Array.from({ length: 25 }, (_, i) => ({ contactid: id(100 + i), firstname: `P${i}` })));
    const page = await api.retrieveMultiple({ collection: "contacts", select: ["firstname"], maxPageSize: 10 });
    assert.equal(page.value.length, 10);
    assert.ok(page.oDataNextLink, "more pages");
    const all = await api.retrieveAll({ collection: "contacts", select: ["firstname"], maxPageSize: 10 });
    assert.equal(all.value.length, 25);
    assert.equal(new Set(ids(all.value)).size, 25, "each row once");
    const ignored = await api.retrieveAll({ collection: "contacts", select: ["firstname"], maxPageSize: 10, top: 5 });
    assert.equal(ignored.value.length, 25, "Don't use $top with odata.maxpagesize: $top is ignored");
    const capped = await api.retrieveMultiple({ collection: "contacts", select: ["firstname"], top: 5 });
    assert.deepEqual([capped.value.length, capped.oDataNextLink], [5, undefined], "$top alone caps the rows");
  });
});

const FORMATTED = "OData.Community.Display.V1.FormattedValue";

test("formatted values (\"Web API properties\": formatted values, lookup properties): choices, yes/no, numbers, dates and lookups, in the user's language", async () => {
  await withClient(async ({ api }) => {
    // Created through the API, so created by the browser user.
    const made = await api.create({ collection: "contacts", data: { numberofchildren: 1234, donotbulkemail: true, preferredcontactmethodcode: 2 } });
    const columns = ["preferredcontactmethodcode", "donotbulkemail", "numberofchildren", "createdon", "_createdby_value"];
    const row = await api.retrieve({ collection: "contacts", key: made, select: columns, includeAnnotations: FORMATTED });
    assert.equal(row[`preferredcontactmethodcode@${FORMATTED}`], "Email");
    assert.equal(row[`donotbulkemail@${FORMATTED}`], "Do Not Allow");
    assert.equal(row[`numberofchildren@${FORMATTED}`], "1,234");
    assert.match(row[`createdon@${FORMATTED}`], /^\d{1,2}\/\d{1,2}\/\d{4} \d{1,2}:\d{2} [AP]M$/);
    assert.equal(row[`_createdby_value@${FORMATTED}`], "Sandbox User", "a lookup shows its row's name");
    assert.equal(row["_createdby_value@Microsoft.Dynamics.CRM.lookuplogicalname"], undefined, "only the annotations asked for");
    // With every annotation: the lookup's table and navigation property too.
    const all = await api.retrieve({ collection: "contacts", key: made, select: ["_createdby_value"], includeAnnotations: "*" });
    assert.equal(all["_createdby_value@Microsoft.Dynamics.CRM.lookuplogicalname"], "systemuser");
    assert.equal(all["_createdby_value@Microsoft.Dynamics.CRM.associatednavigationproperty"], "createdby");
  });
  // A Polish user (the sandbox takes the language from X-Sandbox-Lcid).
  await withClient(
    async ({ api }) => {
      await api.update({ collection: "contacts", key: id(2), data: { numberofchildren: 1234 } });
      const row = await api.retrieve({ collection: "contacts", key: id(2), select: ["preferredcontactmethodcode", "donotbulkemail", "numberofchildren", "createdon"], includeAnnotations: FORMATTED });
      assert.equal(row[`preferredcontactmethodcode@${FORMATTED}`], "E-mail");
      assert.equal(row[`donotbulkemail@${FORMATTED}`], "Nie zezwalaj");
      assert.equal(row[`numberofchildren@${FORMATTED}`], "1\u00a0234");
      assert.match(row[`createdon@${FORMATTED}`], /^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}$/);
    },
    { headers: { "X-Sandbox-Lcid": "1045" } },
  );
});

test("system columns (\"Table definitions\": statecode, statuscode, ownerid): Active by default, a state with its default reason, a reason of another state refused, the creator owns the row", async () => {
  await withClient(async ({ api }) => {
    const made = await api.create({ collection: "contacts", data: { firstname: "Stan" } });
    const row = await api.retrieve({ collection: "contacts", key: made, select: ["statecode", "statuscode", "_ownerid_value"], includeAnnotations: FORMATTED });
    assert.deepEqual([row.statecode, row.statuscode], [0, 1]);
    assert.deepEqual([row[`statecode@${FORMATTED}`], row[`statuscode@${FORMATTED}`]], ["Active", "Active"]);
    assert.equal(row._ownerid_value, WHO_AM_I.UserId);
    // The user lookups expand ("Join tables using OData"), with $select inside.
    const joined = await api.retrieve({ collection: "contacts", key: made, select: ["firstname"], expand: [{ property: "createdby", select: ["fullname"] }] });
    assert.equal(joined.createdby.fullname, "Sandbox User");
    assert.equal(row[`_ownerid_value@${FORMATTED}`], "Sandbox User");
    await api.update({ collection: "contacts", key: made, data: { statecode: 1 } });
    const inactive = await api.retrieve({ collection: "contacts", key: made, select: ["statecode", "statuscode"] });
    assert.deepEqual([inactive.statecode, inactive.statuscode], [1, 2], "deactivated with its default reason");
    const mismatch = await failure(api.update({ collection: "contacts", key: made, data: { statecode: 0, statuscode: 2 } }));
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.message, /^2 is not a valid status code for state code contactState\.Active on contact/);
    assert.equal(await api.count({ collection: "contacts", filter: "statecode eq 0" }), 4, "the others stay active");
    const types = await api.retrieveAttributes({ entityKey: "LogicalName='contact'", select: ["LogicalName", "AttributeType"] });
    const typeOf = (name) => types.value.find((a) => a.LogicalName === name)?.AttributeType;
    assert.deepEqual([typeOf("statecode"), typeOf("statuscode"), typeOf("preferredcontactmethodcode")], ["State", "Status", "Picklist"]);
  });
});

// ----- batches ----------------------------------------------------------------------------------

test("$batch (\"Execute batch operations\"): reads and change sets answered in order; a change set that fails rolls back as a whole", async () => {
  await withClient(async ({ api, dv }) => {
    api.startBatch();
    api.retrieveMultiple({ collection: "contacts", select: ["firstname"], filter: "lastname eq 'Nowak'" });
    api.create({ collection: "contacts", data: { firstname: "Batch" } });
    api.update({ collection: "contacts", key: id(1), data: { lastname: "Batchowa" } });
    const [read, created, updated] = await api.executeBatch();
    assert.deepEqual(ids(read.value), [id(2), id(4)]);
    assert.match(created, /^[0-9a-f-]{36}$/);
    assert.equal(updated, true);
    assert.equal(dv.rows("contact").find((r) => r.contactid === id(1)).lastname, "Batchowa");

    const before = dv.rows("contact").length;
    api.startBatch();
    api.create({ collection: "contacts", data: { firstname: "Rolled back" } });
    api.update({ collection: "contacts", key: id(1), data: { numberofchildren: "many" } });
    const error = await failure(api.executeBatch());
    assert.ok(error, "the change set's failure");
    assert.equal(dv.rows("contact").length, before, "the change set's create was rolled back");
  });
});

// ----- metadata and functions -------------------------------------------------------------------

test("metadata (\"Query table definitions\"): a table by its LogicalName, its attributes; other filters refused by name", async () => {
  await withClient(async ({ api }) => {
    const entity = await api.retrieveEntity({ key: "LogicalName='contact'", select: ["LogicalName", "EntitySetName", "PrimaryIdAttribute"] });
    assert.deepEqual([entity.LogicalName, entity.EntitySetName, entity.PrimaryIdAttribute], ["contact", "contacts", "contactid"]);
    const attributes = await api.retrieveAttributes({ entityKey: "LogicalName='contact'", select: ["LogicalName"] });
    assert.ok(attributes.value.some((a) => a.LogicalName === "emailaddress1"));
    const filtered = await failure(api.retrieveEntities({ select: ["LogicalName"], filter: "IsCustomEntity eq true" }));
    assert.equal(filtered.status, 501);
    assert.match(filtered.message, /^The sandbox does not support/);
    const query = await failure(api.retrieveMultiple({ collection: "contacts", filter: "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=7)" }));
    assert.equal(query.status, 501, "a Dataverse query function the sandbox lacks: refused by name");
  });
});

test("functions (\"Use Web API functions\"): WhoAmI; RetrievePrincipalAccess with a parameter alias, 404 for a user that does not exist", async () => {
  await withClient(async ({ api }) => {
    const me = await api.callFunction("WhoAmI");
    assert.equal(me.UserId, WHO_AM_I.UserId);
    // A bound function goes by its full name, as Microsoft's example calls it.
    const access = await api.callFunction({
      name: "Microsoft.Dynamics.CRM.RetrievePrincipalAccess",
      collection: "systemusers",
      key: me.UserId,
      parameters: { Target: { "@odata.id": `contacts(${id(1)})` } },
    });
    assert.match(access.AccessRights, /ReadAccess/);
    const nobody = await failure(api.callFunction({ name: "Microsoft.Dynamics.CRM.RetrievePrincipalAccess", collection: "systemusers", key: id(999), parameters: { Target: { "@odata.id": `contacts(${id(1)})` } } }));
    assert.equal(nobody.status, 404);
  });
});

// ----- FetchXML, change tracking, throttling ----------------------------------------------------

test("FetchXML (\"Query data using FetchXml\"): conditions, order and paging within the subset; anything else refused by name", async () => {
  await withClient(async ({ api }) => {
    const xml = `<fetch><entity name="contact"><attribute name="firstname"/><filter><condition attribute="lastname" operator="eq" value="Nowak"/></filter><order attribute="firstname"/></entity></fetch>`;
    const rows = await api.fetchAll({ collection: "contacts", fetchXml: xml });
    // Ordered as SQL Server's _CI_AI collation orders: Ż as Z, so "Żaneta" before "Zofia".
    assert.deepEqual(rows.value.map((r) => r.firstname), ["Żaneta", "Zofia"]);
    const like = `<fetch><entity name="contact"><attribute name="firstname"/><filter><condition attribute="lastname" operator="like" value="N%"/></filter></entity></fetch>`;
    const refused = await failure(api.fetch({ collection: "contacts", fetchXml: like }));
    assert.equal(refused.status, 400);
    assert.match(refused.message, /like/);
  });
});

test("change tracking (\"Use change tracking to synchronize data\"): a delta link, then only what changed since, deletions included", async () => {
  await withClient(async ({ api }) => {
    const first = await api.retrieveMultiple({ collection: "contacts", select: ["firstname"], trackChanges: true });
    assert.equal(first.value.length, 4);
    assert.ok(first.oDataDeltaLink, "a delta link");
    await api.update({ collection: "contacts", key: id(1), data: { firstname: "Anita" } });
    await api.deleteRecord({ collection: "contacts", key: id(4) });
    const delta = await api.retrieveMultiple({ collection: "contacts" }, first.oDataDeltaLink);
    const changed = delta.value.filter((r) => !r["@odata.context"]?.endsWith("$deletedEntity"));
    const deleted = delta.value.filter((r) => r["@odata.context"]?.endsWith("$deletedEntity"));
    assert.deepEqual(changed.map((r) => [r.contactid, r.firstname]), [[id(1), "Anita"]]);
    assert.deepEqual(deleted.map((r) => r.id), [id(4)]);
    assert.ok(delta.oDataDeltaLink, "a new delta link");
  });
});

test("service protection (\"Service protection API limits\"): 429 with Retry-After in seconds and Dataverse's error code", async () => {
  await withClient(async ({ api, dv }) => {
    dv.setFaults({ throttle: { every: 1, retryAfter: 2, count: 1 } });
    const limited = await failure(api.callFunction("WhoAmI"));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers["retry-after"], "2");
    assert.equal(limited.code, "0x80072322");
    assert.equal((await api.callFunction("WhoAmI")).UserId, WHO_AM_I.UserId);
  });
});
