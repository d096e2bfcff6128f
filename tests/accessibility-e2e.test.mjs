// Accessibility of every sandbox page, the credential page and a dialog, in English and Polish,
// checked with axe-core in Chromium: no serious or critical violation.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { button, configure, credentialFrame, open, startSandboxWorld } from "./support/sandbox.mjs";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
let world;

before(async () => {
  world = await startSandboxWorld({ contacts: 20 });
  configure(world);
});

after(async () => {
  await world?.close();
});

/** The serious and critical violations axe finds in `frame` (a page or a frame), one line each. */
async function violations(frame) {
  await frame.addScriptTag({ content: AXE });
  const found = await frame.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  return found;
}

for (const lcid of [1033, 1045]) {
  test(`every page, the credential page, the mapping editor and a dialog have no serious accessibility violation (${lcid})`, async () => {
    const contact = world.sandbox.dataverse.rows("contact")[0];
    const problems = [];
    for (const path of ["/contacts", `/contacts/${contact.contactid}`, "/integration"]) {
      await open(world, path, lcid);
      for (const v of await violations(world.page)) problems.push(`${path}: ${v}`);
    }
    await credentialFrame(world.page).locator("#save:not([disabled])").waitFor();
    const frame = world.page.frames().find((f) => f.url().includes("credentials.html"));
    for (const v of await violations(frame)) problems.push(`credentials.html: ${v}`);
    const editor = world.page.frameLocator('iframe[data-control="WebResource_mapping"]');
    await editor.locator("#add:not([disabled])").waitFor();
    await editor.locator("#add").click();
    const mapping = world.page.frames().find((f) => f.url().includes("mapping.html"));
    for (const v of await violations(mapping)) problems.push(`mapping.html: ${v}`);
    await button(world.page, "new.integration.TestConnection.Button").click();
    await world.page.locator("#dialogs .dialog").first().waitFor();
    for (const v of await violations(world.page)) problems.push(`dialog: ${v}`);
    await world.page.locator("#dialogs .dialog button").first().click();
    assert.deepEqual(problems, []);
  });
}
