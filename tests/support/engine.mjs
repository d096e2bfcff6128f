// The test engine (web resource engine.en.js) loaded into this Node process, and a SALESmanago
// simulator for it to call: the real wasm client against an independent server.
import vm from "node:vm";
import { startSimulator } from "../simulator/server.mjs";
import { testEngine } from "./package.mjs";

let engine;

/** The test engine's exports; its engine.en.js is evaluated once, as a browser would. */
export async function loadEngine() {
  if (!engine) {
    vm.runInThisContext(testEngine(), { filename: "engine.en.js" });
    engine = await globalThis.SalesManagoEngine.ready();
  }
  return engine;
}

/** A simulator on 127.0.0.1 with helpers for its control endpoints. */
export async function simulator(options = {}) {
  // Answering the browser directly, unless a test says otherwise (the live API is not known to).
  const sim = await startSimulator({ port: 0, cors: true, ...options });
  const control = async (path, body) => {
    const init = body === undefined ? {} : { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } };
    const response = await fetch(sim.url + path, init);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  };
  return {
    ...sim,
    config: (extra = {}) => ({ endpoint: sim.url, clientId: sim.clientId, apiSecret: sim.apiSecret, owner: sim.owner, ...extra }),
    contacts: () => control("/__sim/contacts"),
    seed: (contacts) => control("/__sim/contacts", contacts),
    stats: () => control("/__sim/stats"),
    faults: (faults) => control("/__sim/faults", faults),
    reset: () => control("/__sim/reset", {}),
  };
}

/** Calls SALESmanago through the engine; resolves to the parsed output. */
export async function call(config, method, fields = {}, lcid = 1033) {
  const engine = await loadEngine();
  return JSON.parse(await engine.salesmanagoCall(JSON.stringify(config), JSON.stringify({ method, ...fields }), lcid));
}

/** The error a call rejects with: `{kind, message}`. */
export async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return { kind: error.kind, message: error.message };
  }
  throw new Error("the call succeeded, but a failure was expected");
}
