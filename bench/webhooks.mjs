#!/usr/bin/env node
// `npm run bench:webhooks`: changes made through the Web API reaching SALESmanago through
// Dataverse's webhooks and the relay. The sandbox's Dataverse (delivering its webhooks) runs in
// a child process, the relay (release build) in its own, and the SALESmanago simulator in this
// one, which notes when each contact arrives.
//
//   npm run bench:webhooks -- [--contacts N] [--samples N] [--concurrency K]
//
// 1. Latency: `--samples` contacts created one after another through the Web API; for each, the
//    time from sending the write to SALESmanago receiving the contact (median, 99th percentile).
// 2. Throughput: an import of `--contacts` contacts through `$batch` (1,000 a request); contacts
//    a second from the import's first request to the last contact received.
// `--concurrency` is how many deliveries the sandbox's asynchronous service has under way at
// once (Dataverse's own number is not published). The sandbox picks an event up as soon as it
// commits; a real org's asynchronous service adds its own delay, which this does not model.
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { startSimulator } from "../tests/simulator/server.mjs";
import { root } from "../sandbox/server.mjs";

const USAGE = "usage: npm run bench:webhooks -- [--contacts N] [--samples N] [--concurrency K]";

function parse(argv) {
  const options = { contacts: 100_000, samples: 200, concurrency: 16 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const key = flag.replace(/^--/, "");
    const value = Number(inline !== undefined ? inline : argv[++i]);
    if (!(key in options) || !Number.isInteger(value) || value < 1) throw new Error(`${argv[i]}: ${USAGE}`);
    options[key] = value;
  }
  return options;
}

/** The sandbox with webhooks, in a child process: resolves to `{url, appUser, stop()}`. */
function startSandboxChild(concurrency) {
  const script = `
    import { startSandbox } from ${JSON.stringify(join(root, "sandbox", "server.mjs"))};
    const s = await startSandbox({ port: 0, contacts: 0, webhooks: { concurrency: ${concurrency}, retryDelayMs: 1000 } });
    process.stdout.write(JSON.stringify({ url: s.url, appUser: s.appUser, token: s.token }) + "\\n");
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`the sandbox exited ${code}`)));
    child.stdout.once("data", (data) => resolve({ ...JSON.parse(String(data)), stop: () => child.kill("SIGTERM") }));
  });
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function main() {
  const options = parse(process.argv.slice(2));
  // SALESMANAGO_RELAY_BIN names another build to measure (an earlier commit's, say); else the
  // workspace's release build.
  if (!process.env.SALESMANAGO_RELAY_BIN) {
    const built = spawnSync("cargo", ["build", "--release", "-p", "salesmanago-relay"], { cwd: root, stdio: "inherit" });
    if (built.status !== 0) throw new Error("cargo build --release -p salesmanago-relay failed");
    process.env.SALESMANAGO_RELAY_BIN = join(root, "target", "release", "salesmanago-relay");
  }
  const { startWebhookRelay } = await import("../sandbox/relay.mjs");

  const sim = await startSimulator({ port: 0 });
  const arrived = new Map(); // e-mail → ms it reached SALESmanago
  const waiting = new Map(); // e-mail → resolve
  sim.onCall((name, body, _envelope, at) => {
    if (name !== "contact/batchupsert") return;
    for (const detail of body.upsertDetails ?? []) {
      const email = detail.contact.email.toLowerCase();
      if (!arrived.has(email)) arrived.set(email, at);
      waiting.get(email)?.(at);
    }
  });
  const sandbox = await startSandboxChild(options.concurrency);
  const relay = await startWebhookRelay(sandbox, { clientId: sim.clientId, apiSecret: sim.apiSecret, owner: sim.owner, endpoint: sim.url });
  const api = `${sandbox.url}/api/data/v9.2/`;
  // The bench writes as another system would: with the browser user's bearer token.
  const auth = { Authorization: `Bearer ${sandbox.token}` };
  try {
    // Webhooks on, on the integration record: the relay acts only when the record says so.
    const records = await (await fetch(api + "new_salesmanagointegrations?$select=new_salesmanagointegrationid", { headers: auth })).json();
    const [record] = records.value ?? [];
    if (!record) throw new Error("the sandbox has no SALESmanago Integration record");
    const on = await fetch(`${api}new_salesmanagointegrations(${record.new_salesmanagointegrationid})`, { method: "PATCH", headers: { ...auth, "Content-Type": "application/json", "If-Match": "*" }, body: JSON.stringify({ new_webhooks: true }) });
    if (on.status !== 204) throw new Error(`turning webhooks on: HTTP ${on.status}`);
    // 1. Latency, one write at a time.
    const latencies = [];
    for (let i = 0; i < options.samples; i++) {
      const email = `latency${i}@example.com`;
      const reached = new Promise((resolve) => waiting.set(email, resolve));
      const sent = Date.now();
      const response = await fetch(api + "contacts", { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ firstname: "Latency", lastname: `N${i}`, emailaddress1: email }) });
      if (response.status !== 204) throw new Error(`create: HTTP ${response.status}`);
      const at = await Promise.race([reached, new Promise((_, reject) => setTimeout(() => reject(new Error(`${email} did not arrive in 60 s`)), 60_000).unref())]);
      waiting.delete(email);
      latencies.push(at - sent);
    }
    latencies.sort((a, b) => a - b);

    // 2. Throughput of an import.
    const n = options.contacts;
    const start = Date.now();
    const all = new Promise((resolve) => {
      const timer = setInterval(() => {
        let count = 0;
        for (const email of arrived.keys()) if (email.startsWith("import")) count++;
        if (count >= n) {
          clearInterval(timer);
          resolve(Date.now());
        }
      }, 100);
    });
    for (let from = 0; from < n; from += 1000) {
      const parts = [];
      for (let i = from; i < Math.min(n, from + 1000); i++) {
        const row = { firstname: "Import", lastname: `N${i}`, emailaddress1: `import${i}@example.com` };
        parts.push(["--changeset_1", "Content-Type: application/http", "Content-Transfer-Encoding: binary", `Content-ID: ${i - from + 1}`, "", `POST ${api}contacts HTTP/1.1`, "Content-Type: application/json", "", JSON.stringify(row)].join("\r\n"));
      }
      const body = ["--batch_1", "Content-Type: multipart/mixed; boundary=changeset_1", "", ...parts, "--changeset_1--", "--batch_1--", ""].join("\r\n");
      const response = await fetch(api + "$batch", { method: "POST", headers: { ...auth, "Content-Type": "multipart/mixed; boundary=batch_1" }, body });
      if (response.status !== 200) throw new Error(`$batch: HTTP ${response.status}`);
    }
    const written = Date.now();
    const done = await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error("the import did not arrive within 30 minutes")), 30 * 60_000).unref())]);
    const seconds = (done - start) / 1000;
    const batches = sim.stats().calls["contact/batchupsert"] ?? 0;
    console.log(`latency (${options.samples} single writes, API write → contact in SALESmanago): median ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies.at(-1)} ms`);
    console.log(`import of ${n} contacts through webhooks: ${seconds.toFixed(1)} s, ${Math.round(n / seconds)} contacts/s (the writes took ${((written - start) / 1000).toFixed(1)} s; ${batches} batch upserts, ${(n / batches).toFixed(1)} contacts each; ${options.concurrency} deliveries under way at once)`);
  } finally {
    await relay.stop();
    sandbox.stop();
    await sim.close();
  }
}

main().catch((error) => {
  console.error(`bench:webhooks: ${error.message}`);
  process.exit(1);
});
