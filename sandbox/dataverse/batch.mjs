// $batch: a multipart/mixed body of operations and change sets, parsed, run in order (a change
// set all or nothing: rolled back as a whole when one of its operations fails) and answered as
// multipart/mixed. `$n` in a change set refers to the row its Content-ID n created.
import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import { badQuery, notFoundSegment } from "./errors.mjs";
import { API_PREFIX, contextFor, errorResponse } from "./odata.mjs";
import { execute, executeAlone } from "./routes.mjs";

export const MAX_BATCH_OPERATIONS = 1000;

function boundaryOf(contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || "");
  return m ? m[1] || m[2] : null;
}

/** Splits a multipart body into parts of {headers (lower-case), lines}. */
function splitMultipart(text, boundary) {
  const lines = text.split(/\r?\n/);
  const delimiter = `--${boundary}`;
  const close = `--${boundary}--`;
  const parts = [];
  let current = null;
  let closed = false;
  for (const line of lines) {
    const trimmed = line.trimEnd();
    if (trimmed === close) {
      if (current) parts.push(current);
      current = null;
      closed = true;
      break;
    }
    if (trimmed === delimiter) {
      if (current) parts.push(current);
      current = [];
      continue;
    }
    if (current) current.push(line);
  }
  if (!closed) throw badQuery(`The batch body does not end with the closing delimiter '${close}'.`);
  return parts.map((partLines) => {
    const headers = {};
    let i = 0;
    for (; i < partLines.length; i++) {
      const line = partLines[i];
      if (line.trim() === "") break;
      const colon = line.indexOf(":");
      if (colon <= 0) throw badQuery(`Malformed MIME part header in batch: '${line}'.`);
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { headers, lines: partLines.slice(i + 1) };
  });
}

/** An application/http part → {method, target, headers, body, contentId}. */
function parseHttpPart(part) {
  const type = (part.headers["content-type"] || "").toLowerCase();
  if (!type.startsWith("application/http")) throw badQuery(`A batch part must have Content-Type application/http (or multipart/mixed for a change set), not '${part.headers["content-type"] || ""}'.`);
  const lines = part.lines;
  let i = 0;
  while (i < lines.length && lines[i].trim() === "") i++;
  const requestLine = /^([A-Z]+)\s+(.+?)(?:\s+HTTP\/1\.[01])?\s*$/.exec(lines[i] || "");
  if (!requestLine) throw badQuery(`Malformed request line in batch: '${lines[i] || ""}'.`);
  i++;
  const headers = {};
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") break;
    const colon = line.indexOf(":");
    if (colon <= 0) throw badQuery(`Malformed request header in batch: '${line}'.`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = lines.slice(i + 1).join("\n").trim();
  const contentId = part.headers["content-id"] ?? headers["content-id"] ?? null;
  return { method: requestLine[1], target: requestLine[2], headers, body, contentId };
}

export function parseBatch(contentType, text) {
  const boundary = boundaryOf(contentType);
  if (!/^multipart\/mixed/i.test(contentType || "") || !boundary) throw badQuery(`A $batch request needs Content-Type: multipart/mixed; boundary=….`);
  const items = [];
  let operations = 0;
  for (const part of splitMultipart(text, boundary)) {
    const type = part.headers["content-type"] || "";
    if (/^multipart\/mixed/i.test(type)) {
      const inner = boundaryOf(type);
      if (!inner) throw badQuery(`A change set needs a boundary parameter.`);
      const requests = splitMultipart(part.lines.join("\n"), inner).map((p) => {
        if (/^multipart\//i.test(p.headers["content-type"] || "")) throw badQuery(`Change sets cannot be nested.`);
        return parseHttpPart(p);
      });
      operations += requests.length;
      items.push({ changeset: true, requests });
    } else {
      items.push({ changeset: false, request: parseHttpPart(part) });
      operations++;
    }
  }
  return { items, operations };
}

function httpText(response) {
  let out = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] || ""}\r\n`;
  for (const [k, v] of Object.entries(response.headers)) out += `${k}: ${v}\r\n`;
  return `${out}\r\n${response.body || ""}`;
}

/** The target of a batch part relative to the API root; `$n` refers to an earlier Content-ID. */
function batchTarget(target, contentIds) {
  let t = target;
  const ref = /^\$([^/?(]+)(.*)$/.exec(t);
  if (ref && contentIds.has(ref[1])) return contentIds.get(ref[1]) + ref[2];
  if (/^https?:\/\//i.test(t)) {
    const u = new URL(t);
    t = u.pathname + u.search;
  }
  if (t.startsWith(API_PREFIX)) return t.slice(API_PREFIX.length);
  if (t.startsWith("/")) return null;
  return t;
}

/**
 * Runs the parsed batch of the request `ctx` (see parseBatch) and answers it. An operation
 * outside a change set commits on its own; a change set commits (and tells the commit observers)
 * once all its operations succeeded, else it is rolled back and tells no one.
 */
export function runBatch(env, ctx, parsed) {
  const continueOnError = ctx.prefer["odata.continue-on-error"] !== undefined && ctx.prefer["odata.continue-on-error"] !== "false";
  const lcidHeader = ctx.headers["x-sandbox-lcid"];
  const one = (req, contentIds, tx) => {
    const target = batchTarget(req.target, contentIds);
    const headers = { ...req.headers };
    if (lcidHeader && !headers["x-sandbox-lcid"]) headers["x-sandbox-lcid"] = lcidHeader;
    if (target === null) return { response: errorResponse(notFoundSegment(req.target)), created: null };
    // the batch's caller is every operation's
    const inner = contextFor(req.method, target, headers, req.body, ctx.base, { userId: ctx.userId, names: ctx.names, related: ctx.related, tx, inBatch: true });
    const response = tx ? execute(env, inner) : executeAlone(env, inner);
    return { response, created: inner.created || null };
  };
  const parts = [];
  for (const item of parsed.items) {
    if (!item.changeset) {
      const { response } = one(item.request, new Map(), null);
      parts.push({ contentId: item.request.contentId, response });
      if (response.status >= 400 && !continueOnError) break;
      continue;
    }
    const tx = env.store.begin(ctx.userId, { undoable: true });
    const contentIds = new Map();
    const responses = [];
    let failed = null;
    for (const req of item.requests) {
      let result;
      if (req.method === "GET") result = { response: errorResponse(badQuery("A change set cannot contain a GET request; put it outside the change set.")) };
      else result = one(req, contentIds, tx);
      if (result.response.status >= 400) {
        failed = { contentId: req.contentId, response: result.response };
        break;
      }
      if (req.contentId != null && result.created) contentIds.set(String(req.contentId), `${result.created.t.entitySet}(${result.created.id})`);
      responses.push({ contentId: req.contentId, response: result.response });
    }
    if (failed) {
      env.store.rollback(tx);
      parts.push(failed);
      if (!continueOnError) break;
    } else {
      env.store.commit(tx);
      parts.push({ changeset: responses });
    }
  }
  // Stopped at a failure (no `odata.continue-on-error`): the batch itself answers 400, its body
  // the parts up to the failed one. Microsoft Learn ("Execute batch operations using the Web
  // API", handling errors): with continue-on-error the batch answers 200 OK and each part its
  // own status; the third-party client dynamics-web-api says the same of that header, and its
  // tests' recorded batch error is a 400 whose body holds the failed part.
  const stopped = !continueOnError && parts.some((part) => !part.changeset && part.response.status >= 400);
  return printBatch(parts, continueOnError, stopped ? 400 : 200);
}

/** The multipart/mixed answer of the parts (`{contentId, response}` or `{changeset: [...]}`). */
function printBatch(parts, continueOnError, status) {
  const boundary = `batchresponse_${randomUUID()}`;
  let out = "";
  const partHeaders = (contentId) => `Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n${contentId != null ? `Content-ID: ${contentId}\r\n` : ""}\r\n`;
  for (const part of parts) {
    if (part.changeset) {
      const inner = `changesetresponse_${randomUUID()}`;
      out += `--${boundary}\r\nContent-Type: multipart/mixed; boundary=${inner}\r\n\r\n`;
      for (const r of part.changeset) out += `--${inner}\r\n${partHeaders(r.contentId)}${httpText(r.response)}\r\n`;
      out += `--${inner}--\r\n`;
    } else {
      out += `--${boundary}\r\n${partHeaders(part.contentId)}${httpText(part.response)}\r\n`;
    }
  }
  out += `--${boundary}--\r\n`;
  const headers = { "Content-Type": `multipart/mixed; boundary=${boundary}`, "OData-Version": "4.0" };
  if (continueOnError) headers["Preference-Applied"] = "odata.continue-on-error";
  return { status, headers, body: out };
}

