// The platform's checker as `npm run lint` runs it (xtask/checker.mjs): it reads every script
// the built solution ships, and its rules catch what Microsoft's solution checker refuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ESLint } from "eslint";
import { checkerConfig, shippedScripts } from "../xtask/checker.mjs";
import { solutionZipPath } from "../sandbox/zip.mjs";
import { root } from "../sandbox/server.mjs";

async function findings(code) {
  const eslint = new ESLint({ cwd: root, overrideConfigFile: true, overrideConfig: checkerConfig() });
  const [result] = await eslint.lintText(code, { filePath: `${root}/dist/checked/snippet.js` });
  return result.messages.map((m) => `${m.ruleId || "parser"}: ${m.severity === 2 ? "error" : "warning"}`);
}

test("the checker reads every script the solution ships, inline ones too", () => {
  const names = shippedScripts(solutionZipPath(root, "managed")).map((s) => s.name);
  assert.deepEqual(names, [
    "new_/salesmanago/engine.en.js",
    "new_/salesmanago/engine.pl.js",
    "new_/salesmanago/engine-admin.en.js",
    "new_/salesmanago/engine-admin.pl.js",
    "new_/salesmanago/engine-export.en.js",
    "new_/salesmanago/engine-export.pl.js",
    "new_/salesmanago/engine-pull-consents.en.js",
    "new_/salesmanago/engine-pull-changes.en.js",
    "new_/salesmanago/engine-pull-activity.en.js",
    "new_/salesmanago/engine-pull-consents.pl.js",
    "new_/salesmanago/engine-pull-changes.pl.js",
    "new_/salesmanago/engine-pull-activity.pl.js",
    "new_/salesmanago/commands.js",
    "new_/salesmanago/credentials.html (inline script 1)",
    "new_/salesmanago/mapping.html (inline script 1)",
  ]);
});

test("the checker refuses what the platform refuses", async () => {
  assert.deepEqual(await findings("var a = b?.c;"), ["parser: error"], "newer than ES2018");
  assert.deepEqual(await findings('var u = Xrm.Utility.getGlobalContext().getClientUrl() + "/WebResources/x.js";'), [
    "@microsoft/power-apps/use-cached-webresource: error",
  ]);
  assert.deepEqual(await findings("var p = window.parent.document;"), ["@microsoft/power-apps/do-not-make-parent-assumption: error"]);
  assert.deepEqual(await findings('document.write("<b>x</b>");'), ["@microsoft/sdl/no-document-write: error"]);
  assert.deepEqual(await findings("var x = 1; x += 1;"), []);
});

test("the solution as shipped passes the checker", async () => {
  const eslint = new ESLint({ cwd: root, overrideConfigFile: true, overrideConfig: checkerConfig() });
  for (const { name, code } of shippedScripts(solutionZipPath(root, "managed"))) {
    const [result] = await eslint.lintText(code, { filePath: `${root}/dist/checked/${name.replaceAll("/", "_")}.js` });
    assert.deepEqual(result.messages.map((m) => `${m.line}: ${m.message}`), [], name);
  }
});
