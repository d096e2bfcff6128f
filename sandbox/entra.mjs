// A stand-in for Microsoft Entra ID's token endpoint, for the relay's application user: the
// OAuth 2.0 client-credentials grant at POST /<tenant>/oauth2/v2.0/token, form-encoded
// (grant_type=client_credentials, client_id, client_secret, scope=<org>/.default), answered as
// Entra does: {token_type: "Bearer", expires_in, ext_expires_in, access_token}, or an error
// object ({error, error_description}) with 400 or 401. Each token it hands out is registered
// with the Dataverse stand-in as the client's application user, so the relay's writes carry
// that user as modifiedby, as in a real org.
//
//   const entra = createEntra({ tenant, clients: [{ clientId, secret, userId }], grant });
//   if (await entra.handle(req, res)) return;
//
// `grant(token, userId)` is called for each token issued (the sandbox passes the Dataverse
// stand-in's principal registration).
import { randomBytes } from "node:crypto";

const TOKEN_PATH = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;
const LIFETIME_S = 3599;

export function createEntra({ tenant, clients = [], grant = () => {} }) {
  const byId = new Map(clients.map((c) => [c.clientId, c]));
  let issued = 0;

  function reply(res, status, body) {
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" }).end(JSON.stringify(body));
  }

  function refuse(res, status, error, description) {
    reply(res, status, { error, error_description: description, error_codes: [], timestamp: new Date().toISOString() });
  }

  async function handle(req, res) {
    const path = new URL(req.url, "http://entra").pathname;
    const match = TOKEN_PATH.exec(path);
    if (!match) return false;
    if (req.method !== "POST") {
      refuse(res, 405, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.");
      return true;
    }
    if (match[1] !== tenant) {
      refuse(res, 400, "invalid_tenant", `AADSTS90002: Tenant '${match[1]}' not found.`);
      return true;
    }
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
    if (form.get("grant_type") !== "client_credentials") {
      refuse(res, 400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.");
      return true;
    }
    const client = byId.get(form.get("client_id") ?? "");
    if (!client) {
      refuse(res, 400, "unauthorized_client", `AADSTS700016: Application with identifier '${form.get("client_id")}' was not found in the directory.`);
      return true;
    }
    if (form.get("client_secret") !== client.secret) {
      refuse(res, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
      return true;
    }
    if (!/\/\.default$/.test(form.get("scope") ?? "")) {
      refuse(res, 400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.");
      return true;
    }
    const token = randomBytes(24).toString("base64url");
    issued += 1;
    grant(token, client.userId);
    reply(res, 200, { token_type: "Bearer", expires_in: LIFETIME_S, ext_expires_in: LIFETIME_S, access_token: token });
    return true;
  }

  return { handle, issued: () => issued };
}
