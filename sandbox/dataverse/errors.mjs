// Errors: a Web API failure is answered as {"error":{"code","message"}} with Dataverse's code.

/** A Web API failure answered as {"error":{"code","message"}}. */
export class DvError extends Error {
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export const CODE_BAD_QUERY = "0x80060888";
export const CODE_NOT_FOUND_SEGMENT = "0x8006088a";
export const CODE_PAYLOAD = "0x80048d19";
export const CODE_VALIDATION = "0x80044331";
export const CODE_NOT_EXIST = "0x80040217";
export const CODE_DUPLICATE = "0x80040237";
export const CODE_VERSION = "0x80060882";
export const CODE_UNEXPECTED = "0x80040216";
export const CODE_PRIVILEGE = "0x80040220";
export const CODE_REQUESTS = "0x80072322";
export const CODE_EXECUTION = "0x80072321";
export const CODE_CONCURRENCY = "0x80072326";
/** ExpiredVersionStamp: "Version stamp associated with the client has expired. Please perform a full sync." */
export const CODE_EXPIRED_VERSION_STAMP = "0x80044352";
/** A FetchXML column that is not an attribute of the table ("… entity doesn't contain attribute with Name = …"). */
export const CODE_NO_ATTRIBUTE = "0x80041103";
/** ChangeTrackingNotEnabledForEntity: "Entity {0} isn't enabled for change tracking." */
export const CODE_CHANGE_TRACKING_NOT_ENABLED = "0x80072491";

export const badQuery = (message) => new DvError(400, CODE_BAD_QUERY, message);
export const badPayload = (message) => new DvError(400, CODE_PAYLOAD, message);
/**
 * A request Dataverse answers but the sandbox does not: 501, naming what the sandbox does not do,
 * so that a client is never answered wrongly (nor told a real resource does not exist).
 */
export const notSupported = (what) => new DvError(501, CODE_BAD_QUERY, `The sandbox does not support ${what}.`);
export const notFoundSegment = (segment) => new DvError(404, CODE_NOT_FOUND_SEGMENT, `Resource not found for the segment '${segment}'.`);
export const notAllowed = (method, what, allow) => new DvError(405, CODE_BAD_QUERY, `The HTTP method '${method}' is not allowed on ${what}.`, { Allow: allow });
export const noProperty = (t, name) => badQuery(`Could not find a property named '${name}' on type 'Microsoft.Dynamics.CRM.${t.logical}'.`);
export const missing = (t, id) => new DvError(404, CODE_NOT_EXIST, `${t.logical} With Id = ${id} Does Not Exist`);
/** An unexpected failure (a bug, or a request Node refuses) as Dataverse answers one. */
export const unexpected = (error) => new DvError(500, CODE_UNEXPECTED, `An unexpected error occurred: ${error && error.message}`);
