#!/usr/bin/env node
// `npm start`: the SALESmanago simulator and the Dynamics sandbox on 127.0.0.1, on different
// ports (so the engine's calls are really cross-origin), with demo data kept under ./.sandbox/.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startSimulator } from "../tests/simulator/server.mjs";
import { startSandbox } from "./server.mjs";
import { demoContacts, demoSalesmanago } from "./seed.mjs";

const USAGE = "usage: npm start -- [--reset] [--contacts N] [--port N] [--simulator-port N] [--latency-ms N] [--data DIR] [--json] [--webhooks]";

function parse(argv) {
  const options = { reset: false, contacts: 200, port: 4780, simulatorPort: null, latencyMs: 0, data: ".sandbox", json: false, webhooks: false };
  const numbers = { "--contacts": "contacts", "--port": "port", "--simulator-port": "simulatorPort", "--latency-ms": "latencyMs" };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === "--reset") options.reset = true;
    else if (flag === "--json") options.json = true;
    else if (flag === "--webhooks") options.webhooks = true;
    else if (flag === "--data") options.data = value();
    else if (numbers[flag]) {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number ≥ 0`);
      options[numbers[flag]] = n;
    } else throw new Error(`unknown option ${argv[i]}`);
  }
  if (options.port > 65535 || (options.simulatorPort ?? 0) > 65535) throw new Error("ports are at most 65535");
  // The endpoint the admin saves names the simulator's port, so it stays put across restarts.
  if (options.simulatorPort === null) options.simulatorPort = options.port === 0 ? 0 : options.port + 1;
  return options;
}

let options;
try {
  options = parse(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error.message}\n${USAGE}\n`);
  process.exit(2);
}

const dir = resolve(options.data);
const dataverseFile = join(dir, "dataverse.json");
const salesmanagoFile = join(dir, "salesmanago.json");
const fresh = options.reset || !existsSync(dataverseFile);
mkdirSync(dir, { recursive: true });

try {
  // Answering the browser directly, so the sandbox needs no relay; the live API is not known to
  // (see salesmanago-relay in the README).
  const simulator = await startSimulator({ port: options.simulatorPort, latencyMs: options.latencyMs, cors: true });
  if (fresh || !existsSync(salesmanagoFile)) simulator.seed(demoSalesmanago(demoContacts(options.contacts)));
  else simulator.seed(JSON.parse(readFileSync(salesmanagoFile, "utf8")));
  const sandbox = await startSandbox({ port: options.port, dataFile: dataverseFile, reset: fresh, contacts: options.contacts, latencyMs: options.latencyMs, protection: true, webhooks: options.webhooks });
  // With --webhooks: the real relay, registered in the sandbox as an admin would with
  // `salesmanago-relay register`, and the integration record switched to webhooks.
  let relay = null;
  if (options.webhooks) {
    const { startWebhookRelay } = await import("./relay.mjs");
    relay = await startWebhookRelay(sandbox, { clientId: simulator.clientId, apiSecret: simulator.apiSecret, owner: simulator.owner, endpoint: simulator.url });
    const [record] = sandbox.dataverse.rows("new_salesmanagointegration");
    sandbox.dataverse.seed("new_salesmanagointegration", [{ ...record, new_webhooks: true }]);
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

  if (options.json) {
    process.stdout.write(JSON.stringify({ sandbox: sandbox.url, simulator: simulator.url, clientId: simulator.clientId, apiSecret: simulator.apiSecret, owner: simulator.owner, ...(relay ? { relay: relay.url } : {}) }) + "\n");
  } else {
    process.stdout.write(
      [
        `Dynamics 365 sandbox:   ${sandbox.url}/contacts`,
        `SALESmanago simulator:  ${simulator.url}`,
        "",
        `Enter these on the integration form (${sandbox.url}/integration):`,
        `  Client ID     ${simulator.clientId}`,
        `  API secret    ${simulator.apiSecret}`,
        `  Owner e-mail  ${simulator.owner}`,
        `  Endpoint      ${simulator.url}`,
        "",
        ...(relay
          ? [
              `Webhooks: on. salesmanago-relay at ${relay.url} receives every change of a contact (registered: ${relay.registered.length} rows);`,
              `  try: curl -X POST ${sandbox.url}/api/data/v9.2/contacts -H 'Content-Type: application/json' -d '{"firstname":"Ala","emailaddress1":"ala@example.com"}'`,
              "",
            ]
          : []),
        `Data: ${options.data}/ (${fresh ? `new, ${options.contacts} demo contacts` : "kept from the last run"}; \`npm start -- --reset\` starts afresh). Ctrl+C stops.`,
        "",
      ].join("\n"),
    );
  }

  const stop = async () => {
    clearInterval(timer);
    calls = -1; // save even if only the control endpoints changed it
    saveSalesmanago();
    await relay?.stop();
    await Promise.all([sandbox.close(), simulator.close()]);
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} catch (error) {
  process.stderr.write(`npm start: ${error.message}\n`);
  process.exit(1);
}
