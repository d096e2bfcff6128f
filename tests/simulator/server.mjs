// An independent SALESmanago API v2 simulator. It follows the contract in
// docs/salesmanago-api.md plus the team's decisions where that document says
// "unknown" (see README.md next to this file). Node built-ins only.
import http from "node:http";
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";

export const DEFAULTS = Object.freeze({
  host: "127.0.0.1",
  port: 0,
  latencyMs: 0,
  // As the live API most likely is: no public evidence shows it answering a browser's origin.
  cors: false,
  clientId: "sim-client",
  apiSecret: "sim-secret-0123456789",
  owner: "owner@example.com",
  maxBatch: 1000,
  maxWindowDays: 30,
  exportDelayMs: 1500,
  // Generated activity on every contact's card: {perContact, seed?, since?, until?} (null: none).
  activity: null,
});

/**
 * The export job (docs/salesmanago-api.md §3.7): `contact/export/data` answers a `requestId`;
 * `job/status` answers a non-empty `message` while the file is prepared, then `fileUrl`; the file
 * is a JSON list of `{<contactId>: {...}}`. Public clients select contacts by tag; the shape of
 * the CONSENTS part is not documented: the simulator answers the shape consents are written in
 * (`consentName`, `consentAccept`, `optOut`, `agreementDate`), under `consents`.
 */
const EXPORT_DATA_TYPES = ["CONTACT", "TAG", "CONSENTS", "PROPERTIES", "EXT_EVENT"];

const SECOND_OWNER = { email: "second.owner@example.com", name: "Second Owner" };
const DAY_MS = 86_400_000;
const HANG_LIMIT_MS = 120_000;
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const MAX_LIST_BY_ID = 50;
const MAX_PAGE_SIZE = 1000;
const TEXT_FIELDS = ["name", "phone", "fax", "company", "externalId", "state"];
const ADDRESS_FIELDS = ["streetAddress", "zipCode", "city", "country"];
const FAULT_KEYS = ["latencyMs", "throttle", "serverError", "hang", "malformed", "rejectEmails", "cors"];
const PERIODIC_FAULTS = ["hang", "throttle", "serverError", "malformed"]; // precedence order
const CORS_HEADERS = Object.freeze({
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "POST, GET, OPTIONS",
  "access-control-allow-headers": "content-type, accept",
  "access-control-max-age": "600",
  "access-control-expose-headers": "Retry-After",
});

// ---------------------------------------------------------------------------------------------
// Failures

/** A business failure: HTTP 200 with {"success":false,"message":[message]}. */
class ApiFailure extends Error {}
/** A bad /__sim request: HTTP 400 (or `status`) with {"error": message}. */
class ControlError extends Error {
  constructor(message, status = 400) {
    super(message);
    this.status = status;
  }
}

const fail = (message) => {
  throw new ApiFailure(message);
};

// ---------------------------------------------------------------------------------------------
// Small value helpers

const isPlainObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

export function sha1Hex(text) {
  return createHash("sha1").update(text, "utf8").digest("hex");
}

export function normalizeEmail(raw) {
  return typeof raw === "string" ? raw.trim().toLowerCase() : "";
}

/** Trimmed, ≤254 chars, one "@", local part 1..64, a dot in the domain, printable ASCII only. */
export function isValidEmail(raw) {
  if (typeof raw !== "string") return false;
  const email = raw.trim();
  if (email.length === 0 || email.length > 254 || !/^[\x21-\x7e]+$/.test(email)) return false;
  const parts = email.split("@");
  if (parts.length !== 2) return false;
  const [local, domain] = parts;
  return local.length >= 1 && local.length <= 64 && domain.includes(".");
}

function requireValidEmail(raw) {
  if (!isValidEmail(raw)) fail(`Invalid email: ${raw ?? ""}`);
  return normalizeEmail(raw);
}

/** A non-negative integer from a number or a digit string, else null. */
function toInteger(value) {
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  if (typeof value === "string" && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return null;
}

function isNumeric(value) {
  if (typeof value === "number") return Number.isFinite(value);
  return typeof value === "string" && /^\d+(\.\d+)?$/.test(value.trim());
}

/** A text field: strings as given, numbers/booleans stringified, null/absent → undefined. */
function readText(value, label) {
  if (value == null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return fail(`Invalid value for ${label}`);
}

/** yyyyMMdd or MMdd of a real date; returns the string as kept (digits only). */
export function parseBirthday(value) {
  const text = typeof value === "number" ? String(value) : value;
  if (typeof text !== "string") fail("Invalid birthday");
  const full = /^(\d{4})(\d{2})(\d{2})$/.exec(text);
  const short = /^(\d{2})(\d{2})$/.exec(text);
  if (!full && !short) fail("Invalid birthday");
  const [year, month, day] = full ? full.slice(1).map(Number) : [2000, ...short.slice(1).map(Number)];
  const date = new Date(Date.UTC(year, month - 1, day));
  const real = date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  if (!real || year < 1) fail("Invalid birthday");
  return text;
}

function birthdayParts(birthday) {
  if (!birthday) return { birthdayYear: null, birthdayMonth: null, birthdayDay: null };
  const unpadded = (digits) => String(Number(digits));
  const monthDay = birthday.slice(-4);
  return {
    birthdayYear: birthday.length === 8 ? unpadded(birthday.slice(0, 4)) : null,
    birthdayMonth: unpadded(monthDay.slice(0, 2)),
    birthdayDay: unpadded(monthDay.slice(2)),
  };
}

/** Tags as the vendor SDK sends them: upper case, spaces → "_". Empty tags are dropped. */
function readTags(list, label) {
  if (list == null) return [];
  if (!Array.isArray(list)) fail(`${label} must be an array`);
  return list
    .map((tag) => readText(tag, label))
    .filter((tag) => tag !== undefined)
    .map((tag) => tag.trim().toUpperCase().replace(/ /g, "_"))
    .filter((tag) => tag !== "");
}

function readProperties(map) {
  if (map == null) return {};
  if (!isPlainObject(map)) fail("properties must be an object");
  const out = {};
  for (const [name, value] of Object.entries(map)) {
    const text = readText(value, `properties.${name}`);
    if (text !== undefined) out[name] = text;
  }
  return out;
}

function readConsent(item) {
  if (!isPlainObject(item) || typeof item.consentName !== "string" || item.consentName.trim() === "") {
    fail("consentName is a mandatory field");
  }
  let agreementDate = null;
  if (item.agreementDate != null) {
    agreementDate = toInteger(item.agreementDate);
    if (agreementDate === null) fail(`Invalid agreementDate for consent ${item.consentName}`);
  }
  return {
    consentName: item.consentName.trim(),
    consentAccept: item.consentAccept === true,
    optOut: item.optOut === true,
    agreementDate,
  };
}

function readConsents(list) {
  if (list == null) return [];
  if (!Array.isArray(list)) fail("consentDetails must be an array");
  return list.map(readConsent);
}

// ---------------------------------------------------------------------------------------------
// The contact store

function blankContact(email, owner) {
  return {
    id: randomUUID(),
    email,
    name: null,
    phone: null,
    fax: null,
    company: null,
    externalId: null,
    state: null,
    address: { streetAddress: null, zipCode: null, city: null, country: null },
    province: null,
    birthday: null,
    optedOut: false,
    optedOutPhone: false,
    score: 0,
    lastVisit: null, // ms
    mainContactOwner: owner,
    consents: new Map(), // upper-cased consentName → {consentName, consentAccept, optOut, agreementDate}
    consentHistory: [], // every change of a consent, oldest first: {consentName, consentAccept, optOut, agreementDate, at}
    tags: new Map(), // tag → createdOn (ms)
    properties: {},
    createdOn: 0,
    modifiedOn: 0,
    // Activity added through /__sim/activity: null until some is, so a million contacts cost
    // nothing; {emailMessages, contactVisits, contactExtEvents} after.
    activity: null,
    // What generated activity is derived from: the e-mail the contact was created with (ids of
    // upserted contacts are random), kept across renames.
    activityKey: email,
  };
}

/** Everything a client can change, as one comparable string. */
function fingerprint(contact) {
  const { createdOn, modifiedOn, tags, consents, activity, activityKey, ...rest } = contact;
  return JSON.stringify({
    ...rest,
    tags: [...tags.keys()].sort(),
    consents: [...consents.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  });
}

class ContactStore {
  #byEmail = new Map();
  #byId = new Map(); // id → contact, so lookups by id do not scan the store
  #lastModifiedOn = 0;

  /** max(now, last + 1): strictly increasing over the whole store. */
  nextModifiedOn() {
    this.#lastModifiedOn = Math.max(Date.now(), this.#lastModifiedOn + 1);
    return this.#lastModifiedOn;
  }

  noteModifiedOn(time) {
    this.#lastModifiedOn = Math.max(this.#lastModifiedOn, time);
  }

  get(email) {
    return this.#byEmail.get(normalizeEmail(email));
  }

  findById(id) {
    return typeof id === "string" ? this.#byId.get(id) : undefined;
  }

  /** Stores the contact under its (possibly new) e-mail, dropping the old key. */
  put(contact, previousEmail = contact.email) {
    this.#forget(this.#byEmail.get(previousEmail));
    this.#byEmail.delete(previousEmail);
    this.#forget(this.#byEmail.get(contact.email));
    this.#byEmail.set(contact.email, contact);
    this.#byId.set(contact.id, contact);
  }

  remove(email) {
    this.#forget(this.get(email));
    return this.#byEmail.delete(normalizeEmail(email));
  }

  /** Drops `contact` from the id index (a lookup by id must not find what is gone). */
  #forget(contact) {
    if (contact && this.#byId.get(contact.id) === contact) this.#byId.delete(contact.id);
  }

  all() {
    return [...this.#byEmail.values()];
  }

  clear() {
    this.#byEmail.clear();
    this.#byId.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Upsert

/** Validates one upsert body completely, before anything is changed. */
function readUpsert(item, rejectEmails) {
  if (!isPlainObject(item)) fail("Upsert details must be an object");
  const source = item.contact;
  if (!isPlainObject(source) || source.email == null) fail("contact.email is a mandatory field");
  const email = requireValidEmail(source.email);
  const newEmail = item.newEmail == null ? null : requireValidEmail(item.newEmail);
  for (const address of [email, newEmail]) {
    if (address && rejectEmails.has(address)) fail(`Contact rejected: ${address}`);
  }
  const address = source.address == null ? {} : source.address;
  if (!isPlainObject(address)) fail("contact.address must be an object");
  return {
    email,
    newEmail,
    text: Object.fromEntries(TEXT_FIELDS.map((field) => [field, readText(source[field], `contact.${field}`)])),
    address: Object.fromEntries(ADDRESS_FIELDS.map((field) => [field, readText(address[field], `address.${field}`)])),
    province: readText(item.province, "province"),
    birthday: item.birthday == null ? undefined : parseBirthday(item.birthday),
    optedOut: item.forceOptOut === true ? true : item.forceOptIn === true ? false : undefined,
    optedOutPhone: item.forcePhoneOptOut === true ? true : item.forcePhoneOptIn === true ? false : undefined,
    consents: readConsents(item.consentDetails),
    tags: readTags(item.tags, "tags"),
    removeTags: readTags(item.removeTags, "removeTags"),
    properties: readProperties(item.properties),
  };
}

function assignDefined(target, values) {
  for (const [key, value] of Object.entries(values)) if (value !== undefined) target[key] = value;
}

function applyConsent(contact, consent, now) {
  const key = consent.consentName.toUpperCase();
  const previous = contact.consents.get(key);
  const unchanged =
    previous && previous.consentAccept === consent.consentAccept && previous.optOut === consent.optOut;
  const agreementDate = consent.agreementDate ?? (unchanged ? previous.agreementDate : now);
  contact.consents.set(key, { ...consent, agreementDate });
  if (!unchanged) contact.consentHistory.push({ ...consent, consentName: key, agreementDate, at: now });
}

function applyUpsert(contact, request) {
  const now = Date.now();
  assignDefined(contact, request.text);
  assignDefined(contact.address, request.address);
  assignDefined(contact, {
    province: request.province,
    birthday: request.birthday,
    optedOut: request.optedOut,
    optedOutPhone: request.optedOutPhone,
  });
  for (const consent of request.consents) applyConsent(contact, consent, now);
  for (const tag of request.tags) if (!contact.tags.has(tag)) contact.tags.set(tag, now);
  for (const tag of request.removeTags) contact.tags.delete(tag);
  Object.assign(contact.properties, request.properties);
  if (request.newEmail) contact.email = request.newEmail;
}

/** Creates or updates one contact; bumps modifiedOn only when something changed. */
function upsertContact(store, item, owner, rejectEmails) {
  const request = readUpsert(item, rejectEmails);
  const existing = store.get(request.email);
  const target = request.newEmail ?? request.email;
  if (target !== request.email && store.get(target)) fail(`Contact ${target} already exists`);
  const contact = existing ?? blankContact(request.email, owner);
  const previousEmail = contact.email;
  const before = existing ? fingerprint(existing) : null;
  applyUpsert(contact, request);
  if (!existing) {
    contact.createdOn = contact.modifiedOn = store.nextModifiedOn();
  } else if (fingerprint(contact) !== before) {
    contact.modifiedOn = store.nextModifiedOn();
  }
  store.put(contact, previousEmail);
  return contact;
}

// ---------------------------------------------------------------------------------------------
// Views

function addressOrNull(address) {
  return ADDRESS_FIELDS.some((field) => address[field] != null) ? { ...address } : null;
}

function consentList(contact) {
  return [...contact.consents.values()].map((consent) => ({ ...consent }));
}

/**
 * contact/basic and contact/basicById: the flat shape of docs/salesmanago-api.md §3.4. No consents: no public
 * client of the live API reads them there (the vendor's PHP SDK and the C# client parse none).
 */
function basicView(contact) {
  return {
    contactId: contact.id,
    name: contact.name,
    email: contact.email,
    phone: contact.phone,
    fax: contact.fax,
    score: contact.score,
    state: contact.state,
    optedOut: contact.optedOut,
    optedOutPhone: contact.optedOutPhone,
    deleted: false,
    invalid: false,
    company: contact.company,
    externalId: contact.externalId,
    address: addressOrNull(contact.address),
    ...birthdayParts(contact.birthday),
    modifiedOn: contact.modifiedOn,
    createdOn: contact.createdOn,
    lastVisit: contact.lastVisit,
  };
}

/**
 * contact/listById: the full card of the VFIBER sample (no consents, as on basic), with the
 * contact's activity (generated by `plan`, then added) in the assumed formats.
 */
function cardView(contact, plan = null) {
  const activity = activityOf(contact, plan);
  return {
    id: contact.id,
    name: contact.name,
    email: contact.email,
    phone: contact.phone,
    fax: contact.fax,
    score: contact.score,
    state: contact.state,
    optedOut: contact.optedOut,
    optedOutPhone: contact.optedOutPhone,
    deleted: false,
    invalid: false,
    company: contact.company,
    externalId: contact.externalId,
    address: addressOrNull(contact.address),
    ...birthdayParts(contact.birthday),
    province: contact.province,
    mainContactOwner: contact.mainContactOwner,
    contactVisits: activity.contactVisits,
    contactEvents: [],
    emailMessages: activity.emailMessages,
    contactTags: [...contact.tags].map(([tag, createdOn]) => ({
      tag,
      tagName: tag,
      score: 1,
      createdOn,
      tagWithScore: `${tag} (1)`,
    })),
    properties: Object.entries(contact.properties).map(([name, value]) => ({ name, value })),
    contactFunnels: [],
    contactNotes: [],
    contactTasks: [],
    incomingEmailMessages: [],
    contactExtEvents: activity.contactExtEvents,
    coupons: [],
    smsMessages: [],
    modifiedOn: contact.modifiedOn,
    createdOn: contact.createdOn,
  };
}

/** One contact in an export file: the parts its `dataType`s ask for. */
function exportEntry(contact, types) {
  const entry = {};
  if (types.includes("CONTACT")) {
    entry.contactData = basicView(contact);
  }
  if (types.includes("TAG")) entry.tags = [...contact.tags.keys()];
  if (types.includes("CONSENTS")) entry.consents = consentList(contact);
  return entry;
}

/** The /__sim/contacts shape: the internal contact with consents and tags as arrays. */
function exportView(contact) {
  const { activity, activityKey, ...rest } = contact;
  return {
    ...rest,
    address: { ...contact.address },
    consents: consentList(contact),
    consentHistory: contact.consentHistory.map((change) => ({ ...change })),
    tags: [...contact.tags.keys()],
    properties: { ...contact.properties },
  };
}

/** Builds a stored contact from a /__sim/contacts seed item (throws ControlError). */
function seedContact(item, defaultOwner) {
  try {
    if (!isPlainObject(item)) fail("each seeded contact must be an object");
    const email = requireValidEmail(item.email);
    const request = readUpsert({ ...item, contact: { ...item, email }, consentDetails: item.consents }, new Set());
    const owner = item.mainContactOwner == null ? defaultOwner : readText(item.mainContactOwner, "mainContactOwner");
    const contact = blankContact(email, owner);
    if (item.id != null) contact.id = readText(item.id, "id");
    applyUpsert(contact, request);
    assignDefined(contact, { optedOut: item.optedOut, optedOutPhone: item.optedOutPhone });
    if (item.score != null) contact.score = toInteger(item.score) ?? fail("score must be an integer");
    if (item.lastVisit != null) contact.lastVisit = toInteger(item.lastVisit) ?? fail("lastVisit must be an integer");
    contact.modifiedOn = item.modifiedOn == null ? null : toInteger(item.modifiedOn);
    contact.createdOn = item.createdOn == null ? null : toInteger(item.createdOn);
    if (contact.modifiedOn === null && item.modifiedOn != null) fail("modifiedOn must be an integer");
    if (contact.createdOn === null && item.createdOn != null) fail("createdOn must be an integer");
    return contact;
  } catch (error) {
    if (error instanceof ApiFailure) throw new ControlError(error.message);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Activity (README "Activity (assumed formats)"; docs/salesmanago-api.md §3.10). Three lists on
// the full card, every time Unix ms:
//   emailMessages[]    {id, subject, sentOn, openedOn|null, clickedOn|null, bouncedOn|null, unsubscribedOn|null}
//   contactVisits[]    {conversationId, time, url, duration (seconds, a string), visitSource, host}
//   contactExtEvents[] {eventId, contactExtEventType, date, description, products|null, value|null, location|null, externalId|null}
// The formats are the team's assumptions; the engine parses exactly these.

export const ACTIVITY_KINDS = Object.freeze(["emailMessages", "contactVisits", "contactExtEvents"]);

/** Per kind: the id field, the time field, the other time fields (integer or null), the text fields and their defaults. */
const ACTIVITY_SHAPES = {
  emailMessages: {
    id: "id",
    time: "sentOn",
    times: ["openedOn", "clickedOn", "bouncedOn", "unsubscribedOn"],
    texts: { subject: "" },
  },
  contactVisits: {
    id: "conversationId",
    time: "time",
    times: [],
    texts: { url: "", visitSource: "direct", host: "" },
  },
  contactExtEvents: {
    id: "eventId",
    time: "date",
    times: [],
    texts: { description: "" },
  },
};

const emptyActivity = () => ({ emailMessages: [], contactVisits: [], contactExtEvents: [] });
const isTime = (value) => Number.isSafeInteger(value);

/** One added item, checked and completed; throws ControlError naming `label` (e.g. "emailMessages[2]"). */
function readActivityItem(kind, item, label) {
  const shape = ACTIVITY_SHAPES[kind];
  const bad = (message) => {
    throw new ControlError(`${label}${message}`);
  };
  if (!isPlainObject(item)) bad(" must be an object");
  const out = { ...item };
  const id = item[shape.id];
  if (id == null) out[shape.id] = randomUUID();
  else if (typeof id !== "string" || id.trim() === "") bad(`.${shape.id} must be a non-empty string`);
  if (!isTime(item[shape.time])) bad(`.${shape.time} must be an integer (Unix ms)`);
  for (const field of shape.times) {
    if (item[field] == null) out[field] = null;
    else if (!isTime(item[field])) bad(`.${field} must be an integer (Unix ms) or null`);
  }
  for (const [field, fallback] of Object.entries(shape.texts)) {
    if (item[field] === undefined) out[field] = fallback;
    else if (item[field] !== null && typeof item[field] !== "string") bad(`.${field} must be a string`);
  }
  if (kind === "contactVisits") {
    const duration = item.duration;
    if (duration === undefined || duration === null) out.duration = "0";
    else if (Number.isSafeInteger(duration) && duration >= 0) out.duration = String(duration);
    else if (typeof duration !== "string" || !/^\d+$/.test(duration)) bad(".duration must be seconds: a digit string or an integer >= 0");
  }
  if (kind === "contactExtEvents") {
    const type = item.contactExtEventType;
    if (typeof type !== "string" || type.trim() === "") bad('.contactExtEventType must be a non-empty string ("PURCHASE", "CART", …)');
    const products = item.products;
    if (products == null) out.products = null;
    else if (Array.isArray(products) && products.every((p) => typeof p === "string")) out.products = products.join(",");
    else if (typeof products !== "string") bad('.products must be a string ("p1,p2"), an array of strings or null');
    if (item.value == null) out.value = null;
    else if (typeof item.value !== "number" || !Number.isFinite(item.value)) bad(".value must be a number or null");
    for (const field of ["location", "externalId"]) {
      if (item[field] == null) out[field] = null;
      else if (typeof item[field] !== "string") bad(`.${field} must be a string or null`);
    }
  }
  return out;
}

const ACTIVITY_BODY_KEYS = new Set(["email", "contactId", "touch", ...ACTIVITY_KINDS]);

/**
 * Validates a /__sim/activity body ({email} or {contactId}, plus any of the three arrays, and
 * `touch`): returns {target, lists, touch}, every item checked and completed, or throws.
 */
function readActivityBody(body) {
  if (!isPlainObject(body)) throw new ControlError("the body must be a JSON object: {email | contactId, emailMessages?, contactVisits?, contactExtEvents?}");
  const unknown = Object.keys(body).filter((key) => !ACTIVITY_BODY_KEYS.has(key));
  if (unknown.length) throw new ControlError(`unknown keys: ${unknown.join(", ")} (expected email or contactId, and ${ACTIVITY_KINDS.join(", ")})`);
  const hasEmail = body.email != null;
  const hasId = body.contactId != null;
  if (hasEmail === hasId) throw new ControlError("name the contact by exactly one of email and contactId");
  const target = hasEmail ? body.email : body.contactId;
  if (typeof target !== "string" || target === "") throw new ControlError(`${hasEmail ? "email" : "contactId"} must be a non-empty string`);
  if (body.touch != null && typeof body.touch !== "boolean") throw new ControlError("touch must be true or false");
  const lists = {};
  for (const kind of ACTIVITY_KINDS) {
    if (body[kind] == null) continue;
    if (!Array.isArray(body[kind])) throw new ControlError(`${kind} must be an array`);
    lists[kind] = body[kind].map((item, i) => readActivityItem(kind, item, `${kind}[${i}]`));
  }
  return { byEmail: hasEmail, target, lists, touch: body.touch === true };
}

// --- generated activity --------------------------------------------------------------------

const DEFAULT_ACTIVITY_SINCE = Date.UTC(2025, 0, 1); // fixed, so two runs generate the same data
const ACTIVITY_SPAN_DAYS = 90;
const MAX_PER_CONTACT = 1000;
const HOUR_MS = 3_600_000;

/**
 * The generated-activity plan from `{perContact, seed?, since?, until?}` (null/undefined or
 * perContact 0: none). `Err` is the error class thrown (TypeError for options, ControlError at run time).
 */
export function readActivityPlan(input, Err = TypeError) {
  if (input == null) return null;
  if (!isPlainObject(input)) throw new Err("activity must be an object {perContact, seed?, since?, until?}");
  const unknown = Object.keys(input).filter((key) => !["perContact", "seed", "since", "until"].includes(key));
  if (unknown.length) throw new Err(`unknown activity keys: ${unknown.join(", ")}`);
  const { perContact = 0, seed = 1 } = input;
  if (!Number.isSafeInteger(perContact) || perContact < 0 || perContact > MAX_PER_CONTACT) {
    throw new Err(`activity.perContact must be an integer 0..${MAX_PER_CONTACT}`);
  }
  if (!(typeof seed === "string" || Number.isSafeInteger(seed))) throw new Err("activity.seed must be a string or an integer");
  const since = input.since ?? (input.until != null && isTime(input.until) ? input.until - ACTIVITY_SPAN_DAYS * DAY_MS : DEFAULT_ACTIVITY_SINCE);
  const until = input.until ?? since + ACTIVITY_SPAN_DAYS * DAY_MS;
  if (!isTime(since) || !isTime(until)) throw new Err("activity.since and activity.until must be integers (Unix ms)");
  if (since < 0) throw new Err(`activity.since must be >= 0 (by default it is ${ACTIVITY_SPAN_DAYS} days before activity.until)`);
  if (until <= since) throw new Err("activity.until must be after activity.since");
  if (perContact === 0) return null;
  return Object.freeze({ perContact, seed: String(seed), since, until });
}

/** sfc32: a small, fast generator of unsigned 32-bit words from four 32-bit words. */
function sfc32(a, b, c, d) {
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
}

/** The four 32-bit words every item of the contact `key` is drawn from: sha256(seed, key), once per card. */
function contactWords(seed, key) {
  const digest = createHash("sha256").update(`${seed}\u0000${key}`, "utf8").digest();
  return [digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12)];
}

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));
const hex8 = (word) => HEX_BYTES[word >>> 24] + HEX_BYTES[(word >>> 16) & 255] + HEX_BYTES[(word >>> 8) & 255] + HEX_BYTES[word & 255];

/** Item `index`'s UUID (v4 layout) and random stream: from the contact's words and the index alone. */
function itemEntropy(words, index) {
  const next = sfc32(words[0] ^ Math.imul(index + 1, 0x9e3779b9), words[1], words[2] ^ index, words[3]);
  for (let i = 0; i < 15; i += 1) next(); // mix the index in
  const x = hex8(next()) + hex8((next() & 0xffff0fff) | 0x4000) + hex8((next() & 0x3fffffff) | 0x80000000) + hex8(next());
  const id = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  return { id, random: () => next() / 4294967296 };
}

const pick = (random, list) => list[Math.floor(random() * list.length)];

/** A value from [[value, weight], …] (weights sum to 1). */
function weighted(random, table) {
  let r = random();
  for (const [value, weight] of table) {
    if (r < weight) return value;
    r -= weight;
  }
  return table[table.length - 1][0];
}

const SHOP_HOST = "shop.example.com";
const SUBJECTS = [
  "Spring sale: up to 30% off",
  "Your monthly newsletter",
  "New arrivals this week",
  "We miss you: here is 10% off",
  "Your order has shipped",
  "Invitation: product webinar",
  "Last chance: the offer ends tonight",
  "Tips to get the most from your purchase",
];
const PATHS = ["/", "/products", "/products/sku-1042", "/products/sku-2210", "/cart", "/checkout", "/blog/how-to-choose", "/contact", "/promotions", "/account"];
const VISIT_SOURCES = [["google", 0.4], ["direct", 0.3], ["newsletter", 0.1], ["facebook", 0.1], ["bing", 0.05], ["linkedin", 0.05]];
const EXT_EVENT_TYPES = [["PURCHASE", 0.3], ["CART", 0.25], ["VISIT", 0.15], ["MEETING", 0.1], ["OFFER", 0.1], ["DOWNLOAD", 0.1]];
const EXT_DESCRIPTIONS = {
  PURCHASE: "Order placed in the online shop",
  CART: "Products added to the cart",
  VISIT: "Visit in a store",
  MEETING: "Meeting with a sales representative",
  OFFER: "Offer sent",
  DOWNLOAD: "Downloaded the product catalogue",
};
const LOCATIONS = ["Warsaw store", "Kraków store", "Gdańsk store", "Head office"];

/** Item `index` of the contact with `words` (contactWords) under `plan`: [kind, item]. */
function generatedItem(plan, words, index) {
  const { id, random } = itemEntropy(words, index);
  const { since, until } = plan;
  const time = since + Math.floor(random() * (until - since)); // in [since, until)
  /** A moment after `t` (at most `maxDelay` later), never past `until`. */
  const after = (t, maxDelay) => Math.min(until, t + 1 + Math.floor(random() * maxDelay));
  const kind = random();
  if (kind < 0.6) {
    const message = { id, subject: pick(random, SUBJECTS), sentOn: time, openedOn: null, clickedOn: null, bouncedOn: null, unsubscribedOn: null };
    const fate = random();
    if (fate < 0.01) {
      message.bouncedOn = after(time, 10 * 60_000); // 1% bounce, and are never opened
    } else if (fate < 0.26) {
      message.openedOn = after(time, 72 * HOUR_MS); // 25% opened
      const then = random();
      if (then < 0.2) message.clickedOn = after(message.openedOn, HOUR_MS); // 5% of all clicked
      else if (then < 0.22) message.unsubscribedOn = after(message.openedOn, 10 * 60_000); // 0.5% of all
    }
    return ["emailMessages", message];
  }
  if (kind < 0.9) {
    const path = pick(random, PATHS);
    return [
      "contactVisits",
      {
        conversationId: id,
        time,
        url: `https://${SHOP_HOST}${path}`,
        duration: String(5 + Math.floor(random() * 900)),
        visitSource: weighted(random, VISIT_SOURCES),
        host: SHOP_HOST,
      },
    ];
  }
  const type = weighted(random, EXT_EVENT_TYPES);
  const priced = type === "PURCHASE" || type === "CART" || type === "OFFER";
  const products = priced
    ? Array.from({ length: 1 + Math.floor(random() * 3) }, () => `SKU-${1000 + Math.floor(random() * 9000)}`).join(",")
    : null;
  return [
    "contactExtEvents",
    {
      eventId: id,
      contactExtEventType: type,
      date: time,
      description: EXT_DESCRIPTIONS[type],
      products,
      value: priced ? Math.round((10 + random() * 990) * 100) / 100 : null,
      location: type === "MEETING" || type === "VISIT" ? pick(random, LOCATIONS) : null,
      externalId: type === "PURCHASE" ? `ORD-${String(Math.floor(random() * 1e8)).padStart(8, "0")}` : type === "OFFER" ? `OFF-${String(Math.floor(random() * 1e6)).padStart(6, "0")}` : null,
    },
  ];
}

const timeOf = (kind, item) => item[ACTIVITY_SHAPES[kind].time];

/**
 * The generated activity of the contact whose key (its e-mail at creation) is `key`: exactly
 * `plan.perContact` items, each list oldest first. Nothing is stored: a card derives it anew.
 * `plan` is the `activity` option: {perContact, seed?, since?, until?}.
 */
export function generateActivity(plan, key) {
  return generatedActivity(readActivityPlan(plan), key);
}

/** generateActivity with a plan from readActivityPlan (or null). */
function generatedActivity(plan, key) {
  const activity = emptyActivity();
  if (!plan) return activity;
  const words = contactWords(plan.seed, key);
  for (let index = 0; index < plan.perContact; index += 1) {
    const [kind, item] = generatedItem(plan, words, index);
    activity[kind].push(item);
  }
  for (const kind of ACTIVITY_KINDS) {
    const idField = ACTIVITY_SHAPES[kind].id;
    activity[kind].sort((a, b) => timeOf(kind, a) - timeOf(kind, b) || (a[idField] < b[idField] ? -1 : 1));
  }
  return activity;
}

/** The card's three lists: generated ones first (oldest first), then added ones in the order added. */
function activityOf(contact, plan) {
  const lists = generatedActivity(plan, contact.activityKey);
  if (contact.activity) {
    for (const kind of ACTIVITY_KINDS) for (const item of contact.activity[kind]) lists[kind].push({ ...item });
  }
  return lists;
}

// ---------------------------------------------------------------------------------------------
// API methods. Each handler gets (ctx, body) and returns the payload added to the success
// envelope, or throws ApiFailure.

function listParam(value, name) {
  if (value == null) fail(`${name} is a mandatory field`);
  return (Array.isArray(value) ? value : [value]).filter((entry) => typeof entry === "string");
}

function requireEmailField(body) {
  if (body.email == null || body.email === "") fail("email is a mandatory field");
  return body.email;
}

function unique(list) {
  return [...new Set(list)];
}

function readWindow(body) {
  if (body.from == null || body.to == null) fail("from and to are mandatory fields");
  const from = toInteger(body.from);
  const to = toInteger(body.to);
  if (from === null || to === null) fail("from and to must be timestamps in milliseconds");
  return { from, to };
}

function modifiedBetween(store, from, to) {
  return store
    .all()
    .filter((contact) => contact.modifiedOn >= from && contact.modifiedOn <= to)
    .sort((a, b) => a.modifiedOn - b.modifiedOn || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function readPaging(body) {
  const page = body.page == null ? 1 : toInteger(body.page);
  const size = body.size == null ? MAX_PAGE_SIZE : toInteger(body.size);
  if (page === null || page < 1) fail("page must be an integer >= 1");
  if (size === null || size < 1 || size > MAX_PAGE_SIZE) fail(`size must be an integer between 1 and ${MAX_PAGE_SIZE}`);
  return { page, size };
}

function setFlag(flag, value) {
  return (ctx, body) => {
    const contact = ctx.store.get(requireEmailField(body));
    if (!contact) fail("Contact not found");
    if (contact[flag] !== value) {
      contact[flag] = value;
      contact.modifiedOn = ctx.store.nextModifiedOn();
      // An API status change fires the rules, as `fireEvents` (true by default) has it.
      ctx.rules.fire(contact, flagEvent(flag, value));
    }
    return { contactId: contact.id };
  };
}

// ---------------------------------------------------------------------------------------------
// Automation rules (docs/salesmanago-api.md §3.9): an admin's rule with the action "Send
// information about executed rule (webhooks)" POSTs, once per contact it runs for, the JSON
// {id, name, contactId, description, email, phone, company} (every field a string), with HTTP
// Basic authentication when set. Assumed here, as nothing public says: the call is made once,
// right after the change, and not retried.

/** The rule events the simulator fires, and the rule named for each. */
export const RULE_EVENTS = Object.freeze({
  optout: "Contact has been opted out",
  optin: "Contact has been opted in",
  phoneoptout: "Contact has opted out from SMS subscription",
  phoneoptin: "Contact has been added to SMS subscription",
  details: "Modified contact details",
});

function flagEvent(flag, value) {
  if (flag === "optedOut") return value ? "optout" : "optin";
  return value ? "phoneoptout" : "phoneoptin";
}

/** The rules set up, and their calls; `fire` does nothing while none is. */
function ruleHooks() {
  let rules = null;
  const stats = { fired: 0, answered: 0, failed: 0 };
  const pending = new Set();
  return {
    stats: () => ({ ...stats, pending: pending.size }),
    get: () => (rules ? { url: rules.url, user: rules.user, events: [...rules.events] } : null),
    /** Sets the rules from `{url, user, password, events}` (null: none). */
    set(input) {
      if (input == null) return (rules = null);
      if (!isPlainObject(input) || typeof input.url !== "string" || !/^https?:\/\//.test(input.url)) {
        throw new ControlError("rules need a url (http:// or https://)");
      }
      const events = input.events ?? Object.keys(RULE_EVENTS);
      if (!Array.isArray(events) || !events.every((e) => Object.hasOwn(RULE_EVENTS, e))) {
        throw new ControlError(`rules.events must list some of ${Object.keys(RULE_EVENTS).join(", ")}`);
      }
      const auth = typeof input.user === "string" ? `Basic ${Buffer.from(`${input.user}:${input.password ?? ""}`).toString("base64")}` : null;
      rules = { url: input.url, user: input.user ?? null, auth, events: new Set(events) };
      return this.get();
    },
    fire(contact, event) {
      if (!rules || !rules.events.has(event)) return;
      stats.fired += 1;
      const body = JSON.stringify({ id: `rule-${event}`, name: RULE_EVENTS[event], contactId: contact.id, description: "", email: contact.email, phone: contact.phone ?? "", company: contact.company ?? "" });
      const headers = { "content-type": "application/json", ...(rules.auth ? { authorization: rules.auth } : {}) };
      const call = fetch(rules.url, { method: "POST", headers, body, signal: AbortSignal.timeout(30_000) })
        .then((response) => {
          stats[response.ok ? "answered" : "failed"] += 1;
          return response.arrayBuffer();
        })
        .catch(() => (stats.failed += 1))
        .finally(() => pending.delete(call));
      pending.add(call);
    },
    /** Resolves once no call is on its way. */
    async idle() {
      while (pending.size) await Promise.allSettled([...pending]);
    },
  };
}

const API_METHODS = {
  "contact/upsert": {
    owner: true,
    handle(ctx, body) {
      const contact = upsertContact(ctx.store, body, ctx.owner, ctx.rejectEmails());
      return { contactId: contact.id };
    },
  },
  // Reference §3.2: `insert` creates only; `update` updates only, the contact named by a
  // top-level `email`. Both take the upsert's fields and answer its `contactId`.
  "contact/insert": {
    owner: true,
    handle(ctx, body) {
      const email = isPlainObject(body.contact) && body.contact.email != null ? requireValidEmail(body.contact.email) : null;
      if (email && ctx.store.get(email)) fail(`Contact ${email} already exists`);
      const contact = upsertContact(ctx.store, body, ctx.owner, ctx.rejectEmails());
      return { contactId: contact.id };
    },
  },
  "contact/update": {
    owner: true,
    handle(ctx, body) {
      const email = requireValidEmail(requireEmailField(body));
      if (!ctx.store.get(email)) fail("Contact not found");
      const contact = isPlainObject(body.contact) ? body.contact : {};
      const item = { ...body, contact: { ...contact, email } };
      return { contactId: upsertContact(ctx.store, item, ctx.owner, ctx.rejectEmails()).id };
    },
  },
  "contact/export/data": {
    owner: true,
    handle(ctx, body) {
      if (!Array.isArray(body.contacts) || body.contacts.length === 0) fail("contacts is a mandatory field");
      const tags = body.contacts.map((selection) => {
        if (!isPlainObject(selection) || selection.addresseeType !== "tag" || typeof selection.value !== "string") {
          fail('contacts holds {"addresseeType":"tag","value":"…"} selections');
        }
        return selection.value.trim().toUpperCase().replace(/ /g, "_");
      });
      if (!Array.isArray(body.data) || body.data.length === 0) fail("data is a mandatory field");
      const types = body.data.map((item) => (isPlainObject(item) ? item.dataType : null));
      const unknown = types.find((type) => !EXPORT_DATA_TYPES.includes(type));
      if (unknown !== undefined) fail(`Unknown dataType ${unknown}`);
      const chosen = ctx.store.all().filter((contact) => tags.some((tag) => contact.tags.has(tag)));
      return { requestId: ctx.exports.create(chosen, types) };
    },
  },
  "job/status": {
    owner: false,
    handle(ctx, body) {
      const job = ctx.exports.get(body.requestId);
      if (!job) fail("Job not found");
      if (!job.file || Date.now() < job.readyAt) return { message: ["The export is being prepared"] };
      return { fileUrl: `${ctx.baseUrl()}/files/${job.id}.json` };
    },
  },
  "contact/batchupsert": {
    owner: true,
    handle(ctx, body) {
      if (!Array.isArray(body.upsertDetails)) fail("upsertDetails is a mandatory field");
      const max = ctx.options.maxBatch;
      if (body.upsertDetails.length > max) fail(`Too many contacts in one request (max ${max})`);
      const message = [];
      const contactIds = {};
      for (const item of body.upsertDetails) {
        try {
          const contact = upsertContact(ctx.store, item, ctx.owner, ctx.rejectEmails());
          contactIds[contact.email] = contact.id;
        } catch (error) {
          if (!(error instanceof ApiFailure)) throw error;
          message.push(itemFailure(item, error.message));
        }
      }
      return { message, contactIds };
    },
  },
  "contact/delete": {
    owner: true,
    handle(ctx, body) {
      if (!ctx.store.remove(requireEmailField(body))) fail("Contact not found");
      return { result: null };
    },
  },
  "contact/hasContact": {
    owner: true,
    handle(ctx, body) {
      const contact = ctx.store.get(requireEmailField(body));
      return { result: Boolean(contact), contactId: contact ? contact.id : null };
    },
  },
  "contact/basic": {
    owner: true,
    handle(ctx, body) {
      const emails = unique(listParam(body.email, "email").map(normalizeEmail));
      return { contacts: emails.map((email) => ctx.store.get(email)).filter(Boolean).map(basicView) };
    },
  },
  "contact/basicById": {
    owner: true,
    handle(ctx, body) {
      const ids = unique(listParam(body.id, "id"));
      return { contacts: ids.map((id) => ctx.store.findById(id)).filter(Boolean).map(basicView) };
    },
  },
  "contact/listById": {
    owner: true,
    handle(ctx, body) {
      const ids = listParam(body.contactId, "contactId");
      if (ids.length > MAX_LIST_BY_ID) fail(`Up to ${MAX_LIST_BY_ID} contacts at once`);
      const plan = ctx.activityPlan();
      return { contacts: unique(ids).map((id) => ctx.store.findById(id)).filter(Boolean).map((contact) => cardView(contact, plan)) };
    },
  },
  "contact/modifiedContacts": {
    owner: true,
    handle(ctx, body) {
      const { from, to } = readWindow(body);
      const modified = modifiedBetween(ctx.store, from, to);
      return { modifiedContacts: modified.map((contact) => ({ id: contact.id, email: contact.email })) };
    },
  },
  "contact/paginatedModifiedContacts": {
    owner: true,
    handle(ctx, body) {
      const { from, to } = readWindow(body);
      if (from > to) fail("from must not be after to");
      const maxDays = ctx.options.maxWindowDays;
      if (to - from > maxDays * DAY_MS) fail(`Date range too long (max ${maxDays} days)`);
      const { page, size } = readPaging(body);
      const modified = modifiedBetween(ctx.store, from, to);
      const slice = modified.slice((page - 1) * size, page * size);
      return {
        modifiedContacts: slice.map((c) => ({ contactId: c.id, id: c.id, email: c.email, modifiedOn: c.modifiedOn })),
        hasMore: page * size < modified.length,
      };
    },
  },
  "user/listByClient": {
    owner: false,
    handle: (ctx) => ({ users: ctx.users.map((user) => ({ ...user })) }),
  },
  "contact/optin": { owner: false, handle: setFlag("optedOut", false) },
  "contact/optout": { owner: false, handle: setFlag("optedOut", true) },
  "contact/phoneoptin": { owner: false, handle: setFlag("optedOutPhone", false) },
  "contact/phoneoptout": { owner: false, handle: setFlag("optedOutPhone", true) },
};

/** One batch failure line; it always names the item's e-mail. */
function itemFailure(item, message) {
  const email = isPlainObject(item) && isPlainObject(item.contact) ? item.contact.email : undefined;
  const named = typeof email === "string" && (message.includes(email) || message.includes(normalizeEmail(email)));
  return named ? message : `${email ?? "(no email)"}: ${message}`;
}

// ---------------------------------------------------------------------------------------------
// Authentication and owner

function constantTimeEqual(a, b) {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function isAuthenticated(body, account) {
  const { clientId, apiKey, sha, requestTime } = body;
  if (typeof clientId !== "string" || clientId !== account.clientId) return false;
  if (typeof apiKey !== "string" || apiKey === "" || typeof sha !== "string") return false;
  if (!isNumeric(requestTime)) return false;
  return constantTimeEqual(sha, sha1Hex(apiKey + clientId + account.apiSecret));
}

/** The account user's e-mail (as the account spells it) that `owner` names. */
function resolveOwner(owner, users) {
  if (owner == null || owner === "") fail("owner is a mandatory field");
  const wanted = String(owner).toLowerCase();
  const user = users.find((candidate) => candidate.email.toLowerCase() === wanted);
  if (!user) fail(`Owner ${owner} not found`);
  return user.email;
}

// ---------------------------------------------------------------------------------------------
// Faults

function positiveInteger(value, label) {
  if (!Number.isSafeInteger(value) || value < 1) throw new ControlError(`${label} must be an integer >= 1`);
  return value;
}

function nonNegativeInteger(value, label) {
  if (!Number.isSafeInteger(value) || value < 0) throw new ControlError(`${label} must be an integer >= 0`);
  return value;
}

function readPeriodic(value, name) {
  if (!isPlainObject(value)) throw new ControlError(`${name} must be an object`);
  const periodic = { every: positiveInteger(value.every, `${name}.every`) };
  if (value.count != null) periodic.count = positiveInteger(value.count, `${name}.count`);
  return periodic;
}

/** Validates a POSTed fault set and fills in defaults. */
export function normalizeFaults(input) {
  if (!isPlainObject(input)) throw new ControlError("the fault set must be a JSON object");
  const unknown = Object.keys(input).filter((key) => !FAULT_KEYS.includes(key));
  if (unknown.length > 0) throw new ControlError(`unknown fault keys: ${unknown.join(", ")}`);
  const faults = {};
  if (input.latencyMs != null) faults.latencyMs = nonNegativeInteger(input.latencyMs, "latencyMs");
  if (input.throttle != null) {
    const retryAfter = input.throttle.retryAfter ?? 1;
    faults.throttle = { ...readPeriodic(input.throttle, "throttle"), retryAfter: nonNegativeInteger(retryAfter, "throttle.retryAfter") };
  }
  if (input.serverError != null) {
    const status = input.serverError.status ?? 503;
    if (!Number.isSafeInteger(status) || status < 400 || status > 599) {
      throw new ControlError("serverError.status must be an HTTP status between 400 and 599");
    }
    faults.serverError = { ...readPeriodic(input.serverError, "serverError"), status };
  }
  if (input.hang != null) faults.hang = readPeriodic(input.hang, "hang");
  if (input.malformed != null) faults.malformed = readPeriodic(input.malformed, "malformed");
  if (input.rejectEmails != null) {
    if (!Array.isArray(input.rejectEmails) || !input.rejectEmails.every((e) => typeof e === "string")) {
      throw new ControlError("rejectEmails must be an array of strings");
    }
    faults.rejectEmails = unique(input.rejectEmails.map(normalizeEmail));
  }
  if (input.cors != null) {
    if (typeof input.cors !== "boolean") throw new ControlError("cors must be a boolean");
    faults.cors = input.cors;
  }
  return faults;
}

/** The active fault set and the call counter it is measured against. */
class FaultPlan {
  faults = {};
  #call = 0;
  #fired = {};

  replace(faults) {
    this.faults = faults;
    this.#call = 0;
    this.#fired = {};
  }

  /** Counts one /api call and returns the periodic fault that fires on it, if any. */
  nextCall() {
    this.#call += 1;
    for (const name of PERIODIC_FAULTS) {
      const fault = this.faults[name];
      if (!fault || this.#call % fault.every !== 0) continue;
      const fired = this.#fired[name] ?? 0;
      if (fault.count != null && fired >= fault.count) continue;
      this.#fired[name] = fired + 1;
      return { name, ...fault };
    }
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

function sendJson(res, status, payload, headers = {}) {
  sendRaw(res, status, JSON.stringify(payload), { "content-type": "application/json", ...headers });
}

/**
 * The export file of `contacts` with the parts `types` ask for, in bytes, built as SALESmanago
 * builds it: after `contact/export/data` has answered, 10,000 contacts at a time with a turn of
 * the event loop between them, so a large account's file never holds up the calls meanwhile (a
 * million contacts built in the call outlasted the engine's call timeout); written a slice at a
 * time, since a million entries are more text than one JavaScript string may hold. `null` once
 * `stopped()`.
 */
async function exportFile(contacts, types, stopped) {
  const parts = [];
  for (let i = 0; i < contacts.length; i += 10_000) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    if (stopped()) return null;
    const entries = contacts.slice(i, i + 10_000).map((contact) => JSON.stringify({ [contact.id]: exportEntry(contact, types) }));
    parts.push(Buffer.from((i === 0 ? "" : ",") + entries.join(",")));
  }
  return Buffer.concat([Buffer.from("["), ...parts, Buffer.from("]")]);
}

function sendRaw(res, status, body, headers) {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

const failure = (...message) => ({ success: false, message });

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseJsonObject(text) {
  try {
    const value = JSON.parse(text);
    return isPlainObject(value) ? value : null;
  } catch {
    return null;
  }
}

function validateOptions(options) {
  const merged = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  const check = (ok, message) => {
    if (!ok) throw new TypeError(message);
  };
  check(Number.isSafeInteger(merged.port) && merged.port >= 0 && merged.port <= 65535, "port must be 0..65535");
  check(Number.isSafeInteger(merged.latencyMs) && merged.latencyMs >= 0, "latencyMs must be an integer >= 0");
  check(Number.isSafeInteger(merged.maxBatch) && merged.maxBatch >= 1, "maxBatch must be an integer >= 1");
  check(Number.isSafeInteger(merged.maxWindowDays) && merged.maxWindowDays >= 1, "maxWindowDays must be an integer >= 1");
  check(typeof merged.clientId === "string" && merged.clientId !== "", "clientId must be a non-empty string");
  check(typeof merged.apiSecret === "string" && merged.apiSecret !== "", "apiSecret must be a non-empty string");
  check(isValidEmail(merged.owner), "owner must be a valid e-mail");
  check(typeof merged.cors === "boolean", "cors must be a boolean");
  check(Number.isSafeInteger(merged.exportDelayMs) && merged.exportDelayMs >= 0, "exportDelayMs must be an integer >= 0");
  merged.activity = readActivityPlan(merged.activity, TypeError);
  return merged;
}

function urlFor(address) {
  const host = address.family === "IPv6" || address.family === 6 ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

// ---------------------------------------------------------------------------------------------
// The server

/**
 * Starts a simulator. Options (all optional): host, port, latencyMs, cors, clientId, apiSecret,
 * owner, maxBatch, maxWindowDays, exportDelayMs, activity ({perContact, seed?, since?, until?}:
 * generated activity on every card). Resolves once listening.
 */
export async function startSimulator(options = {}) {
  const config = validateOptions(options);
  const account = { clientId: config.clientId, apiSecret: config.apiSecret };
  const defaultOwner = config.owner.trim();
  const users = [{ email: defaultOwner, name: "Simulated Owner" }];
  if (defaultOwner.toLowerCase() !== SECOND_OWNER.email) users.push({ ...SECOND_OWNER });

  const store = new ContactStore();
  const plan = new FaultPlan();
  const rules = ruleHooks();
  let activityPlan = config.activity;
  const exportJobs = new Map();
  let nextJob = 1000;
  let baseUrl = "";
  const exports = {
    /** Starts the export of `contacts`; its file is ready once built and `exportDelayMs` have passed. */
    create(contacts, types) {
      const id = nextJob++;
      const job = { id, readyAt: Date.now() + config.exportDelayMs, file: null };
      exportJobs.set(id, job);
      exportFile(contacts, types, () => closing !== null).then((file) => {
        job.file = file;
      });
      return id;
    },
    get: (requestId) => exportJobs.get(Number(requestId)),
  };
  let stats = { calls: {}, total: 0 };
  const timers = new Set();
  const listeners = new Set(); // fn(method, body, envelope, at): told after each answered call

  const rejectEmails = () => new Set(plan.faults.rejectEmails ?? []);
  const apiCors = () => config.cors && plan.faults.cors !== false;
  const corsFor = (enabled) => (enabled ? CORS_HEADERS : {});

  function sleep(ms) {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });
  }

  /** Holds the request unanswered; the socket is destroyed after HANG_LIMIT_MS or on close. */
  function hold(res) {
    const timer = setTimeout(() => {
      timers.delete(timer);
      res.socket?.destroy();
    }, HANG_LIMIT_MS);
    timer.unref();
    timers.add(timer);
    res.on("close", () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  }

  function countCall(method) {
    stats.calls[method] = (stats.calls[method] ?? 0) + 1;
    stats.total += 1;
    return plan.nextCall();
  }

  /** Answers with the fault; returns false when no fault fired. */
  function applyFault(fault, res, cors) {
    if (!fault) return false;
    const headers = corsFor(cors);
    if (fault.name === "hang") hold(res);
    if (fault.name === "throttle") {
      sendJson(res, 429, failure("Too many requests"), { ...headers, "retry-after": String(fault.retryAfter) });
    }
    if (fault.name === "serverError") {
      const html = `<html><body><h1>${fault.status} ${http.STATUS_CODES[fault.status] ?? "Error"}</h1></body></html>`;
      sendRaw(res, fault.status, html, { ...headers, "content-type": "text/html; charset=utf-8" });
    }
    if (fault.name === "malformed") sendRaw(res, 200, '{"success":tr', { ...headers, "content-type": "application/json" });
    return true;
  }

  /** Runs one API method on a parsed body: auth, owner, handler. Returns the envelope. */
  function callMethod(name, method, body) {
    if (!isAuthenticated(body, account)) return failure("Not authenticated");
    try {
      const ctx = { store, users, options: config, rejectEmails, owner: null, exports, baseUrl: () => baseUrl, rules, activityPlan: () => activityPlan };
      if (method.owner) ctx.owner = resolveOwner(body.owner, users);
      const { message = [], ...payload } = method.handle(ctx, body);
      const envelope = { success: true, message, ...payload };
      for (const fn of listeners) fn(name, body, envelope, Date.now());
      return envelope;
    } catch (error) {
      if (error instanceof ApiFailure) return failure(error.message);
      throw error;
    }
  }

  async function handleApi(req, res, path) {
    const cors = apiCors();
    const headers = corsFor(cors);
    if (req.method === "OPTIONS") return sendRaw(res, 204, "", headers);
    const name = path.slice("/api/".length);
    const fault = countCall(name);
    const text = await readBody(req);
    await sleep(plan.faults.latencyMs ?? config.latencyMs);
    if (applyFault(fault, res, cors)) return undefined;
    if (req.method !== "POST") return sendJson(res, 405, failure(`Method ${req.method} not allowed`), headers);
    const method = Object.hasOwn(API_METHODS, name) ? API_METHODS[name] : null;
    if (!method) return sendJson(res, 404, failure(`Unknown method ${name}`), headers);
    if (text === null) return sendJson(res, 413, failure("Request body too large"), headers);
    const body = parseJsonObject(text);
    if (!body) return sendJson(res, 400, failure("Malformed JSON"), headers);
    return sendJson(res, 200, callMethod(name, method, body), headers);
  }

  function seed(items) {
    if (!Array.isArray(items)) throw new ControlError("seed with a JSON array of contacts");
    const contacts = items.map((item) => seedContact(item, defaultOwner));
    for (const contact of contacts) {
      // Replacing a contact keeps its activity: the person's history is not part of a seed.
      const replaced = store.get(contact.email);
      if (replaced) Object.assign(contact, { activity: replaced.activity, activityKey: replaced.activityKey });
      contact.modifiedOn ??= store.nextModifiedOn();
      contact.createdOn ??= contact.modifiedOn;
      store.noteModifiedOn(contact.modifiedOn);
      store.put(contact);
    }
    return contacts.map(exportView);
  }

  /**
   * A change made in SALESmanago's app (not through the API): `{email, optedOut?, optedOutPhone?,
   * name?}`; the rules fire for what changed. Answers the contact.
   */
  function change(input) {
    if (!isPlainObject(input) || typeof input.email !== "string") throw new ControlError("change a contact named by its email");
    const contact = store.get(input.email);
    if (!contact) throw new ControlError(`no contact ${input.email}`);
    const events = [];
    for (const flag of ["optedOut", "optedOutPhone"]) {
      if (input[flag] === undefined) continue;
      if (typeof input[flag] !== "boolean") throw new ControlError(`${flag} must be true or false`);
      if (contact[flag] !== input[flag]) {
        contact[flag] = input[flag];
        events.push(flagEvent(flag, input[flag]));
      }
    }
    if (input.name !== undefined) {
      if (typeof input.name !== "string") throw new ControlError("name must be text");
      if (contact.name !== input.name) {
        contact.name = input.name;
        events.push("details");
      }
    }
    if (events.length) contact.modifiedOn = store.nextModifiedOn();
    for (const event of events) rules.fire(contact, event);
    return exportView(contact);
  }

  /**
   * Appends activity to one contact: `{email | contactId, emailMessages?, contactVisits?,
   * contactExtEvents?, touch?}`, all checked before anything is stored. Fires no rule; bumps
   * `modifiedOn` only with `touch: true`. Answers {added}.
   */
  function addActivity(input) {
    const request = readActivityBody(input);
    const contact = request.byEmail ? store.get(request.target) : store.findById(request.target);
    if (!contact) throw new ControlError(`no contact ${request.target}`, 404);
    let added = 0;
    for (const [kind, items] of Object.entries(request.lists)) {
      contact.activity ??= emptyActivity();
      contact.activity[kind].push(...items);
      added += items.length;
    }
    if (request.touch) contact.modifiedOn = store.nextModifiedOn();
    return { added };
  }

  function setActivityPlan(input) {
    activityPlan = readActivityPlan(input, ControlError);
    return activityPlan;
  }

  function setFaults(input) {
    plan.replace(normalizeFaults(input));
    return plan.faults;
  }

  function reset() {
    store.clear();
    plan.replace({});
    stats = { calls: {}, total: 0 };
  }

  const controls = {
    // `?every=N`: every Nth contact only (the first, the N+1st, …), so a bench of a million
    // contacts can sample them without one answer of hundreds of megabytes.
    "GET /__sim/contacts": (_, query) => sampled(store.all(), query.get("every")).map(exportView),
    "POST /__sim/contacts": (body) => seed(body),
    "GET /__sim/faults": () => plan.faults,
    "POST /__sim/faults": (body) => setFaults(body),
    "GET /__sim/stats": () => stats,
    "POST /__sim/reset": () => (reset(), { reset: true }),
    "GET /__sim/rules": () => ({ rules: rules.get(), ...rules.stats() }),
    "POST /__sim/rules": (body) => ({ rules: rules.set(body) }),
    "POST /__sim/change": (body) => change(body),
    "POST /__sim/activity": (body) => addActivity(body),
    "GET /__sim/activity/plan": () => ({ plan: activityPlan }),
    "POST /__sim/activity/plan": (body) => ({ plan: setActivityPlan(body) }),
  };

  function sampled(contacts, every) {
    if (every === null) return contacts;
    const n = Number(every);
    if (!Number.isInteger(n) || n < 1) throw new ControlError(`every takes a whole number ≥ 1, not ${every}`);
    return contacts.filter((_, i) => i % n === 0);
  }

  async function handleControl(req, res, path, query) {
    if (req.method === "OPTIONS") return sendRaw(res, 204, "", CORS_HEADERS);
    const control = controls[`${req.method} ${path}`];
    if (!control) return sendJson(res, 404, { error: `Unknown control endpoint ${req.method} ${path}` }, CORS_HEADERS);
    const text = await readBody(req);
    let body;
    if (req.method === "POST") {
      try {
        body = text === "" ? {} : JSON.parse(text ?? "");
      } catch {
        return sendJson(res, 400, { error: "Malformed JSON" }, CORS_HEADERS);
      }
    }
    try {
      return sendJson(res, 200, control(body, query), CORS_HEADERS);
    } catch (error) {
      if (error instanceof ControlError) return sendJson(res, error.status, { error: error.message }, CORS_HEADERS);
      throw error;
    }
  }

  async function route(req, res) {
    const url = new URL(req.url, "http://simulator");
    const path = url.pathname;
    if (path.startsWith("/__sim/")) return handleControl(req, res, path, url.searchParams);
    if (path.startsWith("/api/")) return handleApi(req, res, path);
    const headers = corsFor(apiCors());
    const file = path.match(/^\/files\/(\d+)\.json$/);
    if (file && req.method === "GET") {
      const job = exports.get(file[1]);
      if (!job || !job.file || Date.now() < job.readyAt) return sendJson(res, 404, failure(`Not found: ${path}`), headers);
      return sendRaw(res, 200, job.file, { ...headers, "content-type": "application/json" });
    }
    if (req.method === "OPTIONS") return sendRaw(res, 204, "", headers);
    return sendJson(res, 404, failure(`Not found: ${path}`), headers);
  }

  const server = http.createServer((req, res) => {
    route(req, res).catch(() => {
      // Never echo request bodies (they carry apiKey/sha); a short generic answer is enough.
      sendJson(res, 500, failure("Internal simulator error"));
    });
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  let closing = null;
  function close() {
    closing ??= new Promise((resolve) => {
      server.close(() => resolve());
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
    });
    return closing;
  }

  const address = server.address();
  baseUrl = urlFor(address);
  return {
    url: urlFor(address),
    host: address.address,
    port: address.port,
    clientId: account.clientId,
    apiSecret: account.apiSecret,
    owner: defaultOwner,
    owners: users.map((user) => user.email),
    /** Auth fields for one request: {clientId, apiKey, requestTime, sha}. */
    auth(apiKey = randomUUID()) {
      return { clientId: account.clientId, apiKey, requestTime: Date.now(), sha: sha1Hex(apiKey + account.clientId + account.apiSecret) };
    },
    contacts: () => store.all().map(exportView),
    seed: (items) => seed(items),
    setFaults,
    faults: () => plan.faults,
    stats: () => structuredClone(stats),
    /** `onCall(fn)`: `fn(name, body, envelope, at)` after each call that succeeded; returns its removal. */
    onCall(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** `rules({url, user, password, events})`: the automation rules that call out (null: none). */
    rules: (input) => rules.set(input),
    ruleStats: () => rules.stats(),
    /** Resolves once every rule call made so far was answered. */
    rulesIdle: () => rules.idle(),
    /** `change({email, optedOut?, optedOutPhone?, name?})`: a change in SALESmanago's app. */
    change,
    /**
     * `addActivity(emailOrId, {emailMessages?, contactVisits?, contactExtEvents?, touch?})`:
     * appends activity to the contact with that e-mail (or else that id); answers {added}. Throws
     * (error.status 400 or 404) on bad input, having stored nothing.
     */
    addActivity(emailOrId, items = {}) {
      if (typeof emailOrId !== "string" || emailOrId === "") throw new ControlError("addActivity(emailOrId, items): name the contact");
      if (!isPlainObject(items)) throw new ControlError("addActivity(emailOrId, items): items must be an object");
      const byEmail = store.get(emailOrId) !== undefined || (store.findById(emailOrId) === undefined && emailOrId.includes("@"));
      return addActivity({ ...items, ...(byEmail ? { email: emailOrId } : { contactId: emailOrId }) });
    },
    /** `setActivityPlan({perContact, seed?, since?, until?} | null)`: the generated activity from now on. */
    setActivityPlan,
    activityPlan: () => activityPlan,
    reset,
    close,
  };
}
