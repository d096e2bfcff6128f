// Headless Debian Chromium through playwright-core, and a 127.0.0.1 server for the built web
// resources at the paths Dynamics serves them from.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";
import { webresources } from "./package.mjs";

const TYPES = { ".js": "text/javascript", ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml" };
const PREFIX = "/WebResources/new_/salesmanago/";

/** Serves the built web resources, plus `pages` (path → text; HTML unless the path says `.js`) for the test. */
export async function serveWebResources(pages = {}) {
  const requests = [];
  const server = createServer(async (request, response) => {
    const path = new URL(request.url, "http://127.0.0.1").pathname;
    requests.push(request.url);
    try {
      if (path === "/favicon.ico") {
        response.writeHead(204).end(); // the browser asks; Dynamics answers it, not us
      } else if (pages[path]) {
        response.writeHead(200, { "content-type": TYPES[extname(path)] || TYPES[".html"] }).end(pages[path]);
      } else if (path.startsWith(PREFIX) && !path.slice(PREFIX.length).includes("/")) {
        const file = path.slice(PREFIX.length);
        const body = await readFile(join(webresources, file));
        response.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream" }).end(body);
      } else {
        response.writeHead(404).end();
      }
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { base, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Launches Debian's Chromium headless with a fresh profile; never downloads a browser. */
export async function launchChromium({ args = [] } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "salesmanago-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage",
      ...args,
    ],
    timeout: 30_000,
  });
  return {
    context: browser,
    profile,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
