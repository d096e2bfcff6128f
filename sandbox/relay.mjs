// salesmanago-relay beside the sandbox: the real binary (built when missing), started with the
// SALESmanago simulator's credentials for the sandbox's browser and, for webhooks, the sandbox's
// Dataverse and Entra ID stand-ins; `salesmanago-relay register` run against them as an admin
// would. Used by `npm start` (relay mode, and `--webhooks`) and the end-to-end tests.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { root } from "./server.mjs";

/** The relay's debug build, or the binary SALESMANAGO_RELAY_BIN names (the bench's release build). */
export const RELAY_BINARY = process.env.SALESMANAGO_RELAY_BIN || join(root, "target", "debug", process.platform === "win32" ? "salesmanago-relay.exe" : "salesmanago-relay");

/** Builds the relay when its binary is missing. */
export function ensureRelay() {
  if (existsSync(RELAY_BINARY)) return;
  const built = spawnSync("cargo", ["build", "-p", "salesmanago-relay"], { cwd: root, stdio: "inherit", timeout: 900_000 });
  if (built.status !== 0) throw new Error("cargo build -p salesmanago-relay failed");
}

/** A new key `id`: `{key, stored}` (what the caller shows, and what RELAY_KEYS holds). */
export function newKey(id) {
  const made = spawnSync(RELAY_BINARY, ["new-key", id], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`salesmanago-relay new-key: ${made.stderr}`);
  return { key: made.stdout.match(/record: (\S+)/)[1], stored: made.stdout.match(/RELAY_KEYS: (\S+)/)[1] };
}

/** The relays started here and not stopped yet: killed if this process exits first. */
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Runs `salesmanago-relay serve` with `env`; resolves once it listens, with `{url, log, exited,
 * stop()}` (`log`: its JSON lines so far, unless `keepLog` is false, for a relay that runs for
 * hours; `exited`: resolves to its exit code).
 */
export function startRelay(env, { keepLog = true } = {}) {
  const child = spawn(RELAY_BINARY, ["serve"], { env: { PATH: process.env.PATH, RELAY_LISTEN: "127.0.0.1:0", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  const log = [];
  let errors = "";
  child.stderr.on("data", (d) => (errors += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => (running.delete(child), resolve(code ?? signal))));
  return new Promise((resolve, reject) => {
    let buffer = "";
    let listening = false;
    child.on("error", (error) => reject(new Error(`the relay ${RELAY_BINARY} could not start: ${error.message}`)));
    child.on("exit", (code) => reject(new Error(`the relay exited ${code}: ${errors.trim()}`)));
    child.stdout.on("data", (data) => {
      buffer += data;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines) {
        if (keepLog) log.push(line);
        if (listening) continue;
        const address = JSON.parse(line).listening;
        if (!address) continue;
        listening = true;
        resolve({
          url: `http://${address}`,
          log,
          exited,
          async stop() {
            child.kill("SIGTERM");
            await exited;
          },
        });
      }
    });
  });
}

/**
 * The origins the relay lets the sandbox at `url` call from: the address itself and, for
 * 127.0.0.1, the same port on localhost (a browser may be pointed at either).
 */
export function sandboxOrigins(url) {
  const origin = new URL(url);
  const same = origin.hostname === "127.0.0.1" ? [`${origin.protocol}//localhost:${origin.port}`] : [];
  return [origin.origin, ...same].join(",");
}

/**
 * The relay serving the browser of `sandbox` with the simulator `credentials` (`{clientId,
 * apiSecret, owner, endpoint}`): the relay holds them, and the integration record holds only the
 * relay's address and `key` (`{key, stored}` from `newKey`; a new one by default). `listen` is
 * RELAY_LISTEN. Resolves to `{url, key, env, log, exited, stop()}`.
 */
export async function startBrowserRelay(sandbox, credentials, { key = null, listen = "127.0.0.1:0", extra = {}, keepLog = true } = {}) {
  ensureRelay();
  const browser = key ?? newKey("browser");
  const env = {
    SALESMANAGO_CLIENT_ID: credentials.clientId,
    SALESMANAGO_API_SECRET: credentials.apiSecret,
    SALESMANAGO_OWNER: credentials.owner,
    SALESMANAGO_ENDPOINT: credentials.endpoint,
    RELAY_ALLOWED_ORIGINS: sandboxOrigins(sandbox.url),
    RELAY_KEYS: browser.stored,
    RELAY_LISTEN: listen,
    ...extra,
  };
  const relay = await startRelay(env, { keepLog });
  return { ...relay, key: browser.key, env };
}

/** The environment giving the relay the sandbox's Dataverse as its application user. */
export function dataverseEnv(appUser) {
  return {
    DATAVERSE_URL: appUser.dataverseUrl,
    DATAVERSE_TOKEN_URL: appUser.tokenUrl,
    DATAVERSE_CLIENT_ID: appUser.clientId,
    DATAVERSE_CLIENT_SECRET: appUser.clientSecret,
    RELAY_APP_USER: appUser.userId,
  };
}

/**
 * Runs `salesmanago-relay register` (or `unregister`) with `env`: its printed lines. Not
 * spawnSync: the sandbox it registers in answers from this same process.
 */
export function register(env, { remove = false } = {}) {
  const verb = remove ? "unregister" : "register";
  const child = spawn(RELAY_BINARY, [verb], { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let errors = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (errors += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim().split("\n"));
      else reject(new Error(`salesmanago-relay ${verb}: ${errors.trim() || `exit ${code}`}`));
    });
  });
}

/**
 * The relay serving the browser and Dataverse's webhook for `sandbox` (started with
 * `webhooks`) and the simulator `credentials`, registered in the sandbox. One relay for both:
 * the browser's `key` (as for `startBrowserRelay`) and a webhook key. Resolves to `{url, key,
 * webhookKey, env, registered, log, exited, stop()}`.
 */
export async function startWebhookRelay(sandbox, credentials, { key = null, listen = "127.0.0.1:0", extra = {}, keepLog = true } = {}) {
  ensureRelay();
  const webhook = newKey("dataverse");
  const relay = await startBrowserRelay(sandbox, credentials, {
    key,
    listen,
    keepLog,
    extra: { RELAY_WEBHOOK_KEYS: webhook.stored, RELAY_CATCH_UP_MINUTES: "0", ...dataverseEnv(sandbox.appUser), ...extra },
  });
  try {
    const registered = await register({ ...relay.env, RELAY_PUBLIC_URL: relay.url, RELAY_WEBHOOK_KEY: webhook.key });
    return { ...relay, webhookKey: webhook.key, registered };
  } catch (error) {
    await relay.stop();
    throw error;
  }
}
