// `npm run bench` at a small size: every job runs to its summary through the bare DevTools
// driver, the counts add up, and the last line has the exact shape. Figures are not
// judged here (the machine is noisy); only that the bench runs and says what it measured.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { root } from "./support/package.mjs";

const bench = (args) =>
  spawnSync(process.execPath, [join(root, "bench", "run.mjs"), ...args], { encoding: "utf8", timeout: 180_000 });

test("the bench runs every job at a small size and ends with its one-line result", () => {
  // Stalls are reported, not judged: on a loaded machine a timer's delay says little.
  const run = bench(["--contacts", "1200", "--small", "400", "--naive", "3", "--latency-ms", "5", "--mapped", "3", "--stall-limit-ms", "0"]);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split("\n");
  assert.match(lines[0], /^bench: 1200 contacts, latency 5 ms .*, devtools driver, 3 mapped columns$/);
  assert.match(run.stdout, /Export all contacts finished: 1200 contacts\. (\d+) sent, (\d+) skipped, 0 failed\./);
  const [, sent, skipped] = run.stdout.match(/finished: 1200 contacts\. (\d+) sent, (\d+) skipped/);
  assert.equal(Number(sent) + Number(skipped), 1200);
  assert.match(run.stdout, /^pull consents: .* of limit/m);
  assert.match(run.stdout, /^pull changes: .* of limit/m);
  assert.match(run.stdout, /CPU during the job \(.*\): browser [\d.]+ s \(renderer [\d.]+/);
  assert.match(run.stdout, /^  CPU bound: [\d.]+ s of CPU on \d+ cores needs [\d.]+ s of wall time at least; the job took [\d.]+× that$/m);
  assert.match(run.stdout, /^fetch contact: click to filled \d+ ms \(median of 5/m);
  assert.match(lines.at(-2), /^stalls: export all \d+ ms, pull consents \d+ ms, pull changes \d+ ms, pull activity \d+ ms \(no limit\)$/);
  assert.match(lines.at(-1), /^bench: export \d+\.\d\d of limit, \d+ x naive, wasm \d+ B$/);
});

test("the bench compares Export all without and with a mapping, pair by pair, and gives the median ratio", () => {
  const run = bench(["--compare-mapped", "3", "--repeat", "2", "--contacts", "300", "--latency-ms", "5"]);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split("\n");
  assert.match(lines[0], /^bench: Export all of 300 contacts, no mapping vs 3 mapped columns, 2 pairs, latency 5 ms$/);
  assert.match(lines[1], /^pair 1: no mapping \d+\.\d\d s, 3 mapped \d+\.\d\d s, ratio \d+\.\d{3}$/);
  assert.match(lines[2], /^pair 2: no mapping /);
  assert.match(lines.at(-1), /^bench: export all with 3 mapped columns is \d+\.\d{3}× the time without \(median of 2 pairs; spread \d+\.\d{3}-\d+\.\d{3}\)$/);
});

test("the bench names a bad option or value, with its usage", () => {
  for (const [args, said] of [
    [["--driver", "firefox"], "--driver takes devtools or playwright, not firefox"],
    [["--contacts=-5"], "--contacts takes a whole number ≥ 0, not -5"],
    [["--latency-ms"], "--latency-ms takes a whole number ≥ 0, not nothing"],
    [["--contact", "5"], "unknown option --contact"],
    [["--stall-limit-ms", "fifty"], "--stall-limit-ms takes a whole number ≥ 0, not fifty"],
    // No time at all would fail every job before it starts.
    [["--job-minutes", "0"], "--job-minutes takes a whole number ≥ 1, not 0"],
  ]) {
    const run = bench(args);
    assert.equal(run.status, 2, args.join(" "));
    assert.equal(run.stderr.split("\n")[0], said);
    assert.match(run.stderr.split("\n")[1], /^usage: npm run bench -- .*\[--driver devtools\|playwright\] \[--mapped N\] \[--activity 0\|1\] \[--stall-limit-ms M\] \[--protection 0\|1\] \[--job-minutes M\] \[--compare-mapped N \[--repeat R\]\]$/);
  }
});
