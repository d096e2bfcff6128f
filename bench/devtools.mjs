// A bare headless Chromium driven over the DevTools pipe, for `npm run bench`.
//
// Playwright enables the DevTools Network domain on every page it drives, so the browser reports
// each request (with its body) to the driver as it goes. That costs the page about as much again
// per request as the request itself (`npm run bench -- --driver playwright` shows it side by
// side), and no user's browser pays it. This driver sends only what the bench asks for:
// navigation, `Runtime.evaluate`, and the profiler when `--profile 1` wants it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage", "--remote-debugging-pipe",
];

/** One DevTools connection over the pipe Chromium reads on fd 3 and writes on fd 4. */
class Pipe {
  constructor(child) {
    this.out = child.stdio[3];
    this.pending = new Map();
    this.nextId = 1;
    let buffer = "";
    child.stdio[4].setEncoding("utf8");
    child.stdio[4].on("data", (chunk) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf("\0")) >= 0) {
        const message = JSON.parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
        const waiter = message.id !== undefined && this.pending.get(message.id);
        if (!waiter) continue; // an event: this driver subscribes to none it needs
        this.pending.delete(message.id);
        if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
        else waiter.resolve(message.result);
      }
    });
    const fail = (why) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${waiter.method}: ${why}`));
      this.pending.clear();
    };
    // A write to a browser that is gone fails here; the exit or error below says why.
    this.out.on("error", () => {});
    child.on("exit", () => fail("the browser ended"));
    child.on("error", (error) => fail(`Chromium did not start (${error.message}); \`npm run setup\` installs it`));
  }

  send(method, params = {}, sessionId) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
      this.out.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
    });
  }
}

/** A page: the calls of Playwright's `Page` that the bench uses, over the bare pipe. */
class Page {
  constructor(pipe, sessionId) {
    this.pipe = pipe;
    this.sessionId = sessionId;
  }

  send(method, params) {
    return this.pipe.send(method, params, this.sessionId);
  }

  async goto(url) {
    const { errorText } = await this.send("Page.navigate", { url });
    if (errorText) throw new Error(`navigation to ${url}: ${errorText}`);
  }

  /** Runs `fn(arg)` in the page and returns its (awaited) result by value. */
  async evaluate(fn, arg) {
    const expression = `(${fn})(${arg === undefined ? "" : JSON.stringify(arg)})`;
    const { result, exceptionDetails } = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (exceptionDetails) throw new Error(`in the page: ${exceptionDetails.exception?.description || exceptionDetails.text}`);
    return result.value;
  }

  /** Polls `fn(arg)` every 50 ms until it is truthy; a page still loading counts as not yet. */
  async waitForFunction(fn, arg, { timeout = 30_000 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const value = await this.evaluate(fn, arg).catch(() => undefined);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`waited ${timeout} ms for ${fn}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** A DevTools session on this page, shaped like Playwright's `CDPSession`. */
  async session() {
    return { send: (method, params) => this.send(method, params) };
  }
}

/** Launches Debian's Chromium headless with a fresh profile and opens one page. */
export async function launchBare({ args = [] } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "salesmanago-chromium-"));
  const child = spawn(process.env.CHROMIUM || "/usr/bin/chromium", [...FLAGS, ...args, `--user-data-dir=${profile}`, "about:blank"], {
    stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"],
  });
  const pipe = new Pipe(child);
  const { targetId } = await pipe.send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await pipe.send("Target.attachToTarget", { targetId, flatten: true });
  const page = new Page(pipe, sessionId);
  return {
    page,
    profile,
    close: async () => {
      await pipe.send("Browser.close").catch(() => {});
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", resolve)));
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
