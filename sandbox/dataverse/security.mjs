// Who the caller is and what they may do: the sandbox's browser user (WHO_AM_I), whose
// privileges are those its security roles give (a test takes one away to see what such a user
// sees). WhoAmI and RetrievePrincipalAccess answer from this.
import { DvError, CODE_PRIVILEGE, badQuery, missing, notAllowed, notFoundSegment } from "./errors.mjs";
import { json } from "./odata.mjs";

/** Fixed identities answered by WhoAmI. */
export const WHO_AM_I = Object.freeze({
  UserId: "00000000-0000-0000-0000-0000000000aa",
  BusinessUnitId: "00000000-0000-0000-0000-0000000000cc",
  OrganizationId: "00000000-0000-0000-0000-0000000000bb",
});

/** The user's privileges and the checks of them. */
export function createSecurity() {
  // The sandbox user's privileges, as their security roles give them: deleting contacts, and
  // reading the integration record (the role "SALESmanago user").
  let userPrivileges = { delete: true, readIntegration: true };

  const refused = (privilege) => new DvError(403, CODE_PRIVILEGE, `Principal user (Id=${WHO_AM_I.UserId}, type=8) is missing ${privilege} privilege`);

  /** Throws 403 when the user may not read the rows of `t`. */
  function checkRead(t) {
    // A user without the role "SALESmanago user" cannot read the integration table.
    if (t.logical === "new_salesmanagointegration" && userPrivileges.readIntegration === false) throw refused("prvReadnew_salesmanagointegration");
  }

  /** Throws 403 when the user may not delete rows of `t`. */
  function checkDelete(t) {
    if (t.logical === "contact" && !userPrivileges.delete) throw refused("prvDeleteContact");
  }

  /** The user's rights on rows of `t`, as RetrievePrincipalAccess names them. */
  function accessRights(t) {
    const rights = ["ReadAccess", "WriteAccess", "AppendAccess", "AppendToAccess", "CreateAccess"];
    if (!(t.logical === "contact" && !userPrivileges.delete)) rights.push("DeleteAccess");
    rights.push("ShareAccess", "AssignAccess");
    return rights;
  }

  return {
    checkRead,
    checkDelete,
    accessRights,
    /** The user's privileges on contacts (`{delete}`), as a security role would give them. */
    privileges: () => ({ ...userPrivileges }),
    setPrivileges(privileges) {
      userPrivileges = { ...userPrivileges, ...privileges };
    },
  };
}

/** GET WhoAmI. */
export function whoAmIRoute(segs, ctx) {
  const first = segs[0];
  if (segs.length > 1 || (first.key !== null && first.key.trim() !== "")) throw notFoundSegment(segs[segs.length - 1].name);
  if (ctx.method !== "GET") throw notAllowed(ctx.method, "the function WhoAmI", "GET");
  return json(200, { "@odata.context": `${ctx.base}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`, ...WHO_AM_I });
}

/**
 * `systemusers(<id>)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@t)?@t={'@odata.id':'<set>(<id>)'}`:
 * the user's rights on that row, as flags.
 */
export function principalAccessRoute(env, segs, ctx, q) {
  if (ctx.method !== "GET") throw notAllowed(ctx.method, "the function RetrievePrincipalAccess", "GET");
  if (segs.length !== 2 || segs[1].key !== "Target=@t") throw badQuery("RetrievePrincipalAccess takes Target=@t.");
  const target = /^\{'@odata\.id':'([a-z_]+)\(([0-9a-f-]{36})\)'\}$/.exec(q.get("@t") || "");
  if (!target) throw badQuery(`The parameter alias @t is not a row reference: '${q.get("@t")}'.`);
  const t = env.store.bySet.get(target[1]);
  if (!t) throw notFoundSegment(target[1]);
  if (!t.records.has(target[2])) throw missing(t, target[2]);
  return json(200, { "@odata.context": `${ctx.base}$metadata#Microsoft.Dynamics.CRM.RetrievePrincipalAccessResponse`, AccessRights: env.security.accessRights(t).join(", ") });
}
