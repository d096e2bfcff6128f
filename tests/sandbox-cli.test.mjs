// `npm start`'s program: one JSON line for scripts, demo data that survives a restart, --reset,
// --contacts, and a usage line for a bad flag.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root } from "./support/package.mjs";

/** Starts sandbox/cli.mjs; resolves to {info, lines, stop()} once it printed its first line. */
function start(args) {
  const child = spawn(process.execPath, [join(root, "sandbox", "cli.mjs"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
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

async function count(info, filter = "") {
  const response = await fetch(`${info.sandbox}/api/data/v9.2/contacts?$select=contactid&$count=true&$top=1${filter}`);
  return (await response.json())["@odata.count"];
}

test("--port 0 --json prints one JSON line once both servers listen, on different ports", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  try {
    const run = await start(["--port", "0", "--json", "--data", dir, "--contacts", "30"]);
    const info = run.info();
    assert.deepEqual(Object.keys(info).sort(), ["apiSecret", "clientId", "owner", "sandbox", "simulator"]);
    assert.notEqual(new URL(info.sandbox).port, new URL(info.simulator).port);
    assert.equal((await fetch(`${info.sandbox}/contacts`)).status, 200);
    assert.equal(await count(info), 30);
    const held = await (await fetch(`${info.simulator}/__sim/contacts`)).json();
    assert.ok(held.length > 5, `SALESmanago holds ${held.length} demo contacts`);
    const { code, out } = await run.stop();
    assert.equal(code, 0);
    assert.equal(out.trim().split("\n").length, 1, out);
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
    const patch = await fetch(`${info.sandbox}/api/data/v9.2/contacts(${id})`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ address1_city: "Zakopane" }) });
    assert.equal(patch.status, 204);
    await fetch(`${info.simulator}/__sim/contacts`, { method: "POST", body: JSON.stringify([{ email: "kept@example.com" }]) });
    await fetch(`${info.simulator}/api/user/listByClient`, { method: "POST", body: "{}" });
    assert.equal((await run.stop()).code, 0);

    run = await start(["--port", "0", "--json", "--data", dir, "--contacts", "99"]);
    info = run.info();
    assert.equal(await count(info), 12, "--contacts does not reseed kept data");
    assert.equal(await count(info, "&$filter=address1_city eq 'Zakopane'"), 1);
    const emails = (await (await fetch(`${info.simulator}/__sim/contacts`)).json()).map((c) => c.email);
    assert.ok(emails.includes("kept@example.com"), "SALESmanago's data was kept");
    assert.equal((await run.stop()).code, 0);

    run = await start(["--port", "0", "--json", "--data", dir, "--reset", "--contacts", "7"]);
    info = run.info();
    assert.equal(await count(info), 7);
    assert.equal(await count(info, "&$filter=address1_city eq 'Zakopane'"), 0);
    assert.equal((await run.stop()).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("without --json it prints the URL and the credentials to enter", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  try {
    const run = await start(["--port", "0", "--data", dir, "--contacts", "3"]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { out } = await run.stop();
    assert.match(out, /Dynamics 365 sandbox: +http:\/\/127\.0\.0\.1:\d+\/contacts/);
    assert.match(out, /API secret +sim-secret-0123456789/);
    assert.match(out, /Endpoint +http:\/\/127\.0\.0\.1:\d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a bad flag prints the usage and exits 2", async () => {
  const child = spawn(process.execPath, [join(root, "sandbox", "cli.mjs"), "--contacts", "many"], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 2);
  assert.match(err, /--contacts needs a whole number/);
  assert.match(err, /usage: npm start -- /);
});

test("--webhooks runs the relay, registered in the sandbox: a contact written through the Web API reaches SALESmanago", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-cli-"));
  const run = await start(["--port", "0", "--json", "--webhooks", "--contacts", "3", "--data", dir]);
  try {
    const info = run.info();
    assert.match(info.relay, /^http:\/\/127\.0\.0\.1:\d+$/);
    const created = await fetch(`${info.sandbox}/api/data/v9.2/contacts`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
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
