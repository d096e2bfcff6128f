// The wasm client in headless Chromium, calling the simulator from another origin as it calls
// SALESmanago from a Dynamics page: CORS preflight, a readable Retry-After, and a cross-origin
// refusal told apart from a server that is down.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { launchChromium, serveWebResources } from "./support/browser.mjs";
import { simulator } from "./support/engine.mjs";
import { testEngine } from "./support/package.mjs";

const HOST = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>engine host</title>
<script src="/test-engine.js"></script>
<script>
  window.smCall = async (config, call, lcid) => {
    const engine = await SalesManagoEngine.ready();
    try {
      return { output: JSON.parse(await engine.salesmanagoCall(JSON.stringify(config), JSON.stringify(call), lcid)) };
    } catch (error) {
      return { kind: error.kind, message: error.message };
    }
  };
</script></head><body></body></html>`;

let server;
let chromium;
let sim;
let page;

before(async () => {
  server = await serveWebResources({ "/host.html": HOST, "/test-engine.js": testEngine() });
  sim = await simulator();
  chromium = await launchChromium();
  page = await chromium.context.newPage();
  await page.goto(`${server.base}/host.html`);
});

after(async () => {
  await chromium?.close();
  await server?.close();
  await sim?.close();
});

beforeEach(() => sim.reset());

const inBrowser = (config, call, lcid = 1033) => page.evaluate(([c, k, l]) => window.smCall(c, k, l), [config, call, lcid]);

test("the page and the simulator are different origins", () => {
  assert.notEqual(new URL(server.base).origin, new URL(sim.url).origin);
});

test("a cross-origin call passes the CORS preflight and stores the contact", async () => {
  const result = await inBrowser(sim.config(), { method: "contact/upsert", contact: { email: "cors@example.com", name: "Cors" } });
  assert.match(result.output?.contactId ?? "", /^[0-9a-f-]{36}$/, JSON.stringify(result));
  assert.deepEqual((await sim.contacts()).map((c) => c.email), ["cors@example.com"]);
});

test("the browser reads Retry-After and waits it out", async () => {
  await sim.faults({ throttle: { every: 1, retryAfter: 1, count: 1 } });
  const started = Date.now();
  const result = await inBrowser(sim.config({ baseDelayMs: 5 }), { method: "user/listByClient" });
  assert.ok(result.output?.users?.length > 0, JSON.stringify(result));
  assert.ok(Date.now() - started >= 950, "waited the second SALESmanago asked for, not the 5 ms backoff");
});

test("an endpoint that refuses cross-origin calls is reported as such, in Polish too", async () => {
  await sim.faults({ cors: false });
  const result = await inBrowser(sim.config(), { method: "user/listByClient" });
  assert.equal(result.kind, "crossOrigin", JSON.stringify(result));
  assert.match(result.message, /CORS/);
  assert.match(result.message, /relay/);
  const polish = await inBrowser(sim.config(), { method: "user/listByClient" }, 1045);
  assert.match(polish.message, /pośrednika/);
});

test("a server that is down is not mistaken for a CORS refusal", async () => {
  const closed = await new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
  const result = await inBrowser(sim.config({ endpoint: `http://127.0.0.1:${closed}`, maxAttempts: 1 }), { method: "user/listByClient" });
  assert.equal(result.kind, "network", JSON.stringify(result));
});
