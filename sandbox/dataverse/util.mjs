// Small helpers with no Dataverse knowledge of their own: plain-object test, times, base64url,
// XML attribute escapes, stable GUIDs, binary search, labels in metadata shape.
import { createHash } from "node:crypto";

export const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const nowIso = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
export const formatThousands = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
export const b64url = (text) => Buffer.from(text, "utf8").toString("base64url");
export const unb64url = (text) => Buffer.from(text, "base64url").toString("utf8");
export const xmlAttr = (s) => String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
export const xmlUnattr = (s) => String(s).replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** A stable GUID derived from text (for MetadataIds). */
export function guidFrom(text) {
  const h = createHash("sha1").update(text).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Index of the first element > key (upper) or ≥ key (lower) in a sorted string array. */
export function bound(sorted, key, upper) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (upper ? sorted[mid] <= key : sorted[mid] < key) lo = mid + 1;
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
