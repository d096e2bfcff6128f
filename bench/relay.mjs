#!/usr/bin/env node
// `npm run bench:relay` (or `npm run bench -- --relay`): the same SALESmanago calls sent through
// salesmanago-relay and directly to the SALESmanago simulator, side by side in one run, at a
// fixed number of requests in flight.
//
//   npm run bench:relay -- [--concurrency 32,128] [--seconds S | --calls N] [--rounds R]
//                          [--warmup-seconds S] [--latency-ms L] [--batch N]
//                          [--relay-rate N] [--relay-max-concurrent N] [--mix method,...]
//                          [--retries N] [--quiet-wait S]
//
// The relay binary: SALESMANAGO_RELAY_BIN when set (say, a build of an earlier commit), else the
// workspace's release build, which this script builds first (`cargo build --release -p
// salesmanago-relay`, output to stderr).
//
// Three processes: this one (the load generator), the simulator (tests/simulator/cli.mjs, its
// own Node process) and the relay. The calls cycle through what the engine sends: contact/upsert
// of one contact, contact/basic of one e-mail, contact/hasContact, and contact/batchupsert of
// `--batch` contacts (30), over a pool of 2,000 e-mails, so the simulator's store stays the same
// size. `--mix` keeps only some of them (`--mix contact/hasContact`: the relay's cost on a small
// call). Both ways carry the same bodies in the same order; direct calls add the auth fields the
// engine signs (`sha = sha1(apiKey + clientId + apiSecret)`, a random apiKey, requestTime, clientId,
// owner), calls to the relay carry none (the relay signs) and `Authorization: Bearer <relay key>`.
// Both carry the same `Origin`, as a browser's calls do.
//
// The load: `--concurrency` workers per level (32 and 128), each sending its next call when the
// last one is answered, over keep-alive connections (an http.Agent with maxSockets = workers).
// Per level: a warm-up of each way (`--warmup-seconds`, 1; errors there count too, as they are the
// relay's), then `--rounds` (4) of one leg each way, each leg `--seconds` (3) or `--calls` long;
// the order alternates by round (direct, relay; relay, direct; ...) so drift in the machine's
// speed falls on both. Each way's legs are then taken together: calls over their summed time,
// percentiles over all their calls. On a shared machine other processes (a build, a test run) steal the cores the
// three need: each leg starts after a second in which they used under 0.25 of a core (waiting
// up to `--quiet-wait` seconds, 120), and a leg during which they used more is set aside and run
// again, up to `--retries` times (3); the set-aside legs are printed, and their errors count.
// `--quiet-wait 0 --retries 0` turns both off.
//
// Per leg: calls a second, p50 and p99 of the time to a whole answer, errors by kind (a status
// outside 2xx, an answer without `"success":true`, a transport error, no answer in 30 s); the CPU
// each process used per call (/proc/<pid>/stat utime + stime, in clock ticks, for the relay and
// the simulator; process.cpuUsage() for this process) and its share of one core, which tells
// whether the load generator or the simulator was the bottleneck; the relay's RSS after the leg.
// At the end: the relay's CPU per call, also as a share of the simulator's CPU for the same calls
// (which holds when the machine's speed drifts between two runs to compare), the relay's peak
// memory (VmHWM), the ratios against the targets (through the relay ≥ 0.9 of direct calls a
// second, p99 ≤ 1.2× direct, 0 errors; missing one is reported, not a failure), and one line:
//   bench relay: c32 0.93 of direct (p99 1.10x), c128 0.91 (p99 1.15x), cpu 62 us/call, peak 18 MB, errors 0
// (`cpu`: the relay's CPU per call over all relay legs, which depends on the mix: a call of a
// few dozen bytes costs it far less than a batch of 30 contacts (14 KB); `peak`: VmHWM in 10^6
// bytes). With all three processes on one machine the relay's CPU is taken from the cores the
// simulator and the load generator need, so the throughput ratio measures that CPU as much as
// the relay's latency; the per-process shares printed say which process was the bottleneck.
//
// The relay's settings: one key (from `salesmanago-relay new-key`), RELAY_ALLOWED_ORIGINS the
// bench's origin, and limits that do not refuse the bench's load, so that what is measured is the
// relay forwarding, not refusing (the checks themselves still run on every call):
// - RELAY_MAX_CONCURRENT (`--relay-max-concurrent`): twice the highest concurrency (256 at the
//   defaults). The bench never has more than that many calls in flight; the headroom covers a
//   permit still held while an answer is written. The default (64) would answer 503 at 128.
// - RELAY_RATE_PER_KEY (`--relay-rate`): 50,000 a second (a burst of 100,000), over ten times
//   what a 2-core machine reaches through the relay (about 3,000 calls a second with the default
//   mix), so the token bucket never runs dry. The default (20 a second) would answer 429 to
//   nearly every call.
// The relay's log (one JSON line a call) goes to a file in a temporary directory, not through a
// pipe this process would have to read; its line count is checked against the calls sent.
//
// Exit status: 0 when the bench ran (whatever the ratios), 1 when it could not, 2 on a bad option.
import http from "node:http";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ORIGIN = "https://bench.crm4.dynamics.com";
const POOL = 2000; // e-mails the calls cycle through
const VARIANTS = 256; // distinct bodies per kind of call
const TIMEOUT_MS = 30_000;
// Of a core: other processes using more than this disturb a leg. Kernel threads doing the
// bench's own networking (ksoftirqd, kworkers) count as other processes, about 0.1 of a core at
// 15,000 calls a second here; a build or a browser test takes one core or more.
const OTHERS = 0.25;
const METHODS = ["contact/upsert", "contact/basic", "contact/hasContact", "contact/batchupsert"];
let MIX = METHODS;

const USAGE =
  "usage: npm run bench:relay -- [--concurrency 32,128] [--seconds S | --calls N] [--rounds R] [--warmup-seconds S] " +
  "[--latency-ms L] [--batch N] [--relay-rate N] [--relay-max-concurrent N] [--mix method,...] [--retries N] [--quiet-wait S]";

function usage(problem) {
  process.stderr.write(`${problem}\n${USAGE}\n`);
  process.exit(2);
}

function parse(argv) {
  const options = { concurrency: [32, 128], seconds: 3, calls: 0, rounds: 4, warmupSeconds: 1, latencyMs: 0, batch: 30, relayRate: 50_000, relayMaxConcurrent: 0, mix: METHODS, retries: 3, quietWait: 120 };
  const names = {
    "--concurrency": "concurrency",
    "--seconds": "seconds",
    "--calls": "calls",
    "--rounds": "rounds",
    "--warmup-seconds": "warmupSeconds",
    "--latency-ms": "latencyMs",
    "--batch": "batch",
    "--relay-rate": "relayRate",
    "--relay-max-concurrent": "relayMaxConcurrent",
    "--mix": "mix",
    "--retries": "retries",
    "--quiet-wait": "quietWait",
  };
  const whole = (text, min) => (/^\d+$/.test(text ?? "") && Number(text) >= min ? Number(text) : undefined);
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const key = names[flag];
    if (!key) usage(`unknown option ${flag}`);
    const text = inline !== undefined ? inline : argv[++i];
    let value;
    if (key === "mix") {
      value = (text ?? "").split(",").map((t) => t.trim());
      if (!value.every((m) => METHODS.includes(m))) usage(`${flag} takes some of ${METHODS.join(",")}, not ${text ?? "nothing"}`);
    } else if (key === "concurrency") {
      const list = (text ?? "").split(",").map((t) => whole(t.trim(), 1));
      value = list.length > 0 && list.every((n) => n !== undefined) ? list : undefined;
      if (value === undefined) usage(`${flag} takes whole numbers ≥ 1, comma-separated, not ${text ?? "nothing"}`);
    } else if (key === "seconds" || key === "warmupSeconds") {
      value = /^\d+(\.\d+)?$/.test(text ?? "") ? Number(text) : undefined;
      if (value === undefined || (key === "seconds" && value <= 0)) usage(`${flag} takes a number of seconds${key === "seconds" ? " above 0" : ""}, not ${text ?? "nothing"}`);
    } else {
      const min = ["latencyMs", "calls", "relayMaxConcurrent", "retries", "quietWait"].includes(key) ? 0 : 1;
      value = whole(text, min);
      if (value === undefined) usage(`${flag} takes a whole number ≥ ${min}, not ${text ?? "nothing"}`);
    }
    options[key] = value;
  }
  if (options.relayMaxConcurrent === 0) options.relayMaxConcurrent = 2 * Math.max(...options.concurrency);
  return options;
}

const log = (line) => process.stdout.write(line + "\n");
const fmt = (n, digits = 2) => (Number.isFinite(n) ? Number(n).toFixed(digits) : "-");
// Ratios judged against a target are shown rounded toward missing it, so that a figure shown
// never contradicts its verdict (0.8996 of direct shows as 0.89, missing 0.9).
const fmtDown = (n) => fmt(Math.floor(n * 100 + 1e-9) / 100);
const fmtUp = (n) => fmt(Math.ceil(n * 100 - 1e-9) / 100);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The processes started here: killed if this one exits before stopping them. */
const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

// ---------------------------------------------------------------------------------------------
// The processes

/** The relay binary: SALESMANAGO_RELAY_BIN, or the workspace's release build (built here). */
function relayBinary() {
  if (process.env.SALESMANAGO_RELAY_BIN) return process.env.SALESMANAGO_RELAY_BIN;
  const built = spawnSync("cargo", ["build", "--release", "-p", "salesmanago-relay"], { cwd: root, stdio: ["ignore", 2, 2] });
  if (built.status !== 0) throw new Error("cargo build --release -p salesmanago-relay failed");
  const target = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, "target");
  return join(target, "release", process.platform === "win32" ? "salesmanago-relay.exe" : "salesmanago-relay");
}

/** The simulator in its own process; resolves to its JSON line plus `pid` and `stop()`. */
function startSimulatorProcess(latencyMs, batch) {
  const cli = join(root, "tests", "simulator", "cli.mjs");
  const args = [cli, "--port", "0", "--host", "127.0.0.1", "--latency-ms", String(latencyMs), "--max-batch", String(Math.max(batch, 400))];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  children.add(child);
  const exited = new Promise((r) => child.on("exit", (code) => (children.delete(child), r(code))));
  return new Promise((resolvePromise, reject) => {
    let out = "";
    child.on("exit", (code) => reject(new Error(`the simulator exited ${code}`)));
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) {
        resolvePromise({
          ...JSON.parse(out.split("\n")[0]),
          pid: child.pid,
          async stop() {
            child.kill("SIGTERM");
            await exited;
          },
        });
      }
    });
  });
}

/** `salesmanago-relay new-key <id>`: `{key, stored}`. */
function newKey(binary, id) {
  const made = spawnSync(binary, ["new-key", id], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`salesmanago-relay new-key: ${made.stderr || made.error?.message}`);
  return { key: made.stdout.match(/record: (\S+)/)[1], stored: made.stdout.match(/RELAY_KEYS: (\S+)/)[1] };
}

/**
 * `salesmanago-relay serve` with `env`, its log written to `logFile`; resolves once its
 * "listening" line is there, with `{url, port, pid, stop()}`.
 */
async function startRelayProcess(binary, env, logFile) {
  const out = openSync(logFile, "w");
  const child = spawn(binary, ["serve"], { env: { PATH: process.env.PATH, RELAY_LISTEN: "127.0.0.1:0", ...env }, stdio: ["ignore", out, "pipe"] });
  closeSync(out);
  children.add(child);
  let errors = "";
  child.stderr.on("data", (d) => (errors += d));
  let exit = null;
  const exited = new Promise((r) => child.on("exit", (code) => (children.delete(child), r((exit = code ?? "a signal")))));
  let failed = null;
  child.on("error", (error) => (failed = error));
  for (let waited = 0; waited < 30_000; waited += 20) {
    if (failed) throw new Error(`the relay ${binary} could not start: ${failed.message}`);
    if (exit !== null) throw new Error(`the relay exited ${exit}: ${errors.trim()}`);
    const first = readFileSync(logFile, "utf8").split("\n")[0];
    if (first.endsWith("}")) {
      const listening = JSON.parse(first).listening;
      if (!listening) throw new Error(`the relay's first line is not "listening": ${first}`);
      return {
        url: `http://${listening}`,
        port: Number(listening.split(":").pop()),
        pid: child.pid,
        running: () => exit === null,
        stderr: () => errors,
        async stop() {
          if (exit === null) child.kill("SIGTERM");
          await exited;
        },
      };
    }
    await sleep(20);
  }
  child.kill("SIGKILL");
  throw new Error("the relay did not listen within 30 s");
}

let clockTicks = 100;

/** CPU µs used so far by process `pid` (utime + stime of /proc/<pid>/stat). */
function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks;
}

/**
 * CPU µs the whole machine has been busy (all cores; the first line of /proc/stat): user, nice,
 * system, and steal (a virtual machine's host running others). Not interrupts: those are mostly
 * the bench's own loopback traffic.
 */
function machineMicros() {
  const [user, nice, system, , , , , steal] = readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1).map(Number);
  return ((user + nice + system + steal) * 1e6) / clockTicks;
}

/**
 * Waits for a second in which other processes used less than `OTHERS` of a core, at most
 * `maxSeconds`: the seconds waited, or null when they never did.
 */
async function quiet(ctx, maxSeconds) {
  const started = performance.now();
  const ours = () => {
    const load = process.cpuUsage();
    return cpuMicros(ctx.relay.pid) + cpuMicros(ctx.sim.pid) + load.user + load.system;
  };
  for (;;) {
    const machine = machineMicros();
    const before = ours();
    const t = performance.now();
    await sleep(1000);
    const others = (machineMicros() - machine - (ours() - before)) / 1e3 / (performance.now() - t);
    const waited = (performance.now() - started) / 1000;
    if (others < OTHERS) return waited - 1;
    if (waited >= maxSeconds) return null;
  }
}

/** `VmRSS` and `VmHWM` of process `pid`, in bytes. */
function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

// ---------------------------------------------------------------------------------------------
// The calls

/** A contact as the engine's mapping sends it (`src/core/mapping/outbound.rs`). */
function upsertDetails(i) {
  const n = String(i).padStart(4, "0");
  return {
    contact: {
      email: `bench.contact.${n}@example.com`,
      name: `Anna Kowalska ${n}`,
      phone: `+48 600 100 ${n.slice(1)}`,
      fax: "22 555 01 02",
      externalId: `6e1b3a1c-0000-4000-8000-00000000${n}`,
      address: { streetAddress: `ul. Długa ${i % 90}, lok. 3`, zipCode: "43-300", city: "Bielsko-Biała", country: "PL" },
    },
    birthday: "19840804",
    forceOptOut: i % 7 === 0,
    tags: ["DYNAMICS365"],
    consentDetails: [{ consentName: "MARKETING", consentAccept: true, optOut: false, agreementDate: 1_760_000_000_000 + i }],
  };
}

/**
 * The bodies both ways: for each kind of call, `VARIANTS` bodies as the relay gets them (no
 * auth fields), and the same JSON without its closing brace, for the direct call's auth fields.
 */
function makeBodies(batch) {
  const email = (i) => upsertDetails(i % POOL).contact.email;
  const payload = {
    "contact/upsert": (v) => ({ ...upsertDetails((v * 7) % POOL), async: false }),
    "contact/basic": (v) => ({ email: [email(v * 11 + 3)] }),
    "contact/hasContact": (v) => ({ email: email(v * 13 + 5) }),
    "contact/batchupsert": (v) => ({ upsertDetails: Array.from({ length: batch }, (_, j) => upsertDetails((v * batch + j) % POOL)), useApiDoubleOptIn: false }),
  };
  const bodies = {};
  for (const method of METHODS) {
    bodies[method] = Array.from({ length: VARIANTS }, (_, v) => {
      const relayed = JSON.stringify(payload[method](v));
      return { relayed, relayedLength: Buffer.byteLength(relayed), open: relayed.slice(0, -1) };
    });
  }
  return bodies;
}

/** The n-th call of a leg: its method and body, the same for both ways. */
function nth(bodies, n) {
  const method = MIX[n % MIX.length];
  return { method, body: bodies[method][Math.floor(n / MIX.length) % VARIANTS] };
}

/** The auth fields the engine adds to a direct call, closing its body. */
function signed(open, sim) {
  const apiKey = randomBytes(16).toString("hex");
  const sha = createHash("sha1").update(apiKey + sim.clientId + sim.apiSecret).digest("hex");
  return `${open},"clientId":${JSON.stringify(sim.clientId)},"apiKey":"${apiKey}","requestTime":${Date.now()},"sha":"${sha}","owner":${JSON.stringify(sim.owner)}}`;
}

const SUCCESS = Buffer.from('{"success":true');

/** Sends one call; `done(ms, errorKind | null)` once, when it is answered in full or failed. */
function send(way, method, body, length, done) {
  const started = performance.now();
  let finished = false;
  const finish = (kind) => {
    if (finished) return;
    finished = true;
    done(performance.now() - started, kind);
  };
  const req = http.request({ agent: way.agent, host: "127.0.0.1", port: way.port, method: "POST", path: `/api/${method}`, headers: { ...way.headers, "content-length": length } }, (res) => {
    let first = null;
    res.on("data", (chunk) => {
      if (first === null) first = chunk;
    });
    res.on("end", () => {
      if (res.statusCode < 200 || res.statusCode > 299) finish(`HTTP ${res.statusCode} from ${way.name === "relay" ? "the relay" : "the simulator"}`);
      else if (first === null || first.compare(SUCCESS, 0, SUCCESS.length, 0, Math.min(first.length, SUCCESS.length)) !== 0) finish('an answer without "success":true');
      else finish(null);
    });
    res.on("error", (e) => finish(`transport: ${e.code || e.message}`));
  });
  req.setTimeout(TIMEOUT_MS, () => req.destroy(Object.assign(new Error("no answer in 30 s"), { code: "timeout" })));
  req.on("error", (e) => finish(`transport: ${e.code || e.message}`));
  req.end(body);
}

/**
 * One leg: `concurrency` workers sending calls one after another, for `seconds` or until `calls`
 * were sent. Measures the calls, their latencies, the errors, and the CPU of each process.
 */
async function leg(way, { concurrency, seconds, calls }, ctx) {
  const latencies = [];
  const errors = new Map();
  let sent = 0;
  const before = { relay: cpuMicros(ctx.relay.pid), simulator: cpuMicros(ctx.sim.pid), load: process.cpuUsage(), machine: machineMicros() };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const more = () => (calls > 0 ? sent < calls : performance.now() < deadline);
  await new Promise((resolveLeg) => {
    let active = concurrency;
    const next = () => {
      if (!more()) {
        if (--active === 0) resolveLeg();
        return;
      }
      const { method, body } = nth(ctx.bodies, sent++);
      const text = way.name === "relay" ? body.relayed : signed(body.open, ctx.sim);
      const length = way.name === "relay" ? body.relayedLength : Buffer.byteLength(text);
      send(way, method, text, length, (ms, kind) => {
        latencies.push(ms);
        if (kind) errors.set(kind, (errors.get(kind) ?? 0) + 1);
        next();
      });
    };
    for (let i = 0; i < concurrency; i++) next();
  });
  const wall = (performance.now() - started) / 1000;
  const load = process.cpuUsage(before.load);
  const cpu = {
    relay: cpuMicros(ctx.relay.pid) - before.relay,
    simulator: cpuMicros(ctx.sim.pid) - before.simulator,
    load: load.user + load.system,
  };
  // What other processes on the machine used meanwhile (a build, say): it slows all three.
  cpu.other = Math.max(0, machineMicros() - before.machine - cpu.relay - cpu.simulator - cpu.load);
  latencies.sort((a, b) => a - b);
  return { way: way.name, concurrency, calls: latencies.length, wall, latencies, errors, cpu, rss: memory(ctx.relay.pid).rss };
}

const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);

/** Legs of one way at one concurrency, taken together. */
function combine(legs) {
  const latencies = legs.flatMap((l) => l.latencies).sort((a, b) => a - b);
  const errors = new Map();
  for (const l of legs) for (const [k, n] of l.errors) errors.set(k, (errors.get(k) ?? 0) + n);
  const sum = (f) => legs.reduce((s, l) => s + f(l), 0);
  return {
    calls: latencies.length,
    latencies,
    wall: sum((l) => l.wall),
    rate: latencies.length / sum((l) => l.wall),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
    cpu: { relay: sum((l) => l.cpu.relay), simulator: sum((l) => l.cpu.simulator), load: sum((l) => l.cpu.load), other: sum((l) => l.cpu.other) },
  };
}

const errorCount = (errors) => [...errors.values()].reduce((s, n) => s + n, 0);
const errorText = (errors) => (errors.size === 0 ? "0" : `${errorCount(errors)} (${[...errors].map(([k, n]) => `${n} ${k}`).join("; ")})`);
const pad = (text, width) => String(text).padStart(width);

/** A table row: the leg's calls, rate, latencies, errors, CPU per call and share of a core. */
function row(label, r) {
  const perCall = (us) => (r.calls ? us / r.calls : NaN);
  const share = (us) => us / 1e6 / r.wall;
  return [
    label.padEnd(22),
    pad(r.calls, 7),
    pad(fmt(r.calls / r.wall, 0), 8),
    pad(fmt(percentile(r.latencies, 50), 2), 7),
    pad(fmt(percentile(r.latencies, 99), 2), 7),
    pad(fmt(perCall(r.cpu.relay), 1), 7),
    pad(fmt(share(r.cpu.relay), 2), 5),
    pad(fmt(perCall(r.cpu.simulator), 1), 7),
    pad(fmt(share(r.cpu.simulator), 2), 5),
    pad(fmt(perCall(r.cpu.load), 1), 7),
    pad(fmt(share(r.cpu.load), 2), 5),
    pad(fmt(share(r.cpu.other), 2), 5),
    pad(r.rss !== undefined ? fmt(r.rss / 1e6, 1) : "", 6),
    `  ${errorText(r.errors)}`,
  ].join(" ");
}

const HEADER =
  [
    "leg".padEnd(22),
    pad("calls", 7),
    pad("calls/s", 8),
    pad("p50 ms", 7),
    pad("p99 ms", 7),
    pad("relay", 7),
    pad("core", 5),
    pad("sim", 7),
    pad("core", 5),
    pad("load", 7),
    pad("core", 5),
    pad("other", 5),
    pad("RSS MB", 6),
    "  errors",
  ].join(" ") + "\n" + " ".repeat(55) + "(CPU µs per call, and share of one core: relay, simulator, load generator; cores other processes used)";

async function main() {
  const options = parse(process.argv.slice(2));
  MIX = options.mix;
  if (process.platform !== "linux") throw new Error("the bench reads CPU and memory from /proc: Linux only");
  clockTicks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  const binary = relayBinary();
  if (!existsSync(binary)) throw new Error(`no relay binary at ${binary}`);
  const dir = mkdtempSync(join(tmpdir(), "salesmanago-bench-relay-"));
  const logFile = join(dir, "relay.log");
  let sim = null;
  let relay = null;
  try {
    sim = await startSimulatorProcess(options.latencyMs, options.batch);
    const key = newKey(binary, "bench");
    relay = await startRelayProcess(
      binary,
      {
        SALESMANAGO_CLIENT_ID: sim.clientId,
        SALESMANAGO_API_SECRET: sim.apiSecret,
        SALESMANAGO_OWNER: sim.owner,
        SALESMANAGO_ENDPOINT: sim.url,
        RELAY_ALLOWED_ORIGINS: ORIGIN,
        RELAY_KEYS: key.stored,
        RELAY_RATE_PER_KEY: String(options.relayRate),
        RELAY_MAX_CONCURRENT: String(options.relayMaxConcurrent),
      },
      logFile,
    );
    const ctx = { sim, relay, bodies: makeBodies(options.batch) };
    const cores = availableParallelism();
    const size = options.calls > 0 ? `${options.calls} calls a leg` : `${options.seconds} s a leg`;
    log(
      `bench relay: ${binary}; concurrency ${options.concurrency.join(", ")}; ${options.rounds} round(s) of ${size} each way after ${options.warmupSeconds} s of warm-up; ` +
        `simulator latency ${options.latencyMs} ms; calls ${MIX.map((m) => (m === "contact/batchupsert" ? `${m} of ${options.batch}` : m)).join(", ")} in turn; ${cores} cores; ` +
        `relay RELAY_MAX_CONCURRENT=${options.relayMaxConcurrent} RELAY_RATE_PER_KEY=${options.relayRate}, 1 key`,
    );
    const bodySizes = MIX.map((m) => `${m} ${ctx.bodies[m][0].relayedLength} B`).join(", ");
    log(`bodies through the relay (direct: plus about 190 B of auth fields): ${bodySizes}`);

    const results = [];
    const warmErrors = new Map();
    const setAside = new Map(); // errors of legs run again
    let sentTotal = 0;
    for (const concurrency of options.concurrency) {
      // An idle connection is closed here after 4 s, before a server closes it (the simulator after
      // 5 s, the relay after RELAY_HEADER_TIMEOUT_MS), so that a call never goes out on a
      // connection the server is closing (an error that would be the bench's, not the relay's).
      const agentOptions = { keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, timeout: 4000 };
      const ways = {
        direct: { name: "direct", port: Number(new URL(sim.url).port), agent: new http.Agent(agentOptions), headers: { "content-type": "application/json;charset=UTF-8", accept: "application/json", origin: ORIGIN } },
        relay: { name: "relay", port: relay.port, agent: new http.Agent(agentOptions), headers: { "content-type": "application/json;charset=UTF-8", accept: "application/json", origin: ORIGIN, authorization: `Bearer ${key.key}` } },
      };
      log("");
      log(`concurrency ${concurrency}`);
      log(HEADER);
      for (const name of ["direct", "relay"]) {
        if (options.warmupSeconds <= 0) continue;
        const warm = await leg(ways[name], { concurrency, seconds: options.warmupSeconds, calls: 0 }, ctx);
        if (name === "relay") sentTotal += warm.calls;
        for (const [k, n] of warm.errors) warmErrors.set(`${name}: ${k}`, (warmErrors.get(`${name}: ${k}`) ?? 0) + n);
        log(row(`c${concurrency} warm-up ${name}`, warm));
      }
      const legs = { direct: [], relay: [] };
      for (let round = 1; round <= options.rounds; round++) {
        const order = round % 2 === 1 ? ["direct", "relay"] : ["relay", "direct"];
        for (const name of order) {
          for (let attempt = 0; ; attempt++) {
            const waited = options.quietWait > 0 ? await quiet(ctx, options.quietWait) : 0;
            if (waited === null) log(`  (other processes kept at least ${OTHERS} of a core busy for ${options.quietWait} s; going on)`);
            else if (waited >= 2) log(`  (waited ${fmt(waited, 0)} s for other processes to leave the cores)`);
            const measured = await leg(ways[name], { concurrency, seconds: options.seconds, calls: options.calls }, ctx);
            if (name === "relay") sentTotal += measured.calls;
            if (!relay.running()) throw new Error(`the relay stopped: ${relay.stderr().trim()}`);
            const others = measured.cpu.other / 1e6 / measured.wall;
            if (others < OTHERS || attempt >= options.retries) {
              legs[name].push(measured);
              log(row(`c${concurrency} round ${round} ${name}`, measured));
              if (others >= OTHERS) log(`  (kept after ${attempt + 1} tries, though other processes used ${fmt(others)} of a core)`);
              break;
            }
            // Disturbed: run again. Its errors still count; its figures do not.
            for (const [k, n] of measured.errors) setAside.set(`${name}: ${k}`, (setAside.get(`${name}: ${k}`) ?? 0) + n);
            log(row(`(set aside) ${name}`, measured));
          }
        }
      }
      for (const way of Object.values(ways)) way.agent.destroy();
      const direct = combine(legs.direct);
      const through = combine(legs.relay);
      log(row(`c${concurrency} all direct`, direct));
      log(row(`c${concurrency} all relay`, through));
      results.push({ concurrency, direct, relay: through });
    }

    const mem = memory(relay.pid);
    await relay.stop();
    relay = null;
    // The relay logs one line a call (with its method), besides its start-up lines.
    const logged = readFileSync(logFile, "utf8")
      .split("\n")
      .filter((line) => line && JSON.parse(line).method !== undefined).length;

    log("");
    const met = (ok) => (ok ? "met" : "MISSED");
    let errorsAll = errorCount(warmErrors) + errorCount(setAside);
    let relayCpu = 0;
    let relayCalls = 0;
    let simulatorCpu = 0;
    for (const r of results) {
      const ratio = r.relay.rate / r.direct.rate;
      const p99 = r.relay.p99 / r.direct.p99;
      const errors = errorCount(r.direct.errors) + errorCount(r.relay.errors);
      errorsAll += errors;
      relayCpu += r.relay.cpu.relay;
      relayCalls += r.relay.calls;
      simulatorCpu += r.relay.cpu.simulator;
      r.ratio = ratio;
      r.p99Ratio = p99;
      log(
        `c${r.concurrency}: through the relay ${fmt(r.relay.rate, 0)} calls/s against ${fmt(r.direct.rate, 0)} direct, ${fmtDown(ratio)} of direct (target ≥ 0.9: ${met(ratio >= 0.9)}); ` +
          `p99 ${fmt(r.relay.p99)} ms against ${fmt(r.direct.p99)} ms, ${fmtUp(p99)}× (target ≤ 1.2×: ${met(p99 <= 1.2)}); p50 ${fmt(r.relay.p50)} against ${fmt(r.direct.p50)} ms; ` +
          `errors ${errors} (target 0: ${met(errors === 0)})`,
      );
      // Who was the bottleneck: a Node process near one full core cannot go faster.
      for (const [name, result] of [["direct", r.direct], ["relay", r.relay]]) {
        const share = (us) => us / 1e6 / result.wall;
        const busy = (result.cpu.relay + result.cpu.simulator + result.cpu.load + result.cpu.other) / 1e6 / result.wall;
        const saturated = [
          share(result.cpu.load) >= 0.9 && "the load generator (one Node thread) is saturated",
          share(result.cpu.simulator) >= 0.9 && "the simulator (one Node thread) is saturated",
          busy >= 0.9 * cores && `the machine's ${cores} cores are busy`,
          share(result.cpu.other) >= OTHERS && `OTHER PROCESSES used ${fmt(share(result.cpu.other))} of a core: the figures are disturbed`,
        ].filter(Boolean);
        log(
          `  c${r.concurrency} ${name}: CPU per call: relay ${fmt(result.cpu.relay / result.calls, 1)} µs, simulator ${fmt(result.cpu.simulator / result.calls, 1)} µs, load generator ${fmt(result.cpu.load / result.calls, 1)} µs; ` +
            `cores busy ${fmt(busy)} of ${cores} (load ${fmt(share(result.cpu.load))}, simulator ${fmt(share(result.cpu.simulator))}, relay ${fmt(share(result.cpu.relay))}, other processes ${fmt(share(result.cpu.other))})` +
            (saturated.length ? `: ${saturated.join("; ")}` : ""),
        );
      }
    }
    if (warmErrors.size) log(`warm-up errors: ${errorText(warmErrors)}`);
    if (setAside.size) log(`errors of legs set aside: ${errorText(setAside)}`);
    const cpuPerCall = relayCpu / relayCalls;
    // Against the simulator's CPU for the same calls: a figure that holds when the machine's speed
    // drifts between runs, for comparing two builds of the relay run one after the other.
    log(
      `relay: ${fmt(cpuPerCall, 1)} µs of CPU per call over ${relayCalls} calls (${clockTicks} ticks a second), ${fmt(relayCpu / simulatorCpu)} of the simulator's CPU for the same calls; ` +
        `peak memory (VmHWM) ${fmt(mem.hwm / 1e6, 1)} MB; log lines ${logged} for ${sentTotal} calls`,
    );
    if (logged !== sentTotal) log(`  the relay logged ${logged} lines for ${sentTotal} calls`);
    log(`targets: ${results.map((r) => `c${r.concurrency} ${met(r.ratio >= 0.9 && r.p99Ratio <= 1.2)}`).join(", ")}; errors ${met(errorsAll === 0)}`);
    log(
      `bench relay: ${results.map((r, i) => `c${r.concurrency} ${fmtDown(r.ratio)}${i === 0 ? " of direct" : ""} (p99 ${fmtUp(r.p99Ratio)}x)`).join(", ")}, ` +
        `cpu ${fmt(cpuPerCall, 0)} us/call, peak ${fmt(mem.hwm / 1e6, 0)} MB, errors ${errorsAll}`,
    );
  } finally {
    await relay?.stop();
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`bench relay: ${error.stack || error.message}\n`);
  process.exit(1);
});
