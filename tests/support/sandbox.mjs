// The sandbox and the simulator for browser end-to-end tests, and page helpers that act as a
// user would: open a page, click a command-bar button, read and close the dialog it opens.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSimulator } from "../simulator/server.mjs";
import { startSandbox } from "../../sandbox/server.mjs";
import { demoContacts, demoSalesmanago } from "../../sandbox/seed.mjs";
import { launchChromium } from "./browser.mjs";

/** Starts the simulator, a sandbox with `contacts` demo contacts in a temp dir, and Chromium. */
export async function startSandboxWorld({ contacts = 60, webhooks = null } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "salesmanago-sandbox-"));
  // A SALESmanago that answers the browser directly, which the live API is not known to do
  // (tests/relay-e2e.test.mjs runs the world as the evidence has it, through the relay).
  const sim = await startSimulator({ port: 0, cors: true });
  sim.seed(demoSalesmanago(demoContacts(contacts)));
  const sandbox = await startSandbox({ port: 0, dataFile: join(dir, "dataverse.json"), reset: true, contacts, webhooks });
  const chromium = await launchChromium();
  const page = await chromium.context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  return {
    sim,
    sandbox,
    page,
    problems,
    credentials: { clientId: sim.clientId, apiSecret: sim.apiSecret, owner: sim.owner, endpoint: sim.url },
    async close() {
      await chromium.close();
      await sandbox.close();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Opens a sandbox page in language `lcid` and waits until its forms and command bar are built. */
export async function open(world, path, lcid = 1033) {
  const { page, sandbox } = world;
  await page.goto(`${sandbox.url}${path}?lcid=${lcid}`);
  await page.waitForFunction(() => window.__sandbox && (window.__sandbox.ready || window.__sandbox.fatal), null, { timeout: 20_000 });
  const fatal = await page.evaluate(() => window.__sandbox.fatal);
  if (fatal) throw new Error(`sandbox page ${path} failed: ${fatal}`);
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

/** Stores the simulator's credentials on the integration record, as an admin would have. */
export function configure(world, extra = {}) {
  const [record] = world.sandbox.dataverse.rows("new_salesmanagointegration");
  const { clientId, apiSecret, owner, endpoint } = world.credentials;
  world.sandbox.dataverse.seed("new_salesmanagointegration", [
    { ...record, new_clientid: clientId, new_apisecret: apiSecret, new_owner: owner, new_endpoint: endpoint, ...extra },
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
