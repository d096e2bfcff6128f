// `npm start`'s program: relay mode by default (the simulator refusing browsers, the relay and
// the values to type), `--direct`, `--help`, one JSON line for scripts, demo data and the relay
// key that survive a restart, --reset, --contacts, and a usage line for a bad flag.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureRelay } from "../sandbox/relay.mjs";
import { root } from "./support/package.mjs";

const CLI = join(root, "sandbox", "cli.mjs");

// Built here when missing (it takes minutes the first time), not by the program under test.
before(() => ensureRelay());

// Programs a failed test left running are stopped, with their relays.
const running = new Set();
after(() => {
  for (const child of running) child.kill("SIGTERM");
});

/** Starts sandbox/cli.mjs; resolves to {info, lines, stop()} once it printed its first line. */
function start(args) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  child.on("exit", () => running.delete(child));
  let out = "";
  let err = "";
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.kill("SIGKILL"), reject(new Error(`no output in 30 s; stderr: ${err}`))), 30_000);
    child.stderr.on("data", (d) => (err += d));
    child.stdout.on("data", (d) => {
      out += d;
      if (!out.includes("\n")) return;
      clearTimeout(timer);
      resolve({
        out: () => out,
        info: () => JSON.parse(out.split("\n")[0]),
        async stop() {
          child.kill("SIGTERM");
          const code = await exited;
          return { code, out, err };
        },
      });
    });
    exited.then((code) => (clearTimeout(timer), reject(new Error(`exited ${code} before printing; stderr: ${err}`))));
  });
}

/** Runs sandbox/cli.mjs to its end (it must end by itself): {code, out, err}. */
function runToEnd(args) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve) => child.on("exit", (code) => (clearTimeout(timer), resolve({ code, out, err }))));
}

/** Stops a started program with SIGTERM, as Ctrl+C would: it ends with 0. */
async function stopsCleanly(run) {
  const { code, err } = await run.stop();
  assert.equal(code, 0, `exit ${code}; stderr: ${err}`);
}

/** The sandbox's Web API as a program calls it: with the browser user's token the CLI printed. */
const asUser = (info, headers = {}) => ({ Authorization: `Bearer ${info.dataverseToken}`, ...headers });

async function count(info, filter = "") {
  const response = await fetch(`${info.sandbox}/api/data/v9.2/contacts?$select=contactid&$count=true&$top=1${filter}`, { headers: asUser(info) });
  return (await response.json())["@odata.count"];
}

/** The relay's deep health, asked as the sandbox's browser would, with `key`: {status, body}. */
async function deepHealth(relay, key, origin) {
  const response = await fetch(`${relay}/healthz/deep`, { headers: { Authorization: `Bearer ${key}`, Origin: origin }, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.json() };
}

/** Whether the simulator's API answers a browser's preflight from `origin`. */
async function allowsBrowsers(simulator, origin) {
  const response = await fetch(`${simulator}/api/contact/upsert`, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "POST" } });
  return response.headers.get("access-control-allow-origin") !== null;
}

/** `n` ports free on 127.0.0.1 now. */
async function freePorts(n) {
  const servers = [];
  for (let i = 0; i < n; i++) {
    const server = createServer();
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
  }
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

test("--port 0 --json in relay mode: one JSON line once all three listen; the relay serves the printed key, SALESmanago refuses browsers; stopping stops the relay", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  try {
    const run = await start(["--port", "0", "--json", "--data", dir, "--contacts", "30"]);
    const info = run.info();
    assert.deepEqual(Object.keys(info).sort(), ["apiSecret", "clientId", "dataverseToken", "mode", "owner", "relay", "relayKey", "sandbox", "simulator"]);
    // The Web API wants a credential, as Dataverse does; the printed token is one.
    assert.equal((await fetch(`${info.sandbox}/api/data/v9.2/WhoAmI`)).status, 401);
    assert.equal(info.mode, "relay");
    assert.match(info.relay, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(info.relayKey, /^browser\.[0-9a-f]{64}$/);
    assert.equal(new Set([info.sandbox, info.simulator, info.relay].map((url) => new URL(url).port)).size, 3, "three ports");
    assert.equal((await fetch(`${info.sandbox}/contacts`)).status, 200);
    assert.equal(await count(info), 30);
    const held = await (await fetch(`${info.simulator}/__sim/contacts`)).json();
    assert.ok(held.length > 5, `SALESmanago holds ${held.length} demo contacts`);

    assert.equal((await fetch(`${info.relay}/healthz`)).status, 200);
    const deep = await deepHealth(info.relay, info.relayKey, info.sandbox);
    assert.equal(deep.status, 200, JSON.stringify(deep.body));
    assert.equal(deep.body.owner, "ok", "the relay signs with the simulator's credentials");
    assert.equal((await deepHealth(info.relay, info.relayKey, `http://localhost:${new URL(info.sandbox).port}`)).status, 200, "the sandbox on localhost too");
    assert.equal((await deepHealth(info.relay, info.relayKey.replace(/.$/, (c) => (c === "0" ? "1" : "0")), info.sandbox)).status, 401);
    assert.equal(await allowsBrowsers(info.simulator, info.sandbox), false, "SALESmanago refuses the browser");

    const { code, out } = await run.stop();
    assert.equal(code, 0);
    assert.equal(out.trim().split("\n").length, 1, out);
    await assert.rejects(fetch(`${info.relay}/healthz`, { signal: AbortSignal.timeout(5_000) }), "the relay stopped with it");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("data survives a restart, and --reset starts afresh", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  try {
    let run = await start(["--port", "0", "--json", "--data", dir, "--contacts", "12"]);
    let info = run.info();
    const id = "00000000-0000-4000-8000-000000000001";
    const patch = await fetch(`${info.sandbox}/api/data/v9.2/contacts(${id})`, { method: "PATCH", headers: asUser(info, { "Content-Type": "application/json" }), body: JSON.stringify({ address1_city: "Zakopane" }) });
    assert.equal(patch.status, 204);
    await fetch(`${info.simulator}/__sim/contacts`, { method: "POST", body: JSON.stringify([{ email: "kept@example.com" }]) });
    await fetch(`${info.simulator}/api/user/listByClient`, { method: "POST", body: "{}" });
    await stopsCleanly(run);

    run = await start(["--port", "0", "--json", "--data", dir, "--contacts", "99"]);
    info = run.info();
    assert.equal(await count(info), 12, "--contacts does not reseed kept data");
    assert.equal(await count(info, "&$filter=address1_city eq 'Zakopane'"), 1);
    const emails = (await (await fetch(`${info.simulator}/__sim/contacts`)).json()).map((c) => c.email);
    assert.ok(emails.includes("kept@example.com"), "SALESmanago's data was kept");
    await stopsCleanly(run);

    run = await start(["--port", "0", "--json", "--data", dir, "--reset", "--contacts", "7"]);
    info = run.info();
    assert.equal(await count(info), 7);
    assert.equal(await count(info, "&$filter=address1_city eq 'Zakopane'"), 0);
    await stopsCleanly(run);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a restart keeps the relay's address and key, so what the admin typed keeps working; --reset makes a new key", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  try {
    const [port, simulatorPort, relayPort] = await freePorts(3);
    const args = ["--port", String(port), "--simulator-port", String(simulatorPort), "--relay-port", String(relayPort), "--json", "--data", dir, "--contacts", "5"];
    let run = await start(args);
    const first = run.info();
    assert.equal(first.relay, `http://127.0.0.1:${relayPort}`);
    await stopsCleanly(run);

    run = await start(args);
    const second = run.info();
    assert.equal(second.relay, first.relay);
    assert.equal(second.relayKey, first.relayKey);
    assert.equal((await deepHealth(second.relay, first.relayKey, second.sandbox)).status, 200, "the key typed before the restart");
    await stopsCleanly(run);

    run = await start([...args, "--reset"]);
    const third = run.info();
    assert.notEqual(third.relayKey, first.relayKey);
    assert.equal((await deepHealth(third.relay, first.relayKey, third.sandbox)).status, 401, "the old key no longer works");
    assert.equal((await deepHealth(third.relay, third.relayKey, third.sandbox)).status, 200);
    await stopsCleanly(run);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("without --json it prints the relay's address and the relay-mode values to type, and the printed key works", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  try {
    const run = await start(["--port", "0", "--data", dir, "--contacts", "3"]);
    const { code, out, err } = await run.stop();
    assert.equal(code, 0, err);
    const sandbox = out.match(/^Dynamics 365 sandbox: +(http:\/\/127\.0\.0\.1:\d+)\/contacts$/m)?.[1];
    const relay = out.match(/^salesmanago-relay: +(http:\/\/127\.0\.0\.1:\d+) /m)?.[1];
    assert.ok(sandbox && relay, out);
    assert.match(out, /^SALESmanago simulator: +http:\/\/127\.0\.0\.1:\d+ \(refuses browsers/m);
    assert.match(out, new RegExp(`Enter these on the integration form \\(${sandbox}/integration\\)`));
    assert.match(out, /^ {2}Client ID +\(empty\)$/m);
    assert.match(out, /^ {2}API secret +\(empty: the relay holds it\)$/m);
    assert.match(out, /^ {2}Owner e-mail +\(empty\)$/m);
    assert.equal(out.match(/^ {2}Endpoint +(\S+)$/m)?.[1], relay, "the endpoint to type is the relay");
    assert.doesNotMatch(out, /sim-secret/, "the simulator's secret is the relay's, not printed to type");
    assert.match(out, /npm start -- --direct/);
    const key = out.match(/^ {2}Relay key +(\S+)$/m)?.[1];
    assert.match(key ?? "", /^browser\.[0-9a-f]{64}$/, out);

    // The printed key, against the printed relay, once more.
    const again = await start(["--port", "0", "--json", "--data", dir]);
    const info = again.info();
    assert.equal(info.relayKey, key);
    assert.equal((await deepHealth(info.relay, key, info.sandbox)).status, 200);
    await stopsCleanly(again);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--direct: SALESmanago answers browsers, no relay, and it prints the four direct values", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  try {
    let run = await start(["--direct", "--port", "0", "--json", "--data", dir, "--contacts", "3"]);
    const info = run.info();
    assert.equal(info.mode, "direct");
    assert.equal(info.relay, null);
    assert.equal(info.relayKey, null);
    assert.equal(await allowsBrowsers(info.simulator, info.sandbox), true);
    await stopsCleanly(run);

    run = await start(["--direct", "--port", "0", "--data", dir]);
    const { code, out } = await run.stop();
    assert.equal(code, 0);
    assert.match(out, /Dynamics 365 sandbox: +http:\/\/127\.0\.0\.1:\d+\/contacts/);
    assert.match(out, /^ {2}Client ID +sim-client$/m);
    assert.match(out, /^ {2}API secret +sim-secret-0123456789$/m);
    assert.match(out, /^ {2}Owner e-mail +owner@example\.com$/m);
    const simulator = out.match(/^SALESmanago simulator: +(http:\/\/127\.0\.0\.1:\d+)$/m)?.[1];
    assert.equal(out.match(/^ {2}Endpoint +(\S+)$/m)?.[1], simulator, out);
    assert.doesNotMatch(out, /salesmanago-relay:|browser\./, "no relay");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--help lists both modes and every flag, and exits 0", async () => {
  const { code, out, err } = await runToEnd(["--help"]);
  assert.equal(code, 0, err);
  assert.match(out, /^usage: npm start -- /);
  assert.match(out, /relay mode/);
  assert.match(out, /--direct +direct mode/);
  for (const flag of ["--direct", "--webhooks", "--reset", "--contacts N", "--port N", "--simulator-port N", "--relay-port N", "--latency-ms N", "--data DIR", "--json", "--help"]) {
    assert.match(out, new RegExp(`\\n {2}${flag} `), `${flag} is explained`);
  }
});

test("a bad or unknown flag prints the usage and exits 2", async () => {
  for (const [args, said] of [
    [["--contacts", "many"], /--contacts needs a whole number/],
    [["--frobnicate"], /unknown option --frobnicate/],
  ]) {
    const { code, err } = await runToEnd(args);
    assert.equal(code, 2);
    assert.match(err, said);
    assert.match(err, /usage: npm start -- /);
  }
});

test("--webhooks runs one relay, registered in the sandbox: a contact written through the Web API reaches SALESmanago, and the browser's key works on it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  const run = await start(["--port", "0", "--json", "--webhooks", "--contacts", "3", "--data", dir]);
  try {
    const info = run.info();
    assert.match(info.relay, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await deepHealth(info.relay, info.relayKey, info.sandbox)).status, 200, "the browser's relay is the webhook's");
    const [endpoint] = (await (await fetch(`${info.sandbox}/api/data/v9.2/serviceendpoints?$select=url`, { headers: asUser(info) })).json()).value;
    assert.equal(endpoint.url, `${info.relay}/dataverse/webhook`);
    const created = await fetch(`${info.sandbox}/api/data/v9.2/contacts`, {
      method: "POST",
      headers: asUser(info, { "Content-Type": "application/json" }),
      body: JSON.stringify({ firstname: "Ala", lastname: "Webhook", emailaddress1: "cli.webhook@example.com" }),
    });
    assert.equal(created.status, 204);
    let found = null;
    for (let i = 0; i < 200 && !found; i++) {
      const contacts = await (await fetch(`${info.simulator}/__sim/contacts`)).json();
      found = contacts.find((c) => c.email === "cli.webhook@example.com");
      if (!found) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(found?.name, "Ala Webhook", "the change reached SALESmanago with no button");
  } finally {
    const { code } = await run.stop();
    assert.equal(code, 0);
    rmSync(dir, { recursive: true, force: true });
  }
});
