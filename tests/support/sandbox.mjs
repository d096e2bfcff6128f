// The sandbox, the simulator and the relay for browser end-to-end tests, and page helpers that
// act as a user would: open a page, click a command-bar button, read and close the dialog it
// opens.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSimulator } from "../simulator/server.mjs";
import { startSandbox } from "../../sandbox/server.mjs";
import { startBrowserRelay, startWebhookRelay } from "../../sandbox/relay.mjs";
import { demoContacts, demoSalesmanago } from "../../sandbox/seed.mjs";
import { launchChromium } from "./browser.mjs";

/**
 * Starts the simulator, a sandbox with `contacts` demo contacts in a temp dir, and Chromium.
 *
 * By default as the evidence has it and `npm start` runs: SALESmanago refuses the browser (no
 * CORS headers, as the live API most likely does), and salesmanago-relay (the real binary) holds
 * its credentials and signs the calls; with `webhooks`, the same relay receives Dataverse's
 * webhooks, registered in the sandbox (`relayEnv`: more of its environment). `direct`: a
 * SALESmanago that answers the browser, called with the credentials on the record, and no relay.
 *
 * `dataverse`: the Dataverse data to start from (a data file's content) instead of the demo
 * contacts.
 *
 * The world holds `credentials` (SALESmanago's: what the relay holds, or the record in direct
 * mode), `form` (what an admin types on the credential page in this mode), `relay` (or null),
 * and close(), which stops them all.
 */
export async function startSandboxWorld({ contacts = 60, webhooks = null, direct = false, relayEnv = {}, dataverse = null } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "salesmanago-sandbox-"));
  const closers = [() => rmSync(dir, { recursive: true, force: true })];
  const world = {
    direct,
    relay: null,
    problems: [],
    /** Stops what the world started, the relay too (`world.relay`, as restarted by a test). */
    async close() {
      while (closers.length) await closers.pop()();
    },
  };
  try {
    world.sim = await startSimulator({ port: 0, cors: direct });
    closers.push(() => world.sim.close());
    world.sim.seed(demoSalesmanago(demoContacts(contacts)));
    const dataFile = join(dir, "dataverse.json");
    if (dataverse) writeFileSync(dataFile, JSON.stringify(dataverse));
    world.sandbox = await startSandbox({ port: 0, dataFile, reset: !dataverse, contacts, webhooks });
    closers.push(() => world.sandbox.close());
    world.credentials = { clientId: world.sim.clientId, apiSecret: world.sim.apiSecret, owner: world.sim.owner, endpoint: world.sim.url };
    if (direct) {
      world.form = { ...world.credentials, relayKey: "" };
    } else {
      const start = webhooks ? startWebhookRelay : startBrowserRelay;
      world.relay = await start(world.sandbox, world.credentials, { extra: relayEnv });
      closers.push(() => world.relay?.stop());
      world.form = { clientId: "", apiSecret: "", owner: "", endpoint: world.relay.url, relayKey: world.relay.key };
    }
    const chromium = await launchChromium();
    closers.push(() => chromium.close());
    world.page = await chromium.context.newPage();
    world.page.on("pageerror", (error) => world.problems.push(`pageerror: ${error.message}`));
    return world;
  } catch (error) {
    await world.close();
    throw error;
  }
}

/** Opens a sandbox page in language `lcid` and waits until its forms and command bar are built. */
export async function open(world, path, lcid = 1033) {
  const { page, sandbox } = world;
  await page.goto(`${sandbox.url}${path}?lcid=${lcid}`);
  await page.waitForFunction(() => window.__sandbox && (window.__sandbox.ready || window.__sandbox.fatal), null, { timeout: 20_000 });
  const fatal = await page.evaluate(() => window.__sandbox.fatal);
  if (fatal) throw new Error(`sandbox page ${path} failed: ${fatal}`);
  // The integration form's mapping editor reads the contact's metadata as it opens: a test that
  // counts Dataverse's requests, or makes some fail, starts once those are done.
  if (path.startsWith("/integration") && world.sandbox.url) {
    const editor = page.frameLocator('iframe[data-control="WebResource_mapping"]');
    await editor.locator("main[data-loaded]").waitFor({ timeout: 20_000 });
  }
}

/** The command-bar button with ribbon id `id` (a Playwright locator). */
export function button(page, id) {
  return page.locator(`#commandbar button[data-id="${id}"]`);
}

/** Waits for the next dialog, returns `{kind, title, text}` and closes it with its first button. */
export async function takeDialog(page, { timeout = 20_000, screenshot = null } = {}) {
  const first = page.locator("#dialogs .dialog").first();
  await first.waitFor({ timeout });
  // Pin this dialog: the next one may open as soon as this one closes.
  const dialog = page.locator(`#dialogs .dialog[aria-labelledby="${await first.getAttribute("aria-labelledby")}"]`);
  const seen = {
    kind: await dialog.getAttribute("data-kind"),
    title: await dialog.locator("h2").innerText(),
    text: await dialog.locator(".text").innerText(),
  };
  if (screenshot) await page.screenshot({ path: screenshot });
  await dialog.locator(".buttons button").first().click();
  await dialog.waitFor({ state: "detached" });
  return seen;
}

/**
 * Clicks the command-bar button `id` of a job, takes its summary dialog, then any dialog that
 * follows it (the download prompt); resolves to the summary's text.
 */
export async function jobSummary(page, id) {
  await button(page, id).click();
  const summary = await takeDialog(page, { timeout: 60_000 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  while (await page.locator("#dialogs .dialog").count()) await takeDialog(page);
  return summary.text;
}

/** Pages through the contact grid until the row of contact `id` shows; returns its checkbox. */
export async function gridRow(page, id) {
  const box = page.locator(`tr[data-id="${id}"] input[type=checkbox]`);
  for (let n = 1; n <= 20; n++) {
    await page.locator(`table.grid[data-page="${n}"]`).waitFor();
    if (await box.count()) return box;
    const next = page.locator("nav.pager button").last();
    if (await next.isDisabled()) break;
    await next.click();
  }
  throw new Error(`contact ${id} is on no page of the grid`);
}

/** The credential page inside the integration form. */
export function credentialFrame(page) {
  return page.frameLocator('iframe[data-control="WebResource_credentials"]');
}

/** Types the credentials into the credential page and saves; resolves to the status text. */
export async function saveCredentials(page, credentials) {
  const frame = credentialFrame(page);
  await frame.locator("#save:not([disabled])").waitFor({ timeout: 20_000 });
  for (const [id, value] of Object.entries(credentials)) await frame.locator(`#${id}`).fill(value);
  await frame.locator("#save").click();
  await frame.locator("#status:not(:empty)").waitFor();
  const status = await frame.locator("#status").innerText();
  await frame.locator("#save:not([disabled])").waitFor();
  return status;
}

/**
 * Every input, select and textarea without an accessible label, and every button without an
 * accessible name, in the page's document (for frames, evaluate it in the frame).
 */
export function unlabelled() {
  const named = (e) =>
    (e.getAttribute("aria-label") || "").trim() ||
    (e.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean).map((id) => document.getElementById(id)?.textContent.trim()).join("") ||
    (e.labels && [...e.labels].map((l) => l.textContent.trim()).join("")) ||
    (e.tagName === "BUTTON" ? e.textContent.trim() : "") ||
    (e.tagName === "IFRAME" ? e.title.trim() : "");
  return [...document.querySelectorAll("input, select, textarea, button, iframe")].filter((e) => !e.hidden && !named(e)).map((e) => e.outerHTML.slice(0, 120));
}

/**
 * Stores the credentials on the integration record, as an admin would have: in relay mode the
 * relay's address and key, and no client ID, secret or owner; in direct mode the simulator's.
 */
export function configure(world, extra = {}) {
  const [record] = world.sandbox.dataverse.rows("new_salesmanagointegration");
  const { clientId, apiSecret, owner, endpoint, relayKey } = world.form;
  const text = (value) => value || null;
  world.sandbox.dataverse.seed("new_salesmanagointegration", [
    { ...record, new_clientid: text(clientId), new_apisecret: text(apiSecret), new_owner: text(owner), new_endpoint: endpoint, new_relaykey: text(relayKey), ...extra },
  ]);
}

/** Polls `check` (sync or async) until it returns a truthy value; fails after `timeout` ms. */
export async function until(check, { timeout = 15_000, what = "the condition" } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
