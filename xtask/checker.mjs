#!/usr/bin/env node
// `npm run lint`'s last step: the platform's own checker on the solution as shipped.
//
// Microsoft's solution checker judges every web resource an org imports. Its web rules are
// published as @microsoft/eslint-plugin-power-apps, and its security rules as
// @microsoft/eslint-plugin-sdl. This runs all of the first (as errors, though the checker
// itself warns for most) and the second's required set on every script the built managed
// solution carries: each JScript web resource, and each inline <script> of its HTML web
// resources, parsed as ES2018, the newest syntax the checker accepts. Prints each finding and
// exits 1 on any error.
//
//   node xtask/checker.mjs [solution.zip]      (default: the managed zip in dist/)
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import powerApps from "@microsoft/eslint-plugin-power-apps";
import sdl from "@microsoft/eslint-plugin-sdl";
import { readZip, solutionZipPath } from "../sandbox/zip.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const zipPath = process.argv[2] || solutionZipPath(root, "managed");

/** The scripts of the solution at `path`: [{name, code}], named as Dynamics names them. */
export function shippedScripts(path) {
  const entries = readZip(path);
  const customizations = entries.get("customizations.xml").toString("utf8");
  const scripts = [];
  for (const [, block] of customizations.matchAll(/<WebResource>([\s\S]*?)<\/WebResource>/g)) {
    const field = (tag) => (block.match(new RegExp(`<${tag}>([^<]*)</${tag}>`)) || [])[1];
    const name = field("Name");
    const file = field("FileName").replace(/^\//, "");
    const type = Number(field("WebResourceType"));
    const body = entries.get(file);
    if (!body) throw new Error(`${path}: ${name} is declared at ${file}, which the zip does not hold`);
    const text = body.toString("utf8");
    if (type === 3) scripts.push({ name, code: text });
    if (type === 1) {
      let n = 0;
      for (const [, attributes, code] of text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
        n += 1;
        if (/\bsrc\s*=/.test(attributes)) continue; // another web resource, linted as itself
        scripts.push({ name: `${name} (inline script ${n})`, code });
      }
    }
  }
  return scripts;
}

/** Every rule of the Power Apps plug-in as an error, and the SDL plug-in's required set. */
export function checkerConfig() {
  const everyRule = Object.fromEntries(Object.keys(powerApps.rules).map((rule) => [`@microsoft/power-apps/${rule}`, "error"]));
  return [
    { languageOptions: { ecmaVersion: 2018, sourceType: "script" } },
    { plugins: { "@microsoft/power-apps": powerApps }, rules: everyRule },
    ...sdl.configs.required,
  ];
}

async function main() {
  if (!existsSync(zipPath)) {
    process.stderr.write(`checker: ${zipPath} is not built yet; run \`npm run build\` (or \`npm test\`, which builds) first\n`);
    process.exit(2);
  }
  const eslint = new ESLint({ cwd: root, overrideConfigFile: true, overrideConfig: checkerConfig() });
  const scripts = shippedScripts(zipPath);
  let errors = 0;
  let warnings = 0;
  for (const { name, code } of scripts) {
    const [result] = await eslint.lintText(code, { filePath: join(root, "dist", "checked", `${name.replaceAll("/", "_")}.js`) });
    for (const m of result.messages) {
      const severity = m.severity === 2 ? "error" : "warning";
      if (m.severity === 2) errors += 1;
      else warnings += 1;
      const excerpt = code.split("\n")[(m.line || 1) - 1]?.trim().slice(0, 100) ?? "";
      process.stdout.write(`${name}:${m.line}:${m.column}: ${severity}: ${m.message} (${m.ruleId || "parser"})\n    ${excerpt}\n`);
    }
  }
  process.stdout.write(`checker: ${scripts.length} scripts (${scripts.map((s) => s.name).join(", ")}): ${errors} errors, ${warnings} warnings\n`);
  if (errors > 0) process.exit(1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
