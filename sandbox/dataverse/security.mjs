// Who the caller is and what they may do. Every request carries a credential, as in Dataverse:
// `Authorization: Bearer <token>` with a registered token (an application user's, which may do
// everything, or one issued for the browser user), or the browser's session cookie
// (`CrmOwinAuth`, as the Dynamics web client's pages carry theirs; the sandbox's pages get it
// when they load). Without either, or with a token nobody registered, the answer is 401 with
// the challenge Dataverse gives (`WWW-Authenticate: Bearer authorization_uri=…`: tools that
// discover a tenant read it, e.g. "Discover the authority at run time" on Microsoft Learn). The
// browser user (WHO_AM_I.UserId) has the privileges its security roles give (a test takes one
// away to see what such a user sees). WhoAmI and RetrievePrincipalAccess answer from this.
import { randomBytes } from "node:crypto";
import { DvError, CODE_NOT_EXIST, CODE_PRIVILEGE, badQuery, missing, notAllowed, notFoundSegment } from "./errors.mjs";
import { json } from "./odata.mjs";
import { isPlainObject } from "./util.mjs";
import { GUID_RE } from "./values.mjs";

/** Fixed identities answered by WhoAmI (UserId is the browser user's). */
export const WHO_AM_I = Object.freeze({
  UserId: "00000000-0000-0000-0000-0000000000aa",
  BusinessUnitId: "00000000-0000-0000-0000-0000000000cc",
  OrganizationId: "00000000-0000-0000-0000-0000000000bb",
});

const BEARER_RE = /^\s*Bearer\s+(\S+)\s*$/i;
/** The session cookie of the Dynamics web client. */
export const SESSION_COOKIE = "CrmOwinAuth";
/** The browser user's full name (Xrm's userSettings.userName in the sandbox's pages). */
export const USER_NAME = "Sandbox User";
/** Entra ID's authority as Dataverse's 401 names it (a sandbox tenant). */
const AUTHORITY = "https://login.microsoftonline.com/00000000-0000-4000-8000-7e7a7e7a0001/oauth2/authorize";

/**
 * The callers and their privileges: `principals` maps bearer tokens to application users'
 * systemuserids (an object or a Map, token → userId); `addPrincipal` adds more.
 */
export function createSecurity({ principals = null } = {}) {
  const tokens = new Map(); // token → systemuserid (lower case)
  // The browser user's privileges, as their security roles give them: deleting contacts, and
  // reading the integration record (the role "SALESmanago user").
  let userPrivileges = { delete: true, readIntegration: true };

  /** Requests carrying `Authorization: Bearer <token>` act as `userId`; returns the removal. */
  function addPrincipal(token, userId) {
    if (typeof token !== "string" || !/^\S+$/.test(token)) throw new Error("sandbox/dataverse: addPrincipal(token, userId) needs a token without spaces");
    if (typeof userId !== "string" || !GUID_RE.test(userId.trim())) throw new Error(`sandbox/dataverse: addPrincipal: '${userId}' is not a GUID (a systemuserid)`);
    const id = userId.trim().toLowerCase();
    tokens.set(token, id);
    return () => {
      if (tokens.get(token) === id) tokens.delete(token);
    };
  }

  if (principals != null) {
    const entries = principals instanceof Map ? [...principals] : isPlainObject(principals) ? Object.entries(principals) : null;
    if (!entries) throw new Error("sandbox/dataverse: `principals` maps bearer tokens to user ids ({token: userId})");
    for (const [token, userId] of entries) addPrincipal(token, userId);
  }

  const sessions = new Set(); // the browser user's session cookies

  /** A new session of the browser user: the value of its `CrmOwinAuth` cookie. */
  function openSession() {
    const value = randomBytes(24).toString("base64url");
    sessions.add(value);
    return value;
  }

  /** The systemuserid a request acts as, from its (lower-case) headers; null when it has no valid credential. */
  function userOf(headers) {
    if (headers.authorization !== undefined) {
      const m = BEARER_RE.exec(headers.authorization);
      return (m && tokens.get(m[1])) || null;
    }
    for (const part of String(headers.cookie || "").split(";")) {
      const at = part.indexOf("=");
      if (at > 0 && part.slice(0, at).trim() === SESSION_COOKIE && sessions.has(part.slice(at + 1).trim())) return WHO_AM_I.UserId;
    }
    return null;
  }

  /** The 401 of a request without a valid credential: Dataverse's challenge, no body. */
  function challenge(base) {
    const resource = new URL(base).origin + "/";
    return { status: 401, headers: { "WWW-Authenticate": `Bearer authorization_uri=${AUTHORITY}, resource_id=${resource}` }, body: "" };
  }

  /** Whether `userId` is an application user (allowed everything), not the browser user. */
  function isApplicationUser(userId) {
    return userId !== WHO_AM_I.UserId && [...tokens.values()].includes(userId);
  }

  const refused = (userId, privilege) => new DvError(403, CODE_PRIVILEGE, `Principal user (Id=${userId}, type=8) is missing ${privilege} privilege`);

  /** Throws 403 when `userId` may not read the rows of `t`. */
  function checkRead(t, userId) {
    // A user without the role "SALESmanago user" cannot read the integration table.
    if (t.logical === "new_salesmanagointegration" && userPrivileges.readIntegration === false && !isApplicationUser(userId)) {
      throw refused(userId, "prvReadnew_salesmanagointegration");
    }
  }

  /** Throws 403 when `userId` may not delete rows of `t`. */
  function checkDelete(t, userId) {
    if (t.logical === "contact" && !userPrivileges.delete && !isApplicationUser(userId)) throw refused(userId, "prvDeleteContact");
  }

  /** The rights of `userId` on rows of `t`, as RetrievePrincipalAccess names them. */
  function accessRights(t, userId) {
    const rights = ["ReadAccess", "WriteAccess", "AppendAccess", "AppendToAccess", "CreateAccess"];
    if (!(t.logical === "contact" && !userPrivileges.delete) || isApplicationUser(userId)) rights.push("DeleteAccess");
    rights.push("ShareAccess", "AssignAccess");
    return rights;
  }

  /** A user's full name, as a lookup to them shows it: the browser user's, or an application user's. */
  function nameOf(userId) {
    const id = String(userId).toLowerCase();
    if (id === WHO_AM_I.UserId) return USER_NAME;
    return isApplicationUser(id) ? "# SALESmanago relay" : null;
  }

  return {
    addPrincipal,
    openSession,
    nameOf,
    userOf,
    challenge,
    isApplicationUser,
    checkRead,
    checkDelete,
    accessRights,
    /** The browser user's privileges (`{delete, readIntegration}`), as a security role would give them. */
    privileges: () => ({ ...userPrivileges }),
    setPrivileges(privileges) {
      userPrivileges = { ...userPrivileges, ...privileges };
    },
  };
}

/** GET WhoAmI: the caller's ids. */
export function whoAmIRoute(segs, ctx) {
  const first = segs[0];
  if (segs.length > 1 || (first.key !== null && first.key.trim() !== "")) throw notFoundSegment(segs[segs.length - 1].name);
  if (ctx.method !== "GET") throw notAllowed(ctx.method, "the function WhoAmI", "GET");
  return json(200, { "@odata.context": `${ctx.base}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`, ...WHO_AM_I, UserId: ctx.userId });
}

/**
 * `systemusers(<id>)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p)?@p={'@odata.id':'<set>(<id>)'}`:
 * the user's rights on that row, as flags. As Microsoft Learn documents it ("Use Web API functions":
 * parameter aliases; the RetrievePrincipalAccess function reference): any alias name, the
 * target in either JSON quoting, and a user that does not exist is 404.
 */
export function principalAccessRoute(env, segs, ctx, q) {
  if (ctx.method !== "GET") throw notAllowed(ctx.method, "the function RetrievePrincipalAccess", "GET");
  const alias = /^Target=(@[A-Za-z_][A-Za-z0-9_]*)$/.exec(String(segs[1].key ?? "").trim());
  if (segs.length !== 2 || !alias) throw badQuery("RetrievePrincipalAccess takes one parameter, Target, as a parameter alias (Target=@t).");
  const value = q.get(alias[1]);
  if (value == null) throw badQuery(`The parameter alias ${alias[1]} has no value in the query.`);
  const target = /^\{\s*(['"])@odata\.id\1\s*:\s*(['"])([a-z_]+)\(([0-9a-fA-F-]{36})\)\2\s*\}$/.exec(value.trim());
  if (!target) throw badQuery(`The parameter alias ${alias[1]} is not a row reference ({'@odata.id':'<entity set>(<id>)'}): '${value}'.`);
  const t = env.store.bySet.get(target[3]);
  if (!t) throw notFoundSegment(target[3]);
  const rowId = target[4].toLowerCase();
  if (!t.records.has(rowId)) throw missing(t, rowId);
  // The user asked about: the browser user or an application user; any other does not exist.
  const asked = String(segs[0].key ?? "").trim().replace(/^\{(.*)\}$/, "$1").toLowerCase();
  if (asked !== WHO_AM_I.UserId && !env.security.isApplicationUser(asked)) {
    throw new DvError(404, CODE_NOT_EXIST, `systemuser With Id = ${asked} Does Not Exist`);
  }
  const rights = env.security.accessRights(t, asked);
  return json(200, { "@odata.context": `${ctx.base}$metadata#Microsoft.Dynamics.CRM.RetrievePrincipalAccessResponse`, AccessRights: rights.join(", ") });
}
