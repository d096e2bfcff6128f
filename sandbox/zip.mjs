// The built solution package: where the build leaves it, and its entries, read with nothing
// but node:zlib (stored or deflated: enough for the zips the build writes).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { inflateRawSync } from "node:zlib";

/** Map of entry name → Buffer, in archive order. */
export function readZip(path) {
  const zip = readFileSync(path);
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error(`${path}: not a zip (no end of central directory)`);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries = new Map();
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`${path}: bad central directory at ${at}`);
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString("utf8", at + 46, at + 46 + nameLength);
    const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(dataStart, dataStart + compressed);
    if (method === 0) entries.set(name, Buffer.from(data));
    else if (method === 8) entries.set(name, inflateRawSync(data));
    else throw new Error(`${path}: ${name} uses compression method ${method}`);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The crate version, from `root`/Cargo.toml's [package] section. */
export function crateVersion(root) {
  const toml = readFileSync(join(root, "Cargo.toml"), "utf8");
  const match = toml.match(/\[package\][^[]*?\nversion = "([^"]+)"/);
  if (!match) throw new Error("Cargo.toml has no [package] version");
  return match[1];
}

/** Where the build leaves the solution zip (`unmanaged` or `managed`). */
export function solutionZipPath(root, kind = "unmanaged") {
  return join(root, "dist", `SalesManagoIntegration_${`${crateVersion(root)}.0`.replaceAll(".", "_")}_${kind}.zip`);
}
