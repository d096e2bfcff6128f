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
 * The test engine's `engine.js` (`cargo xtask build --test-engine`): every shipped engine's
 * commands in one, plus `salesmanagoCall`, `mapContact`, `contactPatch` and `memoryBytes`, which
 * only tests call (`engine-admin.js`, `engine-export.js` and `engine-pull.js` beside it are the
 * same engine under the other engines' globals).
 */
export function testEngine() {
  return readFileSync(join(root, "target", "engine-test", "engine.js"), "utf8");
}

/** A built web resource's text (`commands.js`, `engine.js`, …). */
export function webresource(file) {
  return readFileSync(join(webresources, file), "utf8");
}
