// The command bar, built from the solution's RibbonDiffXml as Dynamics would: the CustomActions
// at this page's locations, each Button's Command → CommandDefinition (JavaScriptFunction with
// its Library and parameters), and the enable and display rules the solution uses. Anything the
// sandbox cannot honour is reported as a wiring error rather than guessed.

import { child, children, locLabel, path, pick, webresourceUrl } from "./solution.js";
import { SYSTEM_BUTTONS } from "./system.js";

/**
 * Rules Dynamics defines itself (base ribbon), by id. `state.privileges` is what the user's
 * security roles give on contacts (the sandbox user has the same rights on every row); the
 * sandbox's grids are home grids, never many-to-many sub-grids, and it has no charts pane and
 * no mobile offline.
 */
const SYSTEM_RULES = {
  "Mscrm.FormStateNotNew": (state) => state.formType !== 1,
  "Mscrm.SelectionCountAtLeastOne": (state) => state.selected >= 1,
  "Mscrm.SelectionCountExactlyOne": (state) => state.selected === 1,
  "Mscrm.CanDeletePrimary": (state) => state.privileges?.delete !== false,
  "Mscrm.DeletePrimaryEntityPermission": (state) => state.privileges?.delete !== false,
  "Mscrm.DeleteSelectedEntityPermission": (state) => state.privileges?.delete !== false,
  "Mscrm.IsEntityAvailableForUserInMocaOffline": () => true,
  "Mscrm.VisualizationPaneNotMaximized": () => true,
  "Mscrm.NotShowForManyToManyGrids": (state) => !state.manyToMany,
};

const libraries = new Map();

/** Loads a web resource script once per page, as Dynamics loads ribbon libraries. */
export function loadLibrary(url) {
  if (!libraries.has(url)) {
    libraries.set(
      url,
      new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = url;
        script.onload = resolve;
        script.onerror = () => reject(new Error(`library ${url} could not be loaded`));
        document.head.appendChild(script);
      }),
    );
  }
  return libraries.get(url);
}

/** The global function at a dotted `name`, or null. */
function resolveFunction(name) {
  let at = window;
  for (const part of name.split(".")) {
    if (at === null || at === undefined) return null;
    at = at[part];
  }
  return typeof at === "function" ? at : null;
}

function byId(elements, id) {
  return elements.find((e) => e.getAttribute("Id") === id) || null;
}

/** The arguments of a JavaScriptFunction or CustomRule element. */
function argumentsOf(element, context) {
  return children(element).map((p) => {
    const value = p.getAttribute("Value");
    switch (p.nodeName) {
      case "CrmParameter":
        if (!(value in context.parameters)) throw new Error(`CrmParameter ${value} is not available on this page`);
        return context.parameters[value]();
      case "StringParameter":
        return value;
      case "BoolParameter":
        return value === "true";
      case "IntParameter":
        return parseInt(value, 10);
      case "DecimalParameter":
        return Number(value);
      default:
        throw new Error(`unsupported parameter <${p.nodeName}>`);
    }
  });
}

/** Calls a FunctionName from a Library with its parameters; resolves to its result. */
async function call(element, context) {
  const library = webresourceUrl(element.getAttribute("Library"));
  if (!library) throw new Error(`Library "${element.getAttribute("Library")}" is not a $webresource: reference`);
  await loadLibrary(library);
  const name = element.getAttribute("FunctionName");
  if (name === "isNaN") return true;
  const f = resolveFunction(name);
  if (!f) throw new Error(`${name} is not a function after loading ${library}`);
  return f(...argumentsOf(element, context));
}

async function rule(element, context) {
  const invert = element.getAttribute("InvertResult") === "true";
  let result;
  switch (element.nodeName) {
    case "CustomRule": {
      const fallback = element.getAttribute("Default") !== "false";
      try {
        result = (await call(element, context)) !== false;
      } catch (e) {
        context.wiring(`CustomRule ${element.getAttribute("FunctionName")}: ${e.message}`);
        result = fallback;
      }
      break;
    }
    case "FormStateRule": {
      const state = element.getAttribute("State");
      const states = { Create: 1, Existing: 2, ReadOnly: 3, Disabled: 4, BulkEdit: 6 };
      if (!(state in states)) throw new Error(`FormStateRule State="${state}" is not supported`);
      result = context.state.formType === states[state];
      break;
    }
    case "SelectionCountRule": {
      const min = element.hasAttribute("Minimum") ? Number(element.getAttribute("Minimum")) : 0;
      const max = element.hasAttribute("Maximum") ? Number(element.getAttribute("Maximum")) : Infinity;
      result = context.state.selected >= min && context.state.selected <= max;
      break;
    }
    case "EntityRule":
      result = (element.getAttribute("EntityName") || "").toLowerCase() === context.entityName;
      break;
    default:
      throw new Error(`rule <${element.nodeName}> is not supported by the sandbox`);
  }
  return invert ? !result : result;
}

/** Evaluates the rules referenced by `references` (EnableRule or DisplayRule elements); all must hold. */
async function rules(references, definitions, context) {
  for (const reference of references) {
    const id = reference.getAttribute("Id");
    const definition = byId(definitions, id);
    if (definition) {
      for (const element of children(definition)) if (!(await rule(element, context))) return false;
    } else if (SYSTEM_RULES[id]) {
      if (!SYSTEM_RULES[id](context.state)) return false;
    } else {
      throw new Error(`rule ${id} is defined neither by the solution nor by the sandbox`);
    }
  }
  return true;
}

/**
 * The command bar of `entityName` on `page` ("form" or "grid"): buttons sorted by sequence,
 * each `{id, label, tooltip, image, source, evaluate(): Promise<{visible, enabled}>, run(): Promise}`.
 * `context` = {lcid, parameters: {CrmParameter name → () => value}, state: {formType, selected},
 * system: {command id → () => Promise}, wiring(message)}.
 */
export function commandBar(solution, entityName, page, context) {
  const entity = solution.entities.get(entityName);
  const ribbon = entity ? entity.ribbon : null;
  const prefix = page === "form" ? `Mscrm.Form.${entityName}.` : `Mscrm.HomepageGrid.${entityName}.`;
  const definitions = children(path(ribbon, "CommandDefinitions"), "CommandDefinition");
  const enableRules = children(path(ribbon, "RuleDefinitions", "EnableRules"), "EnableRule");
  const displayRules = children(path(ribbon, "RuleDefinitions", "DisplayRules"), "DisplayRule");
  const full = { ...context, entityName };

  function button({ id, command, label, tooltip, image, sequence, source, systemEnable }) {
    const definition = byId(definitions, command);
    const broken = (message) => {
      context.wiring(`${id}: ${message}`);
      return { visible: true, enabled: false, error: message };
    };
    return {
      id,
      label,
      tooltip,
      image,
      sequence,
      source,
      async evaluate() {
        try {
          if (definition) {
            const visible = await rules(children(child(definition, "DisplayRules"), "DisplayRule"), displayRules, full);
            const enabled = visible && (await rules(children(child(definition, "EnableRules"), "EnableRule"), enableRules, full));
            return { visible, enabled };
          }
          if (context.system[command]) return { visible: true, enabled: systemEnable(context.state) };
          return broken(`command ${command} has no CommandDefinition`);
        } catch (e) {
          return broken(e.message);
        }
      },
      async run() {
        if (definition) {
          const actions = children(child(definition, "Actions"));
          if (!actions.length) throw new Error(`${command} has no action`);
          for (const action of actions) {
            if (action.nodeName !== "JavaScriptFunction") throw new Error(`action <${action.nodeName}> is not supported by the sandbox`);
            await call(action, full);
          }
        } else if (context.system[command]) {
          await context.system[command]();
        } else {
          throw new Error(`command ${command} has no CommandDefinition`);
        }
      },
    };
  }

  const ENABLE = { always: () => true, existing: (s) => s.formType !== 1, selection: (s) => s.selected >= 1 };
  const buttons = SYSTEM_BUTTONS[page].map((b) =>
    button({ id: b.command, command: b.command, label: pick(b.label, context.lcid), tooltip: "", image: null, sequence: b.sequence, source: "system", systemEnable: ENABLE[b.enable] }),
  );
  for (const action of children(path(ribbon, "CustomActions"), "CustomAction")) {
    const location = action.getAttribute("Location") || "";
    if (!location.startsWith(prefix + "MainTab.")) continue;
    for (const element of children(child(action, "CommandUIDefinition"), "Button")) {
      const attr = (name) => element.getAttribute(name);
      const label = locLabel(ribbon, attr("LabelText"), context.lcid) || locLabel(ribbon, attr("Alt"), context.lcid);
      if (!label) context.wiring(`${attr("Id")}: no label for language ${context.lcid}`);
      buttons.push(
        button({
          id: attr("Id"),
          command: attr("Command"),
          label: label || attr("Id"),
          tooltip: locLabel(ribbon, attr("ToolTipDescription"), context.lcid),
          image: webresourceUrl(attr("ModernImage")),
          sequence: 1000 + Number(action.getAttribute("Sequence") || attr("Sequence") || 0),
          source: "solution",
          systemEnable: ENABLE.always,
        }),
      );
    }
  }
  return buttons.sort((a, b) => a.sequence - b.sequence);
}
