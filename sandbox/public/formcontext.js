// formContext of a record form: attributes, controls, save with OnSave/OnPostSave events,
// refresh, and form notifications. The form's view (shell.js) renders controls and listens.

const ATTRIBUTE_TYPES = { String: "string", Memo: "memo", Boolean: "boolean", DateTime: "datetime", DateOnly: "datetime", Integer: "integer", Picklist: "optionset", Uniqueidentifier: "string" };

/** Web API value → client API value (DateTime → Date). */
function fromApi(column, value) {
  if (value === null || value === undefined) return null;
  if (column.type === "DateTime" || column.type === "DateOnly") return new Date(column.type === "DateOnly" && value.length === 10 ? value + "T00:00:00" : value);
  return value;
}

/** Client API value → Web API value. */
function toApi(column, value) {
  if (value === null || value === undefined) return null;
  if (column.type === "DateOnly") {
    const d = value instanceof Date ? value : new Date(value);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }
  if (column.type === "DateTime") return (value instanceof Date ? value : new Date(value)).toISOString();
  return value;
}

function typeError(column, value) {
  const want = { String: "string", Memo: "string", Boolean: "boolean", Integer: "number", Picklist: "number" }[column.type];
  if (value === null) return null;
  if (want && typeof value !== want) return `${column.logicalName}.setValue: expected a ${want} or null, got ${typeof value}`;
  if ((column.type === "DateTime" || column.type === "DateOnly") && !(value instanceof Date)) return `${column.logicalName}.setValue: expected a Date or null`;
  return null;
}

/**
 * A formContext for `entityName` with `columns` (Map of column metadata), the row `row` (null
 * for a new record), web resource controls `frames` (name → iframe element), and `ui` hooks.
 * `hidden` and `locked` name the columns whose controls start hidden or disabled.
 */
export function createFormContext({ xrm, entityName, entitySet, primaryKey, columns, row, frames = {}, ui, hidden = new Set(), locked = new Set() }) {
  let id = row ? row[primaryKey] : null;
  const values = new Map();
  const saved = new Map();
  const onSave = [];
  const onPostSave = [];
  const attributes = new Map();
  const controls = new Map();

  function load(data) {
    for (const column of columns.values()) {
      const value = fromApi(column, data ? data[column.logicalName] : null);
      values.set(column.logicalName, value);
      saved.set(column.logicalName, value);
    }
  }
  load(row);

  function same(a, b) {
    if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
    return a === b;
  }

  for (const column of columns.values()) {
    const name = column.logicalName;
    const handlers = [];
    let submitMode = "dirty";
    let requiredLevel = "none";
    const attribute = {
      getName: () => name,
      getAttributeType: () => ATTRIBUTE_TYPES[column.type] || "string",
      getFormat: () => (column.type === "DateOnly" ? "date" : column.type === "DateTime" ? "datetime" : column.type === "Memo" ? "textarea" : null),
      getMaxLength: () => column.maxLength,
      getValue: () => values.get(name),
      setValue(value) {
        const problem = typeError(column, value === undefined ? null : value);
        if (problem) throw new TypeError(problem);
        values.set(name, value === undefined ? null : value);
        ui.changed(name);
      },
      getIsDirty: () => !same(values.get(name), saved.get(name)),
      getSubmitMode: () => submitMode,
      setSubmitMode(mode) {
        submitMode = mode;
      },
      getRequiredLevel: () => requiredLevel,
      setRequiredLevel(level) {
        requiredLevel = level;
      },
      addOnChange: (handler) => handlers.push(handler),
      removeOnChange(handler) {
        const i = handlers.indexOf(handler);
        if (i >= 0) handlers.splice(i, 1);
      },
      fireOnChange() {
        for (const handler of handlers.slice()) handler({ getFormContext: () => formContext, getEventSource: () => attribute, getDepth: () => 0 });
      },
      getOptions: () => (column.options || []).map((o) => ({ value: o.value, text: ui.label(o.label) })),
      getText() {
        const option = (column.options || []).find((o) => o.value === values.get(name));
        return option ? ui.label(option.label) : null;
      },
      controls: { get: () => [controls.get(name)].filter(Boolean), getLength: () => (controls.has(name) ? 1 : 0) },
    };
    attributes.set(name, attribute);
    let visible = !hidden.has(name);
    let disabled = !!column.readOnly || locked.has(name);
    controls.set(name, {
      getName: () => name,
      getControlType: () => (column.type === "Boolean" ? "optionset" : "standard"),
      getAttribute: () => attribute,
      getLabel: () => ui.label(column.label),
      getVisible: () => visible,
      setVisible(v) {
        visible = !!v;
        ui.changed(name);
      },
      getDisabled: () => disabled,
      setDisabled(d) {
        disabled = !!d;
        ui.changed(name);
      },
      setNotification: (message, uniqueId) => ui.controlNotification(name, uniqueId, message),
      clearNotification: (uniqueId) => ui.controlNotification(name, uniqueId, null),
    });
  }
  for (const [name, frame] of Object.entries(frames)) {
    let visible = true;
    controls.set(name, {
      getName: () => name,
      getControlType: () => "webresource",
      getVisible: () => visible,
      setVisible(v) {
        visible = !!v;
        frame.hidden = !visible;
      },
      getSrc: () => frame.src,
      getObject: () => frame,
      /** Resolves to the web resource's window once its page has loaded. */
      getContentWindow: () =>
        new Promise((resolve) => {
          const ready = () => frame.contentDocument && frame.contentDocument.readyState === "complete" && frame.contentWindow.location.href !== "about:blank";
          if (ready()) resolve(frame.contentWindow);
          else frame.addEventListener("load", () => resolve(frame.contentWindow), { once: true });
        }),
    });
  }

  function dirtyColumns() {
    const out = {};
    for (const [name, attribute] of attributes) {
      const column = columns.get(name);
      if (column.readOnly) continue;
      if (attribute.getIsDirty() || attribute.getSubmitMode() === "always") out[name] = toApi(column, values.get(name));
    }
    return out;
  }

  async function save(saveOptions = {}) {
    const mode = saveOptions.saveMode || 1;
    let prevented = false;
    const saveEvent = {
      getFormContext: () => formContext,
      getDepth: () => 0,
      getEventSource: () => formContext.data.entity,
      getEventArgs: () => ({ getSaveMode: () => mode, preventDefault: () => (prevented = true), preventDefaultOnError: () => {}, isDefaultPrevented: () => prevented }),
    };
    for (const handler of onSave.slice()) await handler(saveEvent);
    if (prevented) throw Object.assign(new Error("The save was cancelled by an OnSave handler."), { errorCode: 2147747335 });
    const data = dirtyColumns();
    let error = null;
    try {
      if (id) {
        if (Object.keys(data).length) await xrm.WebApi.updateRecord(entityName, id, data);
      } else {
        id = (await xrm.WebApi.createRecord(entityName, data)).id;
      }
      const fresh = await xrm.WebApi.retrieveRecord(entityName, id);
      load(fresh);
      ui.saved(fresh, id);
    } catch (e) {
      error = e;
    }
    const postSave = {
      getFormContext: () => formContext,
      getDepth: () => 0,
      getEventArgs: () => ({
        getIsSaveSuccess: () => !error,
        getSaveErrorInfo: () => (error ? { errorCode: error.errorCode, message: error.message } : null),
        getEntityReference: () => ({ entityType: entityName, id: id ? `{${id.toUpperCase()}}` : "", name: "" }),
      }),
    };
    for (const handler of onPostSave.slice()) {
      try {
        await handler(postSave);
      } catch (e) {
        console.error("OnPostSave handler failed", e);
      }
    }
    if (error) {
      ui.formNotification("sandbox.save", error.message, "ERROR");
      throw error;
    }
  }

  const collection = (map) => ({
    get: (key) => (key === undefined ? [...map.values()] : typeof key === "number" ? [...map.values()][key] || null : map.get(key) || null),
    getLength: () => map.size,
    forEach: (f) => [...map.values()].forEach(f),
  });

  const formContext = {
    data: {
      entity: {
        getId: () => (id ? `{${id.toUpperCase()}}` : ""),
        getEntityName: () => entityName,
        getEntitySetName: () => entitySet,
        getEntityReference: () => ({ entityType: entityName, id: id ? `{${id.toUpperCase()}}` : "", name: "" }),
        getIsDirty: () => [...attributes.values()].some((a) => a.getIsDirty()),
        getPrimaryAttributeValue: () => values.get("fullname") ?? values.get("new_name") ?? null,
        addOnSave: (handler) => onSave.push(handler),
        removeOnSave(handler) {
          const i = onSave.indexOf(handler);
          if (i >= 0) onSave.splice(i, 1);
        },
        addOnPostSave: (handler) => onPostSave.push(handler),
        removeOnPostSave(handler) {
          const i = onPostSave.indexOf(handler);
          if (i >= 0) onPostSave.splice(i, 1);
        },
        save: (option) => save(option === "saveandclose" ? { saveMode: 2 } : {}),
        attributes: collection(attributes),
      },
      save,
      async refresh(saveFirst) {
        if (saveFirst) await save();
        if (id) {
          const fresh = await xrm.WebApi.retrieveRecord(entityName, id);
          load(fresh);
          ui.saved(fresh, id);
        }
      },
      getIsDirty: () => [...attributes.values()].some((a) => a.getIsDirty()),
      isValid: () => true,
    },
    getAttribute(key) {
      if (key === undefined) return [...attributes.values()];
      if (typeof key === "number") return [...attributes.values()][key] || null;
      return attributes.get(key) || null;
    },
    getControl(key) {
      if (key === undefined) return [...controls.values()];
      if (typeof key === "number") return [...controls.values()][key] || null;
      return controls.get(key) || null;
    },
    ui: {
      getFormType: () => (id ? 2 : 1),
      setFormNotification: (message, level, uniqueId) => ui.formNotification(uniqueId, message, level),
      clearFormNotification: (uniqueId) => ui.formNotification(uniqueId, null),
      refreshRibbon: () => ui.refreshRibbon(),
      close: () => ui.close(),
      controls: collection(controls),
    },
  };
  return formContext;
}
