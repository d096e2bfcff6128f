// Where the build leaves its outputs, for the Node tests.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crateVersion, readZip, solutionZipPath } from "../../sandbox/zip.mjs";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const webresources = join(root, "target", "webresources");

/** The crate version, from Cargo.toml's [package] section. */
export function version() {
  return crateVersion(root);
}

/** The built solution zip's entries (`unmanaged` or `managed`). */
export function solutionZip(kind = "unmanaged") {
  return readZip(solutionZipPath(root, kind));
}

/**
 * The test engine's `engine.en.js` (`cargo xtask build --test-engine`): every shipped engine's
 * commands and both languages in one, plus `salesmanagoCall`, `mapContact`, `contactPatch` and
 * `memoryBytes`, which only tests call (every other engine file beside it, `engine.pl.js`,
 * `engine-admin.en.js`, …, is the same engine, under its engine's global).
 */
export function testEngine() {
  return readFileSync(join(root, "target", "engine-test", "engine.en.js"), "utf8");
}

/** A built web resource's text (`commands.js`, `engine.en.js`, …). */
export function webresource(file) {
  return readFileSync(join(webresources, file), "utf8");
}
