// The sandbox's command bar evaluates the solution's Delete overrides with Dynamics' own rules:
// Delete shows only to a user who may delete, never on a many-to-many sub-grid (where the
// platform's Remove belongs), and is enabled only for a saved record or a selection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { commandBar } from "../sandbox/public/ribbon.js";
import { loadBuiltSolution } from "../sandbox/server.mjs";

const { solution } = loadBuiltSolution();

async function deleteButton(page, state) {
  const wiring = [];
  const bar = commandBar(solution, "contact", page, { lcid: 1033, parameters: {}, state, system: {}, wiring: (m) => wiring.push(m) });
  const id = page === "form" ? "Mscrm.DeletePrimaryRecord" : "Mscrm.DeleteSelectedRecord";
  const button = bar.find((b) => b.id === id);
  assert.ok(button, `${id} is on the ${page}`);
  const seen = await button.evaluate();
  assert.deepEqual(wiring, [], "every rule is one the sandbox knows");
  return { visible: seen.visible, enabled: seen.enabled };
}

test("Delete follows the user's delete privilege, the kind of grid and the record's state", async () => {
  const may = { delete: true };
  const mayNot = { delete: false };
  assert.deepEqual(await deleteButton("grid", { selected: 1, privileges: may, manyToMany: false }), { visible: true, enabled: true });
  assert.deepEqual(await deleteButton("grid", { selected: 0, privileges: may, manyToMany: false }), { visible: true, enabled: false });
  assert.equal((await deleteButton("grid", { selected: 1, privileges: may, manyToMany: true })).visible, false, "a many-to-many sub-grid");
  assert.equal((await deleteButton("grid", { selected: 1, privileges: mayNot, manyToMany: false })).visible, false, "no privilege");
  assert.deepEqual(await deleteButton("form", { formType: 2, privileges: may }), { visible: true, enabled: true });
  assert.deepEqual(await deleteButton("form", { formType: 1, privileges: may }), { visible: true, enabled: false });
  assert.equal((await deleteButton("form", { formType: 2, privileges: mayNot })).visible, false);
});
