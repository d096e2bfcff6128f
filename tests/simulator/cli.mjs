#!/usr/bin/env node
// Runs the SALESmanago simulator until SIGINT/SIGTERM. Prints one JSON line once listening:
// {"url":…,"clientId":…,"apiSecret":…,"owner":…}
import { startSimulator } from "./server.mjs";

const USAGE =
  "usage: node tests/simulator/cli.mjs [--port N] [--host H] [--latency-ms N] [--cors | --no-cors] [--client-id X] " +
  "[--api-secret Y] [--owner a@b.c] [--max-batch N] [--max-window-days N] [--activity-per-contact N] [--activity-seed S] " +
  "[--activity-since MS] [--activity-until MS]";

const integer = (min, max) => (text) => {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= min && value <= max ? value : undefined;
};
const nonEmpty = (text) => (text === "" ? undefined : text);

/** flag → [option name, parser]. */
const VALUE_FLAGS = {
  "--port": ["port", integer(0, 65535)],
  "--host": ["host", nonEmpty],
  "--latency-ms": ["latencyMs", integer(0, Number.MAX_SAFE_INTEGER)],
  "--client-id": ["clientId", nonEmpty],
  "--api-secret": ["apiSecret", nonEmpty],
  "--owner": ["owner", nonEmpty],
  "--max-batch": ["maxBatch", integer(1, Number.MAX_SAFE_INTEGER)],
  "--max-window-days": ["maxWindowDays", integer(1, Number.MAX_SAFE_INTEGER)],
  // Generated activity (the `activity` option): "activity.<field>".
  "--activity-per-contact": ["activity.perContact", integer(0, 1000)],
  "--activity-seed": ["activity.seed", nonEmpty],
  "--activity-since": ["activity.since", integer(0, Number.MAX_SAFE_INTEGER)],
  "--activity-until": ["activity.until", integer(0, Number.MAX_SAFE_INTEGER)],
};

class UsageError extends Error {}

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    if ((flag === "--cors" || flag === "--no-cors") && inline === undefined) {
      options.cors = flag === "--cors";
      continue;
    }
    if (flag === "--help" || flag === "-h") throw new UsageError("help");
    if (!Object.hasOwn(VALUE_FLAGS, flag)) throw new UsageError(`unknown flag ${argv[i]}`);
    const text = inline ?? argv[(i += 1)];
    if (text === undefined) throw new UsageError(`${flag} needs a value`);
    const [name, parse] = VALUE_FLAGS[flag];
    const value = parse(text);
    if (value === undefined) throw new UsageError(`bad value for ${flag}: ${text}`);
    const [group, field] = name.split(".");
    if (field === undefined) options[name] = value;
    else options[group] = { ...options[group], [field]: value };
  }
  return options;
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (error.message === "help") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    process.stderr.write(`${error.message}; ${USAGE}\n`);
    process.exit(2);
  }

  let simulator;
  try {
    simulator = await startSimulator(options);
  } catch (error) {
    const usage = error instanceof TypeError;
    process.stderr.write(usage ? `${error.message}; ${USAGE}\n` : `simulator failed to start: ${error.message}\n`);
    process.exit(usage ? 2 : 1);
  }

  const { url, clientId, apiSecret, owner } = simulator;
  process.stdout.write(`${JSON.stringify({ url, clientId, apiSecret, owner })}\n`);

  const stop = () => simulator.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main();
