// Where the build leaves its outputs, for the Node tests.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readZip } from "../../sandbox/zip.mjs";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const webresources = join(root, "target", "webresources");

/** The crate version, from Cargo.toml's [package] section. */
export function version() {
  const toml = readFileSync(join(root, "Cargo.toml"), "utf8");
  const match = toml.match(/\[package\][^[]*?\nversion = "([^"]+)"/);
  if (!match) throw new Error("Cargo.toml has no [package] version");
  return match[1];
}

/** The built solution zip's entries (`unmanaged` or `managed`). */
export function solutionZip(kind = "unmanaged") {
  const v = `${version()}.0`.replaceAll(".", "_");
  return readZip(join(root, "dist", `SalesManagoIntegration_${v}_${kind}.zip`));
}

/** A built web resource's text (`commands.js`, `engine.js`, …). */
export function webresource(file) {
  return readFileSync(join(webresources, file), "utf8");
}
