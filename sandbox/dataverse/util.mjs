// Small helpers with no Dataverse knowledge of their own: plain-object test, times, base64url,
// XML attribute escapes, stable GUIDs, binary search, labels in metadata shape.
import { createHash, randomBytes } from "node:crypto";

export const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const nowIso = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
export const formatThousands = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
export const b64url = (text) => Buffer.from(text, "utf8").toString("base64url");
export const unb64url = (text) => Buffer.from(text, "base64url").toString("utf8");
export const xmlAttr = (s) => String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
export const xmlUnattr = (s) => String(s).replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/**
 * Text as Dataverse's default collation compares it: case- and accent-insensitive (issue 28
 * records it: `'Zaneta'` matches `'Żaneta'`; an organisation's database is created with a
 * `_CI_AI` SQL Server collation). Letters are folded to lower case without their accents;
 * letters that are not a base letter and an accent (ł, ø, ß) stay as they are, which is where
 * this and SQL Server may differ.
 */
export const fold = (s) => String(s).normalize("NFD").replace(/\p{M}+/gu, "").toLowerCase();

/** `fold`, and trailing spaces ignored, as SQL Server's `=` and `<` ignore them (not `LIKE`). */
export const collate = (s) => fold(s).replace(/ +$/, "");

/**
 * The test of `contains`, `startswith` or `endswith` (`kind`) with `pattern`: Dataverse runs them
 * as SQL Server's LIKE, so `%` (any run), `_` (any one character), `[set]` and `[^set]` (one
 * character in or not in a set or range like `a-f`) are wildcards inside the value, and a
 * wildcard in brackets (`[%]`, `[_]`, `[[]`) is itself ("Use wildcard characters in conditions
 * for string values", learn.microsoft.com/power-apps/developer/data-platform/wildcard-characters).
 * Case and accents are folded as `fold` does. A `[` never closed is a literal `[`.
 */
export function likeTest(kind, pattern) {
  const p = fold(pattern);
  let re = kind === "startswith" ? "^" : "^[\\s\\S]*";
  const escape = (c) => c.replace(/[\\^$.*+?()[\]{}|\/-]/g, "\\$&");
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === "%") re += "[\\s\\S]*";
    else if (c === "_") re += "[\\s\\S]";
    else if (c === "[" && p.indexOf("]", i + 2) > 0) {
      const end = p.indexOf("]", i + 2);
      let set = p.slice(i + 1, end);
      const not = set.startsWith("^") && set.length > 1;
      if (not) set = set.slice(1);
      let cls = "";
      for (let j = 0; j < set.length; j++) {
        if (set[j + 1] === "-" && j + 2 < set.length) {
          cls += `${escape(set[j])}-${escape(set[j + 2])}`;
          j += 2;
        } else cls += escape(set[j]);
      }
      re += `[${not ? "^" : ""}${cls}]`;
      i = end;
    } else re += escape(c);
  }
  re += kind === "endswith" ? "$" : "[\\s\\S]*$";
  const compiled = new RegExp(re, "u");
  return (value) => compiled.test(fold(value));
}

/** A stable GUID derived from text (for MetadataIds). */
export function guidFrom(text) {
  const h = createHash("sha1").update(text).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const GUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Where a primary key sorts, as SQL Server orders `uniqueidentifier` (and so Dataverse pages
 * `$orderby=<id>` and compares `<id> gt …`): the stored bytes (the first three groups
 * little-endian) in the order .NET's `SqlGuid.Compare` takes them, 10–15, 8, 9, 6, 7, 4, 5,
 * 0–3. The last group of the text counts most; the text's own order is not the database's.
 * A key that is not a GUID sorts as its text.
 */
export function idOrder(id) {
  const s = String(id).toLowerCase();
  if (!GUID_TEXT.test(s)) return s;
  return s.slice(24) + s.slice(19, 23) + s.slice(16, 18) + s.slice(14, 16) + s.slice(11, 13) + s.slice(9, 11) + s.slice(6, 8) + s.slice(4, 6) + s.slice(2, 4) + s.slice(0, 2);
}

const made = { next: randomBytes(4).readUInt32BE(0), server: randomBytes(3).toString("hex"), clock: randomBytes(2).toString("hex") };

/**
 * A new row's id as Dataverse makes one: sequential in SQL Server's order ({@link idOrder}),
 * the last group Azure's `000d3a` and this server's own (real ids look so:
 * `0c03dc7d-6add-ea11-a813-000d3a21015b`). Their text's order is not their order.
 */
export function sequentialId() {
  const n = made.next++;
  const hex = (v, digits) => v.toString(16).padStart(digits, "0");
  // the counter's bytes, least significant first, as the first group's text holds them
  const first = [0, 8, 16, 24].map((shift) => hex((n >>> shift) & 0xff, 2)).join("");
  return `${first}-0000-ef11-${made.clock}-000d3a${made.server}`;
}

/** Primary keys in SQL Server's order ({@link idOrder}), each key's place computed once. */
export function sortIds(ids) {
  return [...ids].map((id) => [idOrder(id), id]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((pair) => pair[1]);
}

/** `sorted` (by {@link sortIds}) and the keys `added` (in any order) as one sorted array. */
export function mergeIds(sorted, added) {
  const more = sortIds(added);
  const out = new Array(sorted.length + more.length);
  let [i, j, n] = [0, 0, 0];
  const order = (keys, at) => (at < keys.length ? idOrder(keys[at]) : null);
  let [left, right] = [order(sorted, 0), order(more, 0)];
  while (i < sorted.length || j < more.length) {
    if (j >= more.length || (i < sorted.length && left <= right)) {
      out[n++] = sorted[i++];
      left = order(sorted, i);
    } else {
      out[n++] = more[j++];
      right = order(more, j);
    }
  }
  return out;
}

/** Index of the first element > key (upper) or ≥ key (lower) in primary keys sorted by {@link sortIds}. */
export function bound(sorted, key, upper) {
  const k = idOrder(key);
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = idOrder(sorted[mid]);
    if (upper ? m <= k : m < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A label in Dataverse metadata shape for `lcid`. */
export function labelOf(labels, lcid) {
  const entries = Object.entries(labels || {})
    .filter(([, text]) => typeof text === "string")
    .map(([code, text]) => ({ Label: text, LanguageCode: Number(code), IsManaged: false, MetadataId: guidFrom(`label:${code}:${text}`), HasChanged: null }));
  const user = entries.find((l) => l.LanguageCode === lcid) || entries.find((l) => l.LanguageCode === 1033) || entries[0] || null;
  return { LocalizedLabels: entries, UserLocalizedLabel: user };
}

export function pickLabel(labels, lcid) {
  if (!labels) return null;
  return labels[lcid] ?? labels[1033] ?? Object.values(labels)[0] ?? null;
}
