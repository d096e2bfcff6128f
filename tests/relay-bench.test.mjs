// `npm run bench:relay` at a tiny size, with the relay's debug build: both ways run, every call
// is answered and logged, and the last line has the exact shape. Figures are not judged
// here (a debug build on a noisy machine); only that the bench runs and says what it measured.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { root } from "./support/package.mjs";
import { ensureRelay, RELAY_BINARY } from "../sandbox/relay.mjs";

const bench = (script, args) =>
  spawnSync(process.execPath, [join(root, "bench", script), ...args], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, SALESMANAGO_RELAY_BIN: RELAY_BINARY },
  });

test("the relay bench runs both ways at a tiny size and ends with its one-line result", { skip: process.platform !== "linux" && "the bench reads /proc" }, () => {
  ensureRelay();
  // Not waiting for a quiet machine: `npm test` runs other test files beside this one.
  const run = bench("relay.mjs", ["--concurrency", "4", "--seconds", "1", "--rounds", "2", "--warmup-seconds", "0.2", "--quiet-wait", "0", "--retries", "0"]);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split("\n");
  assert.match(lines[0], /^bench relay: .*; concurrency 4; 2 round\(s\) of 1 s a leg each way after 0\.2 s of warm-up; simulator latency 0 ms; .*, 1 key$/);
  // Rounds alternate which way goes first.
  const legs = lines.filter((l) => /^c4 round \d (direct|relay) /.test(l)).map((l) => l.split(/\s+/).slice(1, 4).join(" "));
  assert.deepEqual(legs, ["round 1 direct", "round 1 relay", "round 2 relay", "round 2 direct"]);
  for (const line of lines.filter((l) => /^c4 (round|all|warm-up)/.test(l))) assert.match(line, /\s0$/, `no errors: ${line}`);
  assert.match(run.stdout, /^c4: through the relay \d+ calls\/s against \d+ direct, \d+\.\d\d of direct \(target ≥ 0\.9: (met|MISSED)\); p99 .*errors 0 \(target 0: met\)$/m);
  assert.match(run.stdout, /^ {2}c4 relay: CPU per call: relay \d+\.\d µs, simulator \d+\.\d µs, load generator \d+\.\d µs; cores busy /m);
  const [, logged, calls] = run.stdout.match(/^relay: [\d.]+ µs of CPU per call over \d+ calls .*, [\d.]+ of the simulator's CPU for the same calls; .*log lines (\d+) for (\d+) calls$/m);
  assert.equal(logged, calls, "the relay logs one line a call");
  assert.ok(Number(calls) > 0);
  assert.match(lines.at(-1), /^bench relay: c4 \d+\.\d\d of direct \(p99 \d+\.\d\dx\), cpu \d+ us\/call, peak \d+ MB, errors 0$/);
});

test("the relay bench names a bad option or value, with its usage, also through `npm run bench -- --relay`", () => {
  for (const [script, args, said] of [
    ["relay.mjs", ["--concurrency", "32,x"], "--concurrency takes whole numbers ≥ 1, comma-separated, not 32,x"],
    ["relay.mjs", ["--seconds", "0"], "--seconds takes a number of seconds above 0, not 0"],
    ["relay.mjs", ["--mix", "contact/delete"], "--mix takes some of contact/upsert,contact/basic,contact/hasContact,contact/batchupsert, not contact/delete"],
    ["run.mjs", ["--relay", "--round", "2"], "unknown option --round"],
  ]) {
    const run = bench(script, args);
    assert.equal(run.status, 2, args.join(" "));
    assert.equal(run.stderr.split("\n")[0], said);
    assert.match(run.stderr.split("\n")[1], /^usage: npm run bench:relay -- \[--concurrency 32,128\] .*\[--mix method,\.\.\.\] \[--retries N\] \[--quiet-wait S\]$/);
  }
});
