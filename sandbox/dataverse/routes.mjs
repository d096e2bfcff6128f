// Routing of one operation (top level or inside a $batch) to its answer: the service document,
// WhoAmI, EntityDefinitions, RetrievePrincipalAccess and the entity sets. Synchronous; never
// throws (a failure is answered as Dataverse's error body).
//
// `env` is {store, security} (see createDataverse); `ctx` comes from contextFor.
import { DvError, CODE_NOT_FOUND_SEGMENT, badQuery, notAllowed, notFoundSegment, notSupported, unexpected } from "./errors.mjs";
import { entitySetRoute } from "./entities.mjs";
import { metadataRoute } from "./metadata.mjs";
import { errorResponse, json, parseQuery, parseSegments } from "./odata.mjs";
import { principalAccessRoute, whoAmIRoute } from "./security.mjs";

/**
 * Resources every Dataverse organisation serves that the sandbox does not: refused by name (501),
 * never answered as if they did not exist. Microsoft Learn: "Query schema definitions" (global
 * choices), "Environment variables" (Power Apps), "Web API metadata" (relationships).
 */
const UNSERVED = new Map([
  ["GlobalOptionSetDefinitions", "global choices (GlobalOptionSetDefinitions)"],
  ["RelationshipDefinitions", "relationship metadata (RelationshipDefinitions)"],
  ["environmentvariabledefinitions", "environment variables (environmentvariabledefinitions)"],
  ["environmentvariablevalues", "environment variable values (environmentvariablevalues)"],
]);

/** Runs one operation; its writes join `ctx.tx`. Returns {status, headers, body}. */
export function execute(env, ctx) {
  const { byName, bySet } = env.store;
  try {
    let p;
    try {
      p = decodeURIComponent(ctx.path);
    } catch {
      throw badQuery(`The path '${ctx.path}' is not correctly percent-encoded.`);
    }
    const q = parseQuery(ctx.rawQuery);
    const segs = parseSegments(p);
    if (segs.length === 0) {
      if (ctx.method !== "GET") throw notAllowed(ctx.method, "the service document", "GET");
      return json(200, { "@odata.context": `${ctx.base}$metadata`, value: [...byName.values()].map((t) => ({ name: t.entitySet, kind: "EntitySet", url: t.entitySet })) });
    }
    const first = segs[0];
    if (first.name === "$batch") throw badQuery(ctx.inBatch ? "A $batch cannot contain another $batch." : "A $batch request must be a POST.");
    if (first.name === "$metadata") throw new DvError(404, CODE_NOT_FOUND_SEGMENT, "The sandbox does not serve the CSDL $metadata document; use EntityDefinitions.");
    if (first.name === "WhoAmI") return whoAmIRoute(segs, ctx);
    if (first.name === "EntityDefinitions") return metadataRoute(env.store, segs, ctx, q);
    if (first.name === "systemusers" && segs[1]?.name === "Microsoft.Dynamics.CRM.RetrievePrincipalAccess") {
      return principalAccessRoute(env, segs, ctx, q);
    }
    if (UNSERVED.has(first.name)) throw notSupported(UNSERVED.get(first.name));
    const t = bySet.get(first.name);
    if (!t) {
      if (byName.has(first.name)) throw new DvError(404, CODE_NOT_FOUND_SEGMENT, `Resource not found for the segment '${first.name}'. Use the entity set name '${byName.get(first.name).entitySet}'.`);
      throw notFoundSegment(first.name);
    }
    return entitySetRoute(env, t, segs, ctx, q);
  } catch (error) {
    if (error instanceof DvError) return errorResponse(error);
    return errorResponse(unexpected(error));
  }
}

/**
 * Runs one operation that commits on its own (any but those of a change set): what it wrote
 * stands at once, and the commit observers are told before the answer is returned.
 */
export function executeAlone(env, ctx) {
  const tx = env.store.begin(ctx.userId);
  ctx.tx = tx;
  const response = execute(env, ctx);
  env.store.commit(tx);
  return response;
}
