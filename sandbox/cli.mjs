#!/usr/bin/env node
// `npm start`: the Dynamics sandbox, the SALESmanago simulator and salesmanago-relay on
// 127.0.0.1, on different ports (so the engine's calls are really cross-origin), with demo data
// kept under ./.sandbox/. By default as a real org should run: the simulator refuses browsers,
// as the live API most likely does, and the engine calls it through the relay, which holds the
// credentials. `--direct`: the simulator answers the browser, and the engine calls it directly.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startSimulator } from "../tests/simulator/server.mjs";
import { startSandbox } from "./server.mjs";
import { demoContacts, demoSalesmanago } from "./seed.mjs";

const USAGE = `usage: npm start -- [--direct] [--webhooks] [--reset] [--contacts N] [--port N] [--simulator-port N] [--relay-port N] [--latency-ms N] [--data DIR] [--json] [--help]

Starts the Dynamics 365 sandbox, the SALESmanago simulator and (in relay mode) salesmanago-relay,
and prints what to type on the integration form.

  (default)           relay mode: the simulator refuses browsers, as the live API most likely
                      does; salesmanago-relay holds its credentials and signs the calls; the
                      integration record holds only the relay's address and a relay key
  --direct            direct mode: the simulator answers browsers, no relay; the record holds
                      the client ID, API secret, owner and endpoint
  --webhooks          Dataverse's webhooks to the relay, registered as \`salesmanago-relay
                      register\` does: a contact changed anywhere reaches SALESmanago (one relay
                      serves the browser and the webhooks)
  --reset             start afresh: new demo data and a new relay key
  --contacts N        how many demo contacts a new sandbox gets (200)
  --port N            the sandbox's port (4780); the simulator takes the next, the relay the one
                      after; 0 picks free ports
  --simulator-port N  the simulator's port (port + 1)
  --relay-port N      the relay's port (port + 2)
  --latency-ms N      delay before every Dataverse and SALESmanago answer (0)
  --data DIR          where the data and the relay key live (.sandbox)
  --json              print one JSON line for scripts
  --help              print this and exit`;

function parse(argv) {
  const options = { direct: false, reset: false, contacts: 200, port: 4780, simulatorPort: null, relayPort: null, latencyMs: 0, data: ".sandbox", json: false, webhooks: false, help: false };
  const numbers = { "--contacts": "contacts", "--port": "port", "--simulator-port": "simulatorPort", "--relay-port": "relayPort", "--latency-ms": "latencyMs" };
  const switches = { "--direct": "direct", "--reset": "reset", "--json": "json", "--webhooks": "webhooks", "--help": "help", "-h": "help" };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (switches[flag] && inline === undefined) options[switches[flag]] = true;
    else if (flag === "--data") {
      options.data = value();
      if (!options.data) throw new Error("--data needs a directory");
    } else if (numbers[flag]) {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number ≥ 0`);
      options[numbers[flag]] = n;
    } else throw new Error(`unknown option ${argv[i]}`);
  }
  // The endpoint the admin saves names the simulator's port (direct) or the relay's (relay mode),
  // so both stay put across restarts.
  if (options.simulatorPort === null) options.simulatorPort = options.port === 0 ? 0 : options.port + 1;
  if (options.relayPort === null) options.relayPort = options.port === 0 ? 0 : options.port + 2;
  if ([options.port, options.simulatorPort, options.relayPort].some((port) => port > 65535)) throw new Error("ports are at most 65535");
  return options;
}

let options;
try {
  options = parse(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error.message}\n${USAGE}\n`);
  process.exit(2);
}
if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const dir = resolve(options.data);
const dataverseFile = join(dir, "dataverse.json");
const salesmanagoFile = join(dir, "salesmanago.json");
const relayFile = join(dir, "relay.json");
const fresh = options.reset || !existsSync(dataverseFile);
mkdirSync(dir, { recursive: true });
if (options.reset) rmSync(relayFile, { force: true });

/**
 * The browser's relay key, `{key, stored}`: kept in the data dir, so that the key the admin typed
 * once keeps working after a restart; a new one on the first run and after --reset.
 */
function relayKey(newKey) {
  try {
    const kept = JSON.parse(readFileSync(relayFile, "utf8"));
    if (typeof kept.key === "string" && typeof kept.stored === "string" && kept.key.includes(".")) return kept;
  } catch {
    // none yet, or unreadable: a new one
  }
  const made = newKey("browser");
  writeFileSync(relayFile + ".tmp", JSON.stringify(made), { mode: 0o600 });
  renameSync(relayFile + ".tmp", relayFile);
  return made;
}

// Stopping (Ctrl+C, or a signal at any time, even while starting) closes what was started, last
// first: the relay before the sandbox and the simulator.
const closers = [];
let stopping = false;
const stop = async (code) => {
  if (stopping) return;
  stopping = true;
  for (const close of closers.reverse()) await Promise.resolve(close()).catch((error) => process.stderr.write(`npm start: ${error.message}\n`));
  process.exit(code);
};
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));

try {
  // Relay mode: SALESmanago refuses the browser's origin, as the live API most likely does
  // (see salesmanago-relay in the README). Direct mode: it answers the browser.
  const simulator = await startSimulator({ port: options.simulatorPort, latencyMs: options.latencyMs, cors: options.direct });
  closers.push(() => simulator.close());
  if (fresh || !existsSync(salesmanagoFile)) simulator.seed(demoSalesmanago(demoContacts(options.contacts)));
  else simulator.seed(JSON.parse(readFileSync(salesmanagoFile, "utf8")));
  const sandbox = await startSandbox({ port: options.port, dataFile: dataverseFile, reset: fresh, contacts: options.contacts, latencyMs: options.latencyMs, protection: true, webhooks: options.webhooks });
  closers.push(() => sandbox.close());
  const credentials = { clientId: simulator.clientId, apiSecret: simulator.apiSecret, owner: simulator.owner, endpoint: simulator.url };

  // The real relay, in relay mode for the browser, with --webhooks for Dataverse's webhooks too
  // (registered in the sandbox as an admin would with `salesmanago-relay register`, and the
  // integration record switched to webhooks): one relay for both.
  let relay = null;
  if (!options.direct || options.webhooks) {
    const { ensureRelay, newKey, startBrowserRelay, startWebhookRelay } = await import("./relay.mjs");
    ensureRelay();
    const key = relayKey(newKey);
    const start = options.webhooks ? startWebhookRelay : startBrowserRelay;
    relay = await start(sandbox, credentials, { key, listen: `127.0.0.1:${options.relayPort}`, keepLog: false });
    closers.push(() => relay.stop());
    relay.exited.then((code) => {
      if (!stopping) process.stderr.write(`npm start: salesmanago-relay stopped (${code}); restart npm start\n`);
    });
    if (options.webhooks) {
      const [record] = sandbox.dataverse.rows("new_salesmanagointegration");
      sandbox.dataverse.seed("new_salesmanagointegration", [{ ...record, new_webhooks: true }]);
    }
  }

  // SALESmanago's side survives restarts too: saved whenever it was called.
  let calls = -1;
  const saveSalesmanago = () => {
    const total = simulator.stats().total;
    if (total === calls) return;
    calls = total;
    writeFileSync(salesmanagoFile + ".tmp", JSON.stringify(simulator.contacts()));
    renameSync(salesmanagoFile + ".tmp", salesmanagoFile);
  };
  saveSalesmanago();
  const timer = setInterval(saveSalesmanago, 2000);
  closers.push(() => {
    clearInterval(timer);
    calls = -1; // save even if only the control endpoints changed it
    saveSalesmanago();
  });

  const mode = options.direct ? "direct" : "relay";
  if (options.json) {
    process.stdout.write(
      JSON.stringify({
        mode,
        sandbox: sandbox.url,
        dataverseToken: sandbox.token,
        simulator: simulator.url,
        relay: relay?.url ?? null,
        relayKey: relay?.key ?? null,
        clientId: simulator.clientId,
        apiSecret: simulator.apiSecret,
        owner: simulator.owner,
      }) + "\n",
    );
  } else {
    const form = `Enter these on the integration form (${sandbox.url}/integration), then Save credentials:`;
    process.stdout.write(
      [
        `Dynamics 365 sandbox:   ${sandbox.url}/contacts`,
        `Dataverse Web API:      ${sandbox.url}/api/data/v9.2/ (as the browser user: Authorization: Bearer ${sandbox.token})`,
        `SALESmanago simulator:  ${simulator.url}${options.direct ? "" : " (refuses browsers, as the live API most likely does)"}`,
        ...(relay ? [`salesmanago-relay:      ${relay.url} (holds the simulator's credentials and signs the calls)`] : []),
        "",
        ...(options.direct
          ? [
              "Direct mode: the browser calls SALESmanago itself.",
              form,
              `  Client ID     ${simulator.clientId}`,
              `  API secret    ${simulator.apiSecret}`,
              `  Owner e-mail  ${simulator.owner}`,
              `  Endpoint      ${simulator.url}`,
              `  Relay key     (empty)`,
              "",
              "Through salesmanago-relay instead, as a real org should run it: npm start (without --direct)",
            ]
          : [
              "Relay mode: the browser calls SALESmanago through the relay.",
              form,
              `  Client ID     (empty)`,
              `  API secret    (empty: the relay holds it)`,
              `  Owner e-mail  (empty)`,
              `  Endpoint      ${relay.url}`,
              `  Relay key     ${relay.key}`,
              "",
              "Calling SALESmanago directly instead (the simulator then answers browsers): npm start -- --direct",
            ]),
        "",
        ...(options.webhooks
          ? [
              `Webhooks: on. salesmanago-relay at ${relay.url} receives every change of a contact (registered: ${relay.registered.length} rows);`,
              `  try: curl -X POST ${sandbox.url}/api/data/v9.2/contacts -H 'Authorization: Bearer ${sandbox.token}' -H 'Content-Type: application/json' -d '{"firstname":"Ala","emailaddress1":"ala@example.com"}'`,
              "",
            ]
          : []),
        `Data: ${options.data}/ (${fresh ? `new, ${options.contacts} demo contacts` : "kept from the last run"}; \`npm start -- --reset\` starts afresh). Ctrl+C stops.`,
        "",
      ].join("\n"),
    );
  }
} catch (error) {
  process.stderr.write(`npm start: ${error.message}\n`);
  await stop(1);
}
