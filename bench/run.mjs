#!/usr/bin/env node
// `npm run bench`: bulk jobs at scale in the sandbox, in headless Chromium, against the
// SALESmanago simulator (in its own process, so the two servers do not share a core).
//
//   npm run bench -- [--contacts N] [--latency-ms L] [--concurrency K] [--naive N] [--small N]
//                    [--profile 1] [--driver devtools|playwright] [--mapped N] [--activity 0|1]
//                    [--stall-limit-ms M] [--protection 0|1] [--job-minutes M]
//   npm run bench -- --compare-mapped N [--repeat R] [--contacts N] [--latency-ms L]
//     Export all alone, with no mapping and with N mapped columns in turn, R pairs (default 3),
//     each run on a fresh sandbox whose contacts have the N columns either way: each pair's
//     times, and the median of the pairs' ratios
//     (with --profile 1, each run's CPU by process too).
//   BENCH_ENGINE=<a directory built with --test-engine: its engine.en.js, engine-export.pl.js, … (or, an earlier build's, engine.js, engine-export.js, …)> runs
//   another engine (an earlier commit's, built in a `git worktree`) in this bench and sandbox: a
//   pair of runs, before and after.
//   With --profile 1 each of Export all, Pull consents, Pull changes and Pull activity also prints the page's
//   heaviest functions (BENCH_PROFILE_TOP of them, 15 by default), their sum by kind, and the
//   functions of the longest stretch without idle time: what a long task was doing.
//   npm run bench -- --relay [options of bench/relay.mjs]   (the relay's load bench instead)
//
// For each job it prints contacts per second, the pipeline limit (the shortest time its requests
// allow with K of them in flight to each service, as the services answered them, and Dataverse's
// modelled service-protection budget allows: `pipelineLimit`), the ratio limit/measured,
// the speed-up over a naive one-upsert-per-contact baseline (measured on a small N, scaled),
// and peak memory (JS heap after a collection + wasm). `--mapped N` (at most 20) adds N columns to
// every contact (texts, numbers, dates, Yes/No and choices in turn) and maps them to SALESmanago
// details and tags, as an admin's field mapping would. `--activity 0` leaves Pull activity out: it
// creates about three rows a contact, so Dataverse's execution-time budget (20 minutes of it per
// 5 minutes) makes it wait whole windows (about 10 minutes at 100,000 contacts). Each job's
// longest stall (the worst delay of a 50 ms timer on the page, with the servers at a lower
// priority than the browser: see `serversBehindBrowser`) must be at most 50 ms
// (`--stall-limit-ms`; 0 only reports), else the bench fails once it has printed everything.
// `--protection 0` turns the stand-in's service protection off (and out of the limits): at a
// million contacts the write-backs alone need about eight 5-minute windows of Dataverse's
// execution time, so the jobs' own speed and memory are measured so. A job that shows no summary
// within 15 minutes fails the bench (`--job-minutes` allows more).
// `--naive 0` skips the naive baseline and `--small 0` the memory run at the smaller size.
// Its last lines are:
//   stalls: <job> <ms> ms, ...
//   bench: export <ratio to limit> of limit, <speed-up> x naive, wasm <bytes> B
// (`not measured` in place of `<speed-up> x naive` with `--naive 0`).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { availableParallelism, setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { launchChromium } from "../tests/support/browser.mjs";
import { launchBare } from "./devtools.mjs";
import { startSandbox, root } from "../sandbox/server.mjs";
import { DEFAULT_PROTECTION } from "../sandbox/dataverse.mjs";

const PAGE = 400; // contacts per Dataverse page and per SALESmanago batch (BatchUpsert::MAX)
const LOOKUP = 100; // ids per contact/listById call
const FIRST_STATUS_S = 2; // pull consents first asks whether the export file is ready after 2 s
const STALL_LIMIT_MS = 50; // the longest a job may hold the tab's main thread (a "long task")

const USAGE = "usage: npm run bench -- [--contacts N] [--latency-ms L] [--concurrency K] [--naive N] [--small N] [--profile 1] [--driver devtools|playwright] [--mapped N] [--activity 0|1] [--stall-limit-ms M] [--protection 0|1] [--job-minutes M] [--compare-mapped N [--repeat R]]";
const DRIVERS = ["devtools", "playwright"];

function parse(argv) {
  const options = { contacts: 100_000, latencyMs: 20, concurrency: 4, naive: 200, small: 10_000, profile: 0, driver: "devtools", mapped: 0, compareMapped: 0, repeat: 3, activity: 1, stallLimitMs: STALL_LIMIT_MS, protection: 1, jobMinutes: 15 };
  const names = { "--contacts": "contacts", "--latency-ms": "latencyMs", "--concurrency": "concurrency", "--naive": "naive", "--small": "small", "--profile": "profile", "--driver": "driver", "--mapped": "mapped", "--compare-mapped": "compareMapped", "--repeat": "repeat", "--activity": "activity", "--stall-limit-ms": "stallLimitMs", "--protection": "protection", "--job-minutes": "jobMinutes" };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const key = names[flag];
    const text = inline !== undefined ? inline : argv[++i];
    const value = key === "driver" ? text : Number(text);
    const bad = !key
      ? `unknown option ${flag}`
      : key === "driver"
        ? !DRIVERS.includes(value) && `${flag} takes ${DRIVERS.join(" or ")}, not ${text ?? "nothing"}`
        : key === "jobMinutes"
          ? (!Number.isInteger(value) || value < 1) && `${flag} takes a whole number ≥ 1, not ${text ?? "nothing"}`
          : (!Number.isInteger(value) || value < 0) && `${flag} takes a whole number ≥ 0, not ${text ?? "nothing"}`;
    if (bad) {
      process.stderr.write(`${bad}\n${USAGE}\n`);
      process.exit(2);
    }
    options[key] = value;
  }
  options.small = Math.min(options.small, options.contacts);
  options.mapped = Math.min(options.mapped, 20);
  options.compareMapped = Math.min(options.compareMapped, 20);
  options.repeat = Math.max(options.repeat, 1);
  return options;
}

/**
 * The browser the jobs run in: bare Chromium over the DevTools pipe (the default), or Playwright's,
 * whose network instrumentation makes each request cost the page more (for a side-by-side run).
 */
async function launch(driver, args) {
  if (driver === "devtools") return launchBare({ args });
  const browser = await launchChromium({ args });
  const page = await browser.context.newPage();
  page.session = () => page.context().newCDPSession(page);
  return { page, profile: browser.profile, close: () => browser.close() };
}

const log = (line) => process.stdout.write(line + "\n");

/** CPU seconds used so far by the processes whose command line contains `marker` (Linux /proc),
 * in all and by Chromium process kind (`renderer`, `network`, `gpu`, `main`, ...). */
function cpuSeconds(marker) {
  const kinds = {};
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.includes(marker)) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      const used = Number(fields[11]) + Number(fields[12]); // utime, stime
      const kind = /--utility-sub-type=network/.test(cmdline) ? "network" : (/--type=([a-z-]+)/.exec(cmdline)?.[1] ?? "main");
      kinds[kind] = (kinds[kind] ?? 0) + used / 100;
      ticks += used;
    } catch {
      // the process ended
    }
  }
  return { total: ticks / 100, kinds };
}

/** CPU seconds of the browser (with its processes by kind), the sandbox (this process) and the simulator. */
function cpu(profile) {
  const own = process.cpuUsage();
  const browser = cpuSeconds(profile);
  return { browser: browser.total, kinds: browser.kinds, sandbox: (own.user + own.system) / 1e6, simulator: cpuSeconds("tests/simulator/cli.mjs").total };
}

/** A job run by `runJob`, with the CPU each process used meanwhile as `job.cpuLine`. */
async function measuredJob(page, id, profile) {
  const before = cpu(profile);
  const job = await runJob(page, id);
  const after = cpu(profile);
  const part = (k) => `${k} ${fmt(after[k] - before[k], 1)} s`;
  const kinds = Object.keys(after.kinds)
    .map((k) => [k, after.kinds[k] - (before.kinds[k] ?? 0)])
    .filter(([, s]) => s >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, s]) => `${k} ${fmt(s, 1)}`)
    .join(", ");
  const cores = availableParallelism();
  // Browser, stand-in and simulator share this machine's cores: their CPU alone needs this much wall time.
  const used = ["browser", "sandbox", "simulator"].reduce((sum, k) => sum + after[k] - before[k], 0);
  const bound = used / cores;
  job.cpuLine =
    `  CPU during the job (${fmt(job.ms / 1000, 1)} s wall, ${cores} cores): ${part("browser")} (${kinds}), ${part("sandbox")} (Dataverse stand-in), ${part("simulator")}` +
    `\n  CPU bound: ${fmt(used, 1)} s of CPU on ${cores} cores needs ${fmt(bound, 2)} s of wall time at least; the job took ${fmt(job.ms / 1000 / bound, 2)}× that`;
  return job;
}
const fmt = (n, digits = 2) => Number(n).toFixed(digits);

/**
 * `measuredJob`, and with `profile` on, the page's CPU profile meanwhile: its heaviest functions
 * by self time (BENCH_PROFILE_TOP of them, 15 by default), their sum by kind, and the functions
 * of its longest stretch without idle time (what a long task was doing).
 */
async function profiledJob(page, id, processes, profile) {
  const cdp = profile ? await page.session() : null;
  if (cdp) await cdp.send("Profiler.enable").then(() => cdp.send("Profiler.start"));
  const job = await measuredJob(page, id, processes);
  if (!cdp) return job;
  const { profile: samples } = await cdp.send("Profiler.stop");
  const byId = new Map(samples.nodes.map((n) => [n.id, n]));
  const keyOf = (id) => {
    const f = byId.get(id).callFrame;
    return `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber}`;
  };
  const keys = samples.samples.map(keyOf);
  const dt = samples.timeDeltas;
  const sum = (from, to) => {
    const self = new Map();
    for (let i = from; i < to; i++) self.set(keys[i], (self.get(keys[i]) || 0) + (dt[i] || 0));
    return self;
  };
  const self = sum(0, keys.length);
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.BENCH_PROFILE_TOP) || 15);
  for (const [key, us] of top) log(`  profile: ${fmt(us / 1000, 0)} ms ${key}`);
  // The same samples by where they ran: the engine, page JS, the browser's own functions.
  const kinds = new Map();
  for (const [key, us] of self) {
    const kind = / \((idle|program|garbage collector)\) /.test(` ${key} `) ? key.split(" :")[0] : key.includes(".wasm") || key.startsWith("wasm-function") ? "engine (wasm)" : /\.m?js/.test(key) ? "page JS" : "built-ins (fetch, Request, text codecs, ...)";
    kinds.set(kind, (kinds.get(kind) || 0) + us);
  }
  log(`  profile by kind: ${[...kinds].sort((a, b) => b[1] - a[1]).map(([k, us]) => `${k} ${fmt(us / 1000, 0)} ms`).join(", ")}`);
  // The longest stretch of samples none of which is idle.
  let best = [0, 0, 0];
  for (let i = 0, start = 0, span = 0; i <= keys.length; i++) {
    if (i === keys.length || keys[i].startsWith("(idle)")) {
      if (span > best[2]) best = [start, i, span];
      start = i + 1;
      span = 0;
    } else span += dt[i] || 0;
  }
  const stretch = [...sum(best[0], best[1])].sort((a, b) => b[1] - a[1]).slice(0, 8);
  log(`  longest busy stretch: ${fmt(best[2] / 1000, 0)} ms: ${stretch.map(([k, us]) => `${fmt(us / 1000, 0)} ms ${k}`).join("; ")}`);
  return job;
}

/**
 * The servers (the Dataverse stand-in in this process, the simulator in its own) stand for other
 * machines. Once Chromium runs (it keeps the priority it started with), they take a lower one,
 * so that on a 2-core machine their work, such as collecting a stand-in heap of gigabytes at a
 * million contacts, does not show as the page's stalls: at a million contacts Pull consents'
 * worst timer delay was 48–66 ms at equal priority, 29 ms with the page first.
 */
function serversBehindBrowser(sim) {
  try {
    for (const pid of [process.pid, sim.pid]) setPriority(pid, 10);
  } catch (error) {
    log(`bench: the servers could not all be put behind the browser (${error.message}): the stalls may include their work`);
  }
}

/** The simulator in a child process; resolves to its JSON line, its pid and a stop(). */
function startSimulatorProcess(latencyMs) {
  // With this process's Node options: a million contacts' activity needs the heap `--max-old-space-size` gives.
  const args = [...process.execArgv, join(root, "tests", "simulator", "cli.mjs"), "--port", "0", "--latency-ms", String(latencyMs), "--max-batch", String(PAGE), "--cors"];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  let stopping = false;
  child.on("exit", (code, signal) => {
    if (!stopping) log(`bench: the simulator ended during the run (${signal ?? `exit ${code}`})`);
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.on("exit", (code) => reject(new Error(`simulator exited ${code}`)));
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve({ ...JSON.parse(out.split("\n")[0]), pid: child.pid, stop: () => ((stopping = true), child.kill("SIGTERM")) });
    });
  });
}

async function simulatorControl(sim, path, body, retried = false) {
  try {
    const response = await fetch(`${sim.url}/__sim/${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
    return await response.json();
  } catch (error) {
    // A kept-alive connection the simulator closed as it was reused ("other side closed", seen
    // once a million contacts' jobs had kept the bench away from it): the call is asked again,
    // once, on a new connection. Every control call sets state whole, so asking twice is safe.
    if (retried || error.cause?.code !== "UND_ERR_SOCKET") throw error;
    return simulatorControl(sim, path, body, true);
  }
}

/** A sandbox with `contacts` demo contacts, modelling Dataverse's service protection unless `--protection 0`. */
async function sandboxWith(contacts, options, sim, columns = options.mapped) {
  // In memory: saving a 100,000-row file is the sandbox's chore, not Dataverse's behaviour.
  // The test engine: the shipped engine's jobs, plus `memoryBytes` and `salesmanagoCall`.
  // BENCH_ENGINE names another test engine's directory (an earlier build's, for a pair of runs).
  const engineDir = process.env.BENCH_ENGINE || join(root, "target", "engine-test");
  // Each engine in each language; an earlier build's engine has both languages in one file, and
  // its pulls one engine.
  const engines = {};
  for (const stem of ["engine", "engine-admin", "engine-export", "engine-pull-consents", "engine-pull-changes", "engine-pull-activity"]) {
    for (const lang of ["en", "pl"]) {
      const older = stem.startsWith("engine-pull-") ? ["engine-pull.js"] : [];
      const file = [`${stem}.${lang}.js`, `${stem}.js`, ...older].find((f) => existsSync(join(engineDir, f)));
      if (!file) throw new Error(`${engineDir} has no ${stem}.${lang}.js: build it with \`cargo xtask build --test-engine\``);
      engines[`${stem}.${lang}.js`] = readFileSync(join(engineDir, file), "utf8");
    }
  }
  const sandbox = await startSandbox({ port: 0, dataFile: null, reset: true, contacts, latencyMs: options.latencyMs, protection: Boolean(options.protection), engines });
  const [record] = sandbox.dataverse.rows("new_salesmanagointegration");
  const mapping = mapColumns(sandbox, columns, options.mapped > 0);
  sandbox.dataverse.seed("new_salesmanagointegration", [
    { ...record, new_clientid: sim.clientId, new_apisecret: sim.apiSecret, new_owner: sim.owner, new_endpoint: sim.url, new_concurrency: options.concurrency, new_fieldmapping: mapping },
  ]);
  return sandbox;
}

/**
 * `count` columns more on every contact, with values, and the field mapping of them (its JSON)
 * when `mapped`, or null for none: texts, numbers, dates, Yes/No (to tags) and choices in turn.
 */
function mapColumns(sandbox, count, mapped = true) {
  if (!count) return null;
  const label = (text) => ({ 1033: text, 1045: text });
  const options = [1, 2, 3].map((value) => ({ value, label: label(`Option ${value}`) }));
  const kinds = [
    { type: "String", mapped: "text", value: (i) => `Segment ${i % 17}` },
    { type: "Integer", mapped: "number", value: (i) => i % 1000 },
    { type: "DateOnly", mapped: "date", value: (i) => `2026-0${1 + (i % 9)}-1${i % 10}` },
    { type: "Boolean", mapped: "yesno", value: (i) => i % 2 === 0 },
    { type: "Picklist", mapped: "choice", value: (i) => 1 + (i % 3) },
  ];
  const columns = [];
  for (let n = 0; n < count; n++) {
    const kind = kinds[n % kinds.length];
    const logicalName = `new_bench${n}`;
    sandbox.dataverse.addColumn("contact", { logicalName, type: kind.type, label: label(`Bench ${n}`), ...(kind.type === "Picklist" ? { options } : {}) });
    columns.push({ logicalName, kind });
  }
  const rows = sandbox.dataverse.rows("contact").map((row, i) => {
    const more = Object.fromEntries(columns.map(({ logicalName, kind }) => [logicalName, kind.value(i)]));
    return { ...row, ...more };
  });
  sandbox.dataverse.seed("contact", rows);
  if (!mapped) return null;
  const entries = columns.map(({ logicalName, kind }, n) => {
    const target = kind.mapped === "yesno" ? { tag: `bench ${n}` } : { detail: `bench${n}` };
    const labels = kind.mapped === "choice" ? { labels: { 1: "Option 1", 2: "Option 2", 3: "Option 3" } } : {};
    return { column: logicalName, type: kind.mapped, ...target, ...labels };
  });
  return JSON.stringify({ version: 1, language: "en", entries });
}

async function open(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => window.__sandbox && (window.__sandbox.ready || window.__sandbox.fatal), null, { timeout: 60_000 });
}

/**
 * Clicks command-bar button `id` and waits for the job's summary dialog. Meanwhile measures the
 * live memory every 500 ms (a garbage collection, then the JS heap plus the engine's wasm
 * memory), and the longest gap of a 50 ms timer (a frozen tab shows as a long gap).
 * Returns {ms, text, peakBytes, peakHeap, peakWasm, stallMs}.
 */
async function runJob(page, id) {
  return page.evaluate(async ({ id, minutes }) => {
    // The exports run in the exports' engine, each pull in its own (loaded by the first click).
    const pull = /\.Pull([A-Za-z]*)\.Button$/.exec(id);
    const global = pull ? `SalesManagoPull${pull[1]}Engine` : "SalesManagoExportEngine";
    // Asked once its script is there; the samples before count no wasm.
    let engine = null;
    let asked = false;
    const grab = () => {
      if (asked || !window[global]) return;
      asked = true;
      window[global].ready().then((e) => (engine = e), () => {});
    };
    let peak = 0;
    let peakHeap = 0;
    let peakWasm = 0;
    let stall = 0;
    let last = performance.now();
    let ticks = 0;
    const sample = (force) => {
      const now = performance.now();
      stall = Math.max(stall, now - last - 50);
      last = now;
      if (!force && ++ticks % 10 !== 0) return;
      window.gc();
      grab();
      const wasm = engine ? engine.memoryBytes() : 0;
      peak = Math.max(peak, performance.memory.usedJSHeapSize + wasm);
      peakHeap = Math.max(peakHeap, performance.memory.usedJSHeapSize);
      peakWasm = Math.max(peakWasm, wasm);
    };
    const timer = setInterval(() => sample(false), 50);
    const started = performance.now();
    document.querySelector(`#commandbar button[data-id="${id}"]`).click();
    // Bounded: a job that never ends fails the bench instead of hanging it.
    while (!document.querySelector("#dialogs .dialog")) {
      if (performance.now() - started > minutes * 60_000) throw new Error(`${id} showed no summary in ${minutes} minutes (\`--job-minutes\` allows more)`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const ms = performance.now() - started;
    sample(true);
    clearInterval(timer);
    const text = document.querySelector("#dialogs .dialog .text").textContent;
    // Close the summary and decline the CSV.
    for (let i = 0; i < 4 && document.querySelector("#dialogs .dialog"); i++) {
      const buttons = document.querySelectorAll("#dialogs .dialog .buttons button");
      buttons[buttons.length - 1].click();
      await new Promise((r) => setTimeout(r, 50));
    }
    return { ms, text, peakBytes: peak, peakHeap, peakWasm, stallMs: stall };
  }, { id, minutes: jobMinutes });
}

/** Activity items on each contact's card for the Pull activity runs. */
const ACTIVITY_PER_CONTACT = 5;

/** Gives every simulated contact generated activity of the last 30 days. */
async function activityPlan(sim) {
  const until = Date.now();
  await simulatorControl(sim, "activity/plan", { perContact: ACTIVITY_PER_CONTACT, seed: 1, since: until - 30 * 24 * 3600 * 1000, until });
}

/** The rows a Pull activity summary says it created. */
function activityRows(text) {
  return Number((text.match(/(\d+) activities added/) || [])[1] || 0);
}

/** Loads the engine in the page (as a first click would) and returns it ready. */
async function warm(page) {
  await page.evaluate(() => window.SalesManago.loadEngine("job.exportAll"));
}

/** Ids per page of the reads that cut a read of every contact into parts (Read::KEYS_PAGE). */
const KEYS_PAGE = 5000;
/**
 * Round trips the limit allows every job one after another, whatever its size: before its first
 * page, the record, the consent columns, the lease's read and its write (4), and the first page
 * of ids (1); after its last page is read, that page's last step, the summary and the lease's
 * release (3). An allowance, not a bound: the job reads the record and the consent columns at
 * once, the first page of ids beside the lease's read, and its first pages beside the lease's
 * write, so it needs 3 of the 5 before its first page arrives.
 */
const CHAIN = 8;

/**
 * A job's pipeline limit: the shortest time its requests allow when each service has at most
 * K of them in flight at once (the job's concurrency, under Dataverse's 52 per user).
 *
 *   limit = CHAIN × rt + max(dv × d, sm × rt, sequential) / K, never under Dataverse's budget
 *
 * - rt: the latency on both sides; d: the mean time the Dataverse stand-in took per request
 *   during the job (latency included: its own work on a page or a $batch counts as the service's);
 * - dv, sm: the requests the job needs beside the chain (its pages, ids, writes, calls);
 * - sequential: what must go one after another in the body (Pull changes' listing);
 * - budget: the 5-minute windows Dataverse's service protection allows (requests, execution
 *   time; 0 with `--protection 0`).
 */
function pipelineLimit({ rt, d, k, dv, sm, sequential = 0, costMs }) {
  const body = Math.max((dv * d) / k, (sm * rt) / k, sequential);
  return Math.max(CHAIN * rt + body, budget(dv, costMs));
}

/** Export all's limit: its pages of ids, each page read and written back, a checkpoint every 10 pages; a SALESmanago batch a page. */
function exportLimit(n, latency, k, writes, d) {
  const pages = Math.ceil(n / PAGE);
  const dv = Math.ceil(n / KEYS_PAGE) + 2 * pages + Math.floor(pages / 10);
  const costMs = pages * DEFAULT_PROTECTION.costMs.GET + writes * DEFAULT_PROTECTION.costMs.PATCH;
  return pipelineLimit({ rt: latency / 1000, d, k, dv, sm: pages, costMs });
}

/**
 * Pull consents' limit: the export job asked for, its status first asked after 2 s (when the
 * simulator's file is ready), the file's download, one after another; then the contacts with an
 * e-mail (`n`) read as Export all reads them, and a `$batch` for each page with a change.
 */
function consentsLimit(n, latency, k, writes, d) {
  const pages = Math.ceil(n / PAGE);
  const rt = latency / 1000;
  const file = 3 * rt + FIRST_STATUS_S;
  const dv = Math.ceil(n / KEYS_PAGE) + pages + Math.min(pages, writes);
  const costMs = pages * DEFAULT_PROTECTION.costMs.GET + writes * DEFAULT_PROTECTION.costMs.PATCH;
  return file + pipelineLimit({ rt, d, k, dv, sm: 0, costMs });
}

/** Pull changes' limit: the change pages (1,000 ids) one after another; per 100 ids, two listById calls, a Dataverse read and, when some changed, a write. */
function changesLimit(changed, latency, k, writes, d) {
  const rt = latency / 1000;
  const pages = Math.ceil(changed / 1000);
  const chunks = Math.ceil(changed / LOOKUP);
  const dv = chunks + Math.min(chunks, writes);
  const costMs = chunks * DEFAULT_PROTECTION.costMs.GET + writes * DEFAULT_PROTECTION.costMs.PATCH;
  return pipelineLimit({ rt, d, k, dv, sm: pages + 2 * chunks, sequential: pages * rt, costMs });
}

/** The mean seconds the Dataverse stand-in took per request since `before` (its stats then). */
function meanAnswer(sandbox, before) {
  const now = sandbox.dataverse.stats();
  const requests = now.requests - before.requests;
  return requests ? (now.busyMs - before.busyMs) / requests / 1000 : 0;
}

/** Whether the stand-in models service protection (`--protection`). */
let protectionOn = true;

/** How long a job may take before the bench gives up on it (`--job-minutes`). */
let jobMinutes = 15;

/** The shortest time Dataverse's service protection allows `requests` costing `costMs`. */
function budget(requests, costMs) {
  if (!protectionOn) return 0;
  const { windowMs, maxRequests, maxExecutionMs } = DEFAULT_PROTECTION;
  const windows = Math.max(requests / maxRequests, costMs / maxExecutionMs);
  return windows <= 1 ? 0 : (windows - 1) * (windowMs / 1000);
}

/** The naive baseline: one upsert and one Dataverse update per contact, in sequence; seconds per contact. */
async function naivePerContact(page, sim, count) {
  return page.evaluate(
    async ({ sim, count }) => {
      // Loaded by the exports run before.
      const engine = await SalesManagoExportEngine.ready();
      const config = JSON.stringify({ endpoint: sim.url, clientId: sim.clientId, apiSecret: sim.apiSecret, owner: sim.owner });
      const { entities } = await Xrm.WebApi.retrieveMultipleRecords("contact", `?$select=contactid,emailaddress1,fullname&$filter=emailaddress1 ne null&$top=${count}`);
      const started = performance.now();
      let done = 0;
      for (const row of entities) {
        const email = row.emailaddress1.trim().toLowerCase();
        if (!/^[^@]+@[^@]+\.[a-z]+$/.test(email)) continue;
        const out = JSON.parse(await engine.salesmanagoCall(config, JSON.stringify({ method: "contact/upsert", contact: { email, name: row.fullname } }), 1033));
        await Xrm.WebApi.updateRecord("contact", row.contactid, { new_salesmanagoid: out.contactId });
        done++;
      }
      return (performance.now() - started) / 1000 / done;
    },
    { sim, count },
  );
}

/** Click "Fetch from SALESmanago" on a freshly opened contact form until its phone shows SALESmanago's. */
async function fetchClick(page, url, phone) {
  await open(page, url);
  await page.waitForFunction(() => window.__sandbox.log.some((e) => e.kind === "formNotification" && e.id === "salesmanago.differs"), null, { timeout: 30_000 });
  return page.evaluate(async (phone) => {
    const input = document.getElementById("field-mobilephone");
    const started = performance.now();
    document.querySelector('#commandbar button[data-id="new.contact.Fetch.Button"]').click();
    while (input.value !== phone) await new Promise((r) => requestAnimationFrame(r));
    const ms = performance.now() - started;
    const dialog = document.querySelector("#dialogs .dialog .buttons button");
    if (dialog) dialog.click();
    return ms;
  }, phone);
}

/**
 * `--compare-mapped N`: Export all alone, without a mapping and with N mapped columns in turn
 * (which goes first alternates), each on a fresh sandbox and a reset simulator, in one browser:
 * the pairs side by side on this machine, and the median of their ratios.
 */
async function compareMapped(options) {
  const sim = await startSimulatorProcess(options.latencyMs);
  let browser = null;
  try {
    browser = await launch(options.driver, ["--enable-precise-memory-info", "--js-flags=--expose-gc"]);
    serversBehindBrowser(sim);
    const { page } = browser;
    log(`bench: Export all of ${options.contacts} contacts, no mapping vs ${options.compareMapped} mapped columns, ${options.repeat} pairs, latency ${options.latencyMs} ms`);
    const exportWith = async (mapped) => {
      // The same contacts, with the same columns, in both: only the mapping differs.
      const sandbox = await sandboxWith(options.contacts, { ...options, mapped }, sim, options.compareMapped);
      try {
        await open(page, `${sandbox.url}/integration`);
        await warm(page);
        const job = await measuredJob(page, "new.integration.ExportAll.Button", browser.profile);
        if (!/finished/.test(job.text)) throw new Error(`Export all did not finish: ${job.text}`);
        if (options.profile) log(`${mapped} mapped:\n${job.cpuLine}`);
        return job.ms / 1000;
      } finally {
        await sandbox.close();
        await simulatorControl(sim, "reset", {});
      }
    };
    const ratios = [];
    for (let round = 0; round < options.repeat; round++) {
      const order = round % 2 === 0 ? [0, options.compareMapped] : [options.compareMapped, 0];
      const seconds = {};
      for (const mapped of order) seconds[mapped] = await exportWith(mapped);
      const ratio = seconds[options.compareMapped] / seconds[0];
      ratios.push(ratio);
      log(`pair ${round + 1}: no mapping ${fmt(seconds[0])} s, ${options.compareMapped} mapped ${fmt(seconds[options.compareMapped])} s, ratio ${fmt(ratio, 3)}`);
    }
    ratios.sort((a, b) => a - b);
    const median = ratios.length % 2 ? ratios[(ratios.length - 1) / 2] : (ratios[ratios.length / 2 - 1] + ratios[ratios.length / 2]) / 2;
    log(`bench: export all with ${options.compareMapped} mapped columns is ${fmt(median, 3)}× the time without (median of ${ratios.length} pairs; spread ${fmt(ratios[0], 3)}-${fmt(ratios[ratios.length - 1], 3)})`);
  } finally {
    await browser?.close();
    sim.stop();
  }
}

async function main() {
  const options = parse(process.argv.slice(2));
  if (options.compareMapped) return compareMapped(options);
  protectionOn = Boolean(options.protection);
  jobMinutes = options.jobMinutes;
  // The exports' engine, as shipped in English (the export's figure is the bench's headline).
  const wasmFile = join(root, "target", "engine-export.en", "engine_opt.wasm");
  const wasm = readFileSync(wasmFile);
  const dir = mkdtempSync(join(tmpdir(), "salesmanago-bench-"));
  const sim = await startSimulatorProcess(options.latencyMs);
  let browser = null;
  try {
    // Live memory needs precise heap figures and a collection on demand.
    browser = await launch(options.driver, ["--enable-precise-memory-info", "--js-flags=--expose-gc"]);
    serversBehindBrowser(sim);
    const { page } = browser;
    log(`bench: ${options.contacts} contacts, latency ${options.latencyMs} ms on Dataverse and SALESmanago, concurrency ${options.concurrency}, ${PAGE} per batch, ${options.driver} driver, ${options.mapped} mapped columns${options.protection ? "" : ", no service protection"}`);

    // Memory at the smaller size first, in its own sandbox.
    let smallPeak = null;
    let smallActivityPeak = null;
    // `--small 0` skips it: an empty sandbox's peak is no size to compare with.
    if (options.small > 0 && options.small < options.contacts) {
      const sandbox = await sandboxWith(options.small, options, sim);
      await open(page, `${sandbox.url}/integration`);
      await warm(page);
      const small = await runJob(page, "new.integration.ExportAll.Button");
      smallPeak = small.peakBytes;
      log(`export ${options.small}: ${fmt(small.ms / 1000)} s, peak live memory ${fmt(small.peakBytes / 1048576, 1)} MiB (JS heap ${fmt(small.peakHeap / 1048576, 1)}, wasm ${fmt(small.peakWasm / 1048576, 1)})`);
      if (options.activity) {
        await activityPlan(sim);
        sandbox.dataverse.resetProtection();
        await open(page, `${sandbox.url}/integration`);
        await warm(page);
        const smallActivity = await runJob(page, "new.integration.PullActivity.Button");
        smallActivityPeak = smallActivity.peakBytes;
        log(`pull activity ${options.small}: ${fmt(smallActivity.ms / 1000)} s, ${activityRows(smallActivity.text)} rows, peak live memory ${fmt(smallActivity.peakBytes / 1048576, 1)} MiB`);
        await simulatorControl(sim, "activity/plan", null);
      }
      await sandbox.close();
      await simulatorControl(sim, "reset", {});
    }

    const sandbox = await sandboxWith(options.contacts, options, sim);
    const n = options.contacts;
    const sendable = sandbox.dataverse.rows("contact").filter((r) => typeof r.emailaddress1 === "string" && /^[^@\s]+@[^@\s]+\.[a-z]+$/i.test(r.emailaddress1.trim())).length;

    await open(page, `${sandbox.url}/integration`);
    await warm(page);
    let before = sandbox.dataverse.stats();
    const exp = await profiledJob(page, "new.integration.ExportAll.Button", browser.profile, options.profile);
    const expLimit = exportLimit(n, options.latencyMs, options.concurrency, n, meanAnswer(sandbox, before));
    const expRatio = expLimit / (exp.ms / 1000);
    log(`export all: ${fmt(exp.ms / 1000)} s, ${fmt(n / (exp.ms / 1000), 0)} contacts/s; pipeline limit ${fmt(expLimit)} s; ${fmt(expRatio)} of limit; peak live memory ${fmt(exp.peakBytes / 1048576, 1)} MiB (JS heap ${fmt(exp.peakHeap / 1048576, 1)}, wasm ${fmt(exp.peakWasm / 1048576, 1)}); longest stall ${fmt(exp.stallMs, 0)} ms`);
    log(`  summary: ${exp.text}`);
    log(exp.cpuLine);

    // A change in SALESmanago for 1% of the contacts, for pull consents to write.
    const held = await simulatorControl(sim, "contacts?every=100");
    const changed = held.map((c) => ({ ...c, optedOut: !c.optedOut, modifiedOn: Date.now() + 60_000 }));
    await simulatorControl(sim, "contacts", changed);
    // Each job is measured as if it ran alone: the export spent most of Dataverse's 5-minute
    // execution-time budget, which would make the next job wait out the window.
    sandbox.dataverse.resetProtection();
    await open(page, `${sandbox.url}/integration`);
    await warm(page);
    before = sandbox.dataverse.stats();
    const con = await profiledJob(page, "new.integration.PullConsents.Button", browser.profile, options.profile);
    const withEmail = sandbox.dataverse.rows("contact").filter((r) => r.emailaddress1 != null).length;
    const conLimit = consentsLimit(withEmail, options.latencyMs, options.concurrency, changed.length, meanAnswer(sandbox, before));
    log(`pull consents: ${fmt(con.ms / 1000)} s, ${fmt(n / (con.ms / 1000), 0)} contacts/s; pipeline limit ${fmt(conLimit)} s; ${fmt(conLimit / (con.ms / 1000))} of limit; peak live memory ${fmt(con.peakBytes / 1048576, 1)} MiB; longest stall ${fmt(con.stallMs, 0)} ms`);
    log(`  summary: ${con.text}`);
    log(con.cpuLine);

    sandbox.dataverse.resetProtection();
    // Pull changes: the first pull looks back 30 days, so every contact the export wrote counts as changed.
    await open(page, `${sandbox.url}/integration`);
    await warm(page);
    before = sandbox.dataverse.stats();
    const chg = await profiledJob(page, "new.integration.PullChanges.Button", browser.profile, options.profile);
    const changedTotal = Number((chg.text.match(/finished: (\d+) contacts changed/) || [])[1] || 0);
    const chgUpdated = Number((chg.text.match(/(\d+) updated in Dynamics/) || [])[1] || 0);
    const chgLimit = changesLimit(changedTotal, options.latencyMs, options.concurrency, chgUpdated, meanAnswer(sandbox, before));
    log(`pull changes: ${fmt(chg.ms / 1000)} s, ${fmt(changedTotal / (chg.ms / 1000), 0)} contacts/s; pipeline limit ${fmt(chgLimit)} s; ${fmt(chgLimit / (chg.ms / 1000))} of limit; peak live memory ${fmt(chg.peakBytes / 1048576, 1)} MiB; longest stall ${fmt(chg.stallMs, 0)} ms`);
    log(`  summary: ${chg.text}`);
    log(chg.cpuLine);

    let act = null;
    if (options.activity) {
      // Pull activity: every contact's card carries SALESmanago activity of the last 30 days
      // (the simulator's generated mix, ACTIVITY_PER_CONTACT items each), read 50 cards a call.
      await activityPlan(sim);
      sandbox.dataverse.resetProtection();
      await open(page, `${sandbox.url}/integration`);
      await warm(page);
      act = await profiledJob(page, "new.integration.PullActivity.Button", browser.profile, options.profile);
      const actRows = activityRows(act.text);
      log(`pull activity: ${fmt(act.ms / 1000)} s, ${actRows} rows created (${fmt(actRows / (act.ms / 1000), 0)} rows/s) for ${n} contacts; peak live memory ${fmt(act.peakBytes / 1048576, 1)} MiB; longest stall ${fmt(act.stallMs, 0)} ms`);
      log(`  summary: ${act.text}`);
      log(act.cpuLine);
      if (smallActivityPeak) log(`memory: pull activity peak live ${fmt(act.peakBytes / 1048576, 1)} MiB at ${n} vs ${fmt(smallActivityPeak / 1048576, 1)} MiB at ${options.small} (${fmt((act.peakBytes / smallActivityPeak - 1) * 100, 1)}%)`);
      await simulatorControl(sim, "activity/plan", null);
    }

    // Naive baseline on a small sample, scaled to N (`--naive 0` skips it).
    let speedUp = null;
    if (options.naive > 0) {
      await open(page, `${sandbox.url}/integration`);
      await warm(page);
      const perContact = await naivePerContact(page, { url: sim.url, clientId: sim.clientId, apiSecret: sim.apiSecret, owner: sim.owner }, options.naive);
      const naiveTotal = perContact * sendable;
      speedUp = naiveTotal / (exp.ms / 1000);
      log(`naive baseline: ${fmt(perContact * 1000, 1)} ms per contact over ${options.naive} contacts → ${fmt(naiveTotal, 0)} s for ${sendable} contacts; export is ${fmt(speedUp, 0)}× faster`);
    }

    // Fetch: a contact whose phone differs in SALESmanago.
    const sampled = new Map(held.map((c) => [c.id, c]));
    const target = sandbox.dataverse.rows("contact").find((r) => r.mobilephone && sampled.has(r.new_salesmanagoid));
    await simulatorControl(sim, "contacts", [{ ...sampled.get(target.new_salesmanagoid), phone: "+48 600 111 222", modifiedOn: Date.now() }]);
    const clicks = [];
    for (let i = 0; i < 5; i++) clicks.push(await fetchClick(page, `${sandbox.url}/contacts/${target.contactid}`, "+48 600 111 222"));
    clicks.sort((a, b) => a - b);
    const fetchTarget = 2 * options.latencyMs + 50;
    log(`fetch contact: click to filled ${fmt(clicks[2], 0)} ms (median of 5; min ${fmt(clicks[0], 0)}, max ${fmt(clicks[4], 0)}); target ≤ ${fetchTarget} ms`);

    const gz = gzipSync(wasm, { level: 9 }).length;
    if (smallPeak) log(`memory: peak live ${fmt(exp.peakBytes / 1048576, 1)} MiB at ${n} vs ${fmt(smallPeak / 1048576, 1)} MiB at ${options.small} (${fmt((exp.peakBytes / smallPeak - 1) * 100, 1)}%; target ≤ 20%)`);
    log(`wasm: ${wasm.length} B raw, ${gz} B gzip (the exports' engine in English; its budget: Engine::budget_bytes in src/core/command.rs)`);
    const stalls = Object.entries({ "export all": exp, "pull consents": con, "pull changes": chg, "pull activity": act }).filter(([, job]) => job);
    const limit = options.stallLimitMs;
    const over = limit ? stalls.filter(([, job]) => job.stallMs > limit) : [];
    log(`stalls: ${stalls.map(([name, job]) => `${name} ${fmt(job.stallMs, 0)} ms`).join(", ")} (${limit ? `limit ${limit} ms` : "no limit"})`);
    const naive = speedUp === null ? "not measured" : `${fmt(speedUp, 0)} x naive`;
    log(`bench: export ${fmt(expRatio)} of limit, ${naive}, wasm ${statSync(wasmFile).size} B`);
    if (over.length) {
      process.stderr.write(`bench: failed: ${over.map(([name, job]) => `${name} held the main thread ${fmt(job.stallMs, 0)} ms`).join("; ")}, over the ${limit} ms a task may take; \`--profile 1\` shows what it was doing\n`);
      process.exitCode = 1;
    }
    await sandbox.close();
  } finally {
    await browser?.close();
    sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes("--relay")) {
  // `npm run bench -- --relay [options]`: the relay's load bench (bench/relay.mjs) instead.
  process.argv = process.argv.filter((arg) => arg !== "--relay");
  await import("./relay.mjs");
} else {
  main().catch((error) => {
    // `fetch failed` says why only in its cause (a refused or reset connection).
    process.stderr.write(`bench: ${error.stack || error.message}${error.cause ? `\n  cause: ${error.cause.stack || error.cause}` : ""}\n`);
    process.exit(1);
  });
}
