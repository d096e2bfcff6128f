// The sandbox's model-driven app: a contact grid (/contacts), the contact form (/contacts/<id>),
// and the integration record's form (/integration), each with the command bar its solution
// defines. Renders what formContext and Xrm (formcontext.js, xrm.js) hold; owns no logic of the
// product.

import { child, children, localized, path, pick, readSolution } from "./solution.js";
import { createXrm } from "./xrm.js";
import { createFormContext } from "./formcontext.js";
import { commandBar, loadLibrary } from "./ribbon.js";
import { CONTACT_FORM, CONTACT_VIEW, TEXT } from "./system.js";

const INTEGRATION = "new_salesmanagointegration";
const ACTIVITY = "new_salesmanagoactivity";
const API = "/api/data/v9.2/";
const TIMELINE_PAGE = 50;
const WEB_RESOURCE_CONTROL = "{9FDF5F91-88B1-47f4-AD53-C11EFC01A01D}";
const PAGE_SIZE = 50;

const params = new URLSearchParams(window.location.search);
const lcid = Number(params.get("lcid") || localStorage.getItem("sandbox.lcid") || 1033);
const t = (key) => pick(TEXT[key], lcid);
const $ = (id) => document.getElementById(id);

/** What tests and people can inspect: a log of what the user was shown, and wiring errors. */
const sandbox = (window.__sandbox = { ready: false, log: [], wiringErrors: [], formContext: null, gridContext: null });

function element(tag, attributes = {}, ...content) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of content.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function wiring(message) {
  if (!sandbox.wiringErrors.includes(message)) {
    sandbox.wiringErrors.push(message);
    console.error("wiring:", message);
  }
}

// ---- dialogs, notifications, progress: the `ui` behind Xrm ----

let dialogCount = 0;
function dialog({ kind, title, subtitle, text, details, errorCode, confirm, cancel }) {
  sandbox.log.push({ kind, title: title || null, text, details: details || null });
  return new Promise((resolve) => {
    const n = ++dialogCount;
    const heading = title || (kind === "error" ? t("error") : kind === "confirm" ? t("confirm") : "Dynamics 365");
    const previous = document.activeElement;
    const close = (value) => {
      scrim.remove();
      if (previous && previous.focus) previous.focus();
      resolve(value);
    };
    const ok = element("button", { type: "button", class: "primary", onclick: () => close(true) }, confirm || t("ok"));
    const buttons = [ok];
    if (kind === "confirm") buttons.push(element("button", { type: "button", onclick: () => close(false) }, cancel || t("cancel")));
    const box = element(
      "div",
      { role: kind === "alert" || kind === "confirm" ? "alertdialog" : "dialog", "aria-modal": "true", "aria-labelledby": `dialog-title-${n}`, "aria-describedby": `dialog-text-${n}`, class: `dialog ${kind}`, "data-kind": kind },
      element("h2", { id: `dialog-title-${n}` }, heading),
      subtitle ? element("p", { class: "subtitle" }, subtitle) : null,
      element("p", { id: `dialog-text-${n}`, class: "text" }, text || ""),
      details ? element("pre", { class: "details" }, details) : null,
      errorCode ? element("p", { class: "code" }, `Error code: ${errorCode}`) : null,
      element("div", { class: "buttons" }, buttons),
    );
    const scrim = element("div", { class: "scrim" }, box);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close(kind === "confirm" ? false : true);
      // Modal: Tab and Shift+Tab go round the dialog's buttons, never to the page behind.
      if (event.key === "Tab") {
        event.preventDefault();
        const at = buttons.indexOf(document.activeElement);
        const next = (at + (event.shiftKey ? buttons.length - 1 : 1) + buttons.length) % buttons.length;
        buttons[at < 0 ? 0 : next].focus();
      }
    });
    $("dialogs").append(scrim);
    ok.focus();
  });
}

function progress(message) {
  const box = $("progress");
  if (message === null) {
    box.hidden = true;
    box.textContent = "";
  } else {
    box.hidden = false;
    box.textContent = message;
    sandbox.log.push({ kind: "progress", text: message });
  }
}

function globalNotification(id, notification) {
  const area = $("global-notifications");
  const existing = area.querySelector(`[data-id="${id}"]`);
  if (existing) existing.remove();
  if (!notification) return;
  sandbox.log.push({ kind: "globalNotification", level: notification.level, text: notification.message });
  const level = { 1: "success", 2: "error", 3: "warning", 4: "info" }[notification.level] || "info";
  const bar = element("div", { class: `notification ${level}`, "data-id": id, role: level === "error" ? "alert" : "status" }, element("span", {}, notification.message));
  if (notification.action) {
    bar.append(element("button", { type: "button", onclick: () => notification.action.eventHandler() }, notification.action.actionLabel));
  }
  if (notification.showCloseButton) bar.append(element("button", { type: "button", "aria-label": t("close"), onclick: () => bar.remove() }, "×"));
  area.append(bar);
}

function formNotification(uniqueId, message, level) {
  const area = $("form-notifications");
  if (!area) return false;
  const existing = area.querySelector(`[data-id="${CSS.escape(String(uniqueId))}"]`);
  if (existing) existing.remove();
  if (message === null || message === undefined) return true;
  // As Dynamics: only these three levels show; another is refused (the method answers false).
  const css = { ERROR: "error", WARNING: "warning", INFO: "info" }[level];
  if (!css) return false;
  sandbox.log.push({ kind: "formNotification", level, text: message, id: uniqueId });
  area.append(element("div", { class: `notification ${css}`, "data-id": uniqueId, "data-level": level, role: css === "error" ? "alert" : "status" }, message));
  return true;
}

// ---- data the page needs from the server ----

async function loadSolution() {
  const response = await fetch("/solution/customizations.xml");
  if (!response.ok) throw new Error(`customizations.xml: HTTP ${response.status}`);
  const doc = new DOMParser().parseFromString(await response.text(), "application/xml");
  if (doc.getElementsByTagName("parsererror").length) throw new Error("customizations.xml is not well-formed XML");
  return readSolution(doc);
}

/** The tables as the sandbox's Dataverse holds them (solution columns, system columns, added columns). */
async function loadTables() {
  const response = await fetch("/__sandbox/tables");
  const tables = await response.json();
  for (const table of Object.values(tables)) table.columns = new Map(Object.entries(table.columns));
  return tables;
}

// ---- command bar ----

let renderBar = async () => {};

async function showCommandBar(solution, entityName, page, parameters, state, system) {
  const bar = $("commandbar");
  state.privileges = await (await fetch("/__sandbox/privileges")).json();
  state.manyToMany = false;
  const buttons = commandBar(solution, entityName, page, { lcid, parameters, state, system, wiring });
  renderBar = async () => {
    const rendered = [];
    for (const b of buttons) {
      const { visible, enabled, error } = await b.evaluate();
      if (!visible) continue;
      const content = [b.image ? element("img", { src: b.image, alt: "", width: 16, height: 16 }) : null, element("span", {}, b.label)];
      rendered.push(
        element(
          "button",
          {
            type: "button",
            class: `command ${b.source}`,
            "data-id": b.id,
            "aria-label": b.label,
            title: error ? `${t("wiring")}: ${error}` : b.tooltip || b.label,
            disabled: !enabled,
            onclick: async () => {
              try {
                await b.run();
              } catch (e) {
                wiring(`${b.id}: ${e.message}`);
                await dialog({ kind: "error", title: t("wiring"), text: e.message });
              }
              await renderBar();
            },
          },
          content,
        ),
      );
    }
    bar.replaceChildren(...rendered);
  };
  await renderBar();
}

// ---- grid ----

async function gridPage(solution, tables, xrm) {
  const table = tables.contact;
  document.title = `${t("contacts")} · Dynamics 365 sandbox`;
  const selected = new Set();
  const pages = [""];
  let pageIndex = 0;
  let rows = [];
  let nextLink = null;
  const main = $("main");

  const gridContext = {
    getName: () => "crmGrid",
    getEntityName: () => "contact",
    refresh: () => load(),
    getGrid: () => ({
      getSelectedRows: () => {
        const list = rows.filter((r) => selected.has(r.contactid)).map((r) => ({ getData: () => ({ getEntity: () => ({ getId: () => `{${r.contactid.toUpperCase()}}`, getEntityName: () => "contact", getPrimaryAttributeValue: () => r.fullname }) }) }));
        return { get: (i) => (i === undefined ? list : list[i]), getLength: () => list.length, forEach: (f) => list.forEach(f) };
      },
      getTotalRecordCount: () => rows.length,
    }),
  };
  sandbox.gridContext = gridContext;

  const ids = () => [...selected].map((id) => `{${id.toUpperCase()}}`);
  const parameters = {
    SelectedControl: () => gridContext,
    PrimaryControl: () => gridContext,
    SelectedControlSelectedItemIds: ids,
    SelectedControlSelectedItemCount: () => selected.size,
    SelectedControlAllItemIds: () => rows.map((r) => `{${r.contactid.toUpperCase()}}`),
    SelectedEntityTypeName: () => "contact",
    PrimaryEntityTypeName: () => "contact",
    FirstSelectedItemId: () => ids()[0] || null,
    UserLcid: () => lcid,
    OrgLcid: () => 1033,
    OrgName: () => "sandbox",
  };
  const state = { formType: 0, selected: 0 };
  const system = {
    "Mscrm.NewRecordFromGrid": async () => navigate("contact", null),
    "Mscrm.RefreshGrid": async () => load(),
    "Mscrm.DeleteSelectedRecord": async () => {
      const { confirmed } = await xrm.Navigation.openConfirmDialog({ text: t("deleteSelectedConfirm") });
      if (!confirmed) return;
      for (const id of [...selected]) await xrm.WebApi.deleteRecord("contact", id);
      await load();
    },
  };

  function columnLabel(name) {
    const column = table.columns.get(name);
    return column ? pick(column.label, lcid) : name;
  }
  function cell(name, row) {
    const column = table.columns.get(name);
    const value = row[name];
    if (value === null || value === undefined) return "";
    if (column && column.options) {
      const option = column.options.find((o) => o.value === value);
      return option ? pick(option.label, lcid) : String(value);
    }
    if (column && column.type === "DateTime") return new Date(value).toLocaleString(lcid === 1045 ? "pl-PL" : "en-GB");
    return String(value);
  }

  async function load() {
    selected.clear();
    const select = ["contactid", ...CONTACT_VIEW].join(",");
    const options = pages[pageIndex] || `?$select=${select}&$orderby=fullname asc`;
    const result = await xrm.WebApi.retrieveMultipleRecords("contact", options, PAGE_SIZE);
    rows = result.entities;
    nextLink = result.nextLink ? result.nextLink.slice(result.nextLink.indexOf("?")) : null;
    render();
    state.selected = 0;
    await renderBar();
  }

  function render() {
    const selectAll = element("input", { type: "checkbox", "aria-label": t("selectAll") });
    selectAll.addEventListener("change", () => {
      for (const r of rows) selectAll.checked ? selected.add(r.contactid) : selected.delete(r.contactid);
      render();
      state.selected = selected.size;
      renderBar();
    });
    selectAll.checked = rows.length > 0 && rows.every((r) => selected.has(r.contactid));
    const head = element("tr", {}, element("th", { scope: "col", class: "check" }, selectAll), CONTACT_VIEW.map((name) => element("th", { scope: "col" }, columnLabel(name))));
    const body = rows.length
      ? rows.map((row) => {
          const box = element("input", { type: "checkbox", "aria-label": `${t("select")} ${row.fullname || row.emailaddress1 || row.contactid}` });
          box.checked = selected.has(row.contactid);
          box.addEventListener("change", () => {
            box.checked ? selected.add(row.contactid) : selected.delete(row.contactid);
            state.selected = selected.size;
            renderBar();
          });
          return element(
            "tr",
            { "data-id": row.contactid, class: selected.has(row.contactid) ? "selected" : null },
            element("td", { class: "check" }, box),
            CONTACT_VIEW.map((name, i) => element("td", {}, i === 0 ? element("a", { href: `/contacts/${row.contactid}` }, cell(name, row) || "—") : cell(name, row))),
          );
        })
      : [element("tr", {}, element("td", { colspan: CONTACT_VIEW.length + 1 }, t("empty")))];
    const pager = element(
      "nav",
      { class: "pager", "aria-label": t("page") },
      element("button", { type: "button", disabled: pageIndex === 0, onclick: () => { pageIndex--; load(); } }, `‹ ${t("previous")}`),
      element("span", {}, `${t("page")} ${pageIndex + 1}`),
      element("button", { type: "button", disabled: !nextLink, onclick: () => { pages[pageIndex + 1] = nextLink; pageIndex++; load(); } }, `${t("next")} ›`),
    );
    main.replaceChildren(element("h1", {}, t("contacts")), element("table", { class: "grid", "aria-label": t("contacts"), "data-page": pageIndex + 1 }, element("thead", {}, head), element("tbody", {}, body)), pager);
  }

  await showCommandBar(solution, "contact", "grid", parameters, state, system);
  await load();
}

// ---- forms ----

/** `[{label, cells: [{column | frame, label, hidden, disabled}]}]` from a FormXml form element. */
function sectionsFromFormXml(form) {
  const sections = [];
  for (const tab of children(path(form, "tabs"), "tab")) {
    for (const column of children(path(tab, "columns"), "column")) {
      for (const section of children(path(column, "sections"), "section")) {
        const label = pick(localized(children(path(section, "labels"), "label")), lcid) || pick(localized(children(path(tab, "labels"), "label")), lcid);
        const cells = [];
        for (const row of children(path(section, "rows"), "row")) {
          for (const cell of children(row, "cell")) {
            const control = child(cell, "control");
            if (!control) continue;
            cells.push({
              id: control.getAttribute("id"),
              column: control.getAttribute("datafieldname"),
              classid: control.getAttribute("classid"),
              url: path(control, "parameters", "Url") ? path(control, "parameters", "Url").textContent.trim() : null,
              passParameters: path(control, "parameters", "PassParameters") ? path(control, "parameters", "PassParameters").textContent.trim() === "true" : false,
              label: pick(localized(children(path(cell, "labels"), "label")), lcid),
              hidden: cell.getAttribute("visible") === "false",
              disabled: control.getAttribute("disabled") === "true",
            });
          }
        }
        sections.push({ label, cells });
      }
    }
  }
  return sections;
}

/** The contact form: the system form's sections, then the solution's columns and consent columns. */
function contactSections(solution, table) {
  const sections = CONTACT_FORM.map((s) => ({ label: pick(s.label, lcid), cells: s.columns.map((c) => ({ id: c, column: c })) }));
  const ours = [...solution.entities.get("contact").columns.keys()];
  const consents = [...table.columns.keys()].filter((c) => c.startsWith("new_consent_"));
  const readOnly = new Set(["new_salesmanagoid", "new_salesmanagoemail", "new_salesmanagosyncedon", "new_salesmanagosyncstatus", "new_salesmanagolasterror"]);
  sections.push({ label: "SALESmanago", cells: [...ours, ...consents].map((c) => ({ id: c, column: c, disabled: readOnly.has(c) })) });
  return sections;
}

function inputFor(column, id) {
  const type = column.type;
  if (type === "Boolean") {
    return element("select", { id }, element("option", { value: "" }, "—"), element("option", { value: "true" }, t("yes")), element("option", { value: "false" }, t("no")));
  }
  if (type === "Picklist") {
    return element("select", { id }, element("option", { value: "" }, "—"), (column.options || []).map((o) => element("option", { value: String(o.value) }, pick(o.label, lcid))));
  }
  if (type === "Memo") return element("textarea", { id, rows: 3, maxlength: column.maxLength });
  if (type === "DateOnly") return element("input", { id, type: "date" });
  if (type === "DateTime") return element("input", { id, type: "datetime-local", step: 1 });
  if (type === "Integer") return element("input", { id, type: "number", step: 1 });
  return element("input", { id, type: "text", maxlength: column.maxLength, autocomplete: "off" });
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function show(input, column, value) {
  if (value === null || value === undefined) input.value = "";
  else if (column.type === "Boolean") input.value = value ? "true" : "false";
  else if (column.type === "DateOnly") input.value = `${value.getFullYear()}-${pad(value.getMonth() + 1)}-${pad(value.getDate())}`;
  else if (column.type === "DateTime") input.value = `${value.getFullYear()}-${pad(value.getMonth() + 1)}-${pad(value.getDate())}T${pad(value.getHours())}:${pad(value.getMinutes())}:${pad(value.getSeconds())}`;
  else input.value = String(value);
}

function read(input, column) {
  const v = input.value;
  if (v === "") return null;
  if (column.type === "Boolean") return v === "true";
  if (column.type === "Picklist" || column.type === "Integer") return Number(v);
  if (column.type === "DateOnly") return new Date(v + "T00:00:00");
  if (column.type === "DateTime") return new Date(v);
  return v;
}

async function formPage(solution, tables, xrm, entityName, id) {
  const table = tables[entityName];
  let row = null;
  if (id) {
    try {
      row = await xrm.WebApi.retrieveRecord(entityName, id);
    } catch (e) {
      $("main").replaceChildren(element("h1", {}, t("notFound")), element("p", {}, e.message));
      return;
    }
  }
  const entity = solution.entities.get(entityName);
  const mainForm = entity && entity.forms.find((f) => f.type === "main");
  const sections = entityName === "contact" ? contactSections(solution, table) : sectionsFromFormXml(mainForm.form);
  const hidden = new Set(sections.flatMap((s) => s.cells.filter((c) => c.hidden).map((c) => c.column)));
  const locked = new Set(sections.flatMap((s) => s.cells.filter((c) => c.disabled).map((c) => c.column)));

  // Web resource controls: an iframe per control, with the parameters Dynamics passes.
  const frames = {};
  const recordId = () => (sandbox.formContext ? sandbox.formContext.data.entity.getId() : "");
  function frameFor(cell) {
    const query = cell.passParameters ? `?typename=${entityName}&id=${encodeURIComponent(recordId())}&orgname=sandbox&userlcid=${lcid}&orglcid=1033` : "";
    const frame = element("iframe", { src: `/WebResources/${cell.url}${query}`, title: cell.label || cell.id, class: "webresource", "data-control": cell.id });
    frames[cell.id] = frame;
    return frame;
  }

  const inputs = new Map();
  const title = element("h1", {}, "");
  const dirty = element("span", { class: "dirty", role: "status" }, "");
  const body = sections.map((section) => {
    const fields = section.cells.map((cell) => {
      if (cell.classid === WEB_RESOURCE_CONTROL) return element("div", { class: "field wide" }, frameFor(cell));
      const column = table.columns.get(cell.column);
      if (!column) {
        wiring(`form cell ${cell.id}: column ${cell.column} is not a column of ${entityName}`);
        return null;
      }
      if (cell.hidden) return null;
      const inputId = `field-${cell.column}`;
      const input = inputFor(column, inputId);
      inputs.set(cell.column, { input, column });
      return element("div", { class: "field", "data-column": cell.column }, element("label", { for: inputId }, cell.label || pick(column.label, lcid)), input);
    });
    return element("section", { class: "form-section", "aria-label": section.label }, element("h2", {}, section.label), element("div", { class: "fields" }, fields));
  });
  // An existing contact's timeline: its SALESmanago activity, loaded after the form is shown.
  const timeline = entityName === "contact" && id ? timelineSection(solution, tables, id) : null;
  $("main").replaceChildren(element("div", { class: "form-header" }, title, dirty), element("div", { id: "form-notifications", role: "region", "aria-label": "Form notifications" }), ...body, ...(timeline ? [timeline.section] : []));

  const ui = {
    label: (labels) => pick(labels, lcid),
    changed(name) {
      const entry = inputs.get(name);
      if (entry) {
        const control = formContext.getControl(name);
        show(entry.input, entry.column, formContext.getAttribute(name).getValue());
        entry.input.disabled = control.getDisabled() || entry.column.readOnly;
        entry.input.closest(".field").hidden = !control.getVisible();
      }
      dirty.textContent = formContext.data.getIsDirty() ? t("unsaved") : "";
    },
    saved(fresh, newId) {
      if (entityName === "contact" && window.location.pathname !== `/contacts/${newId}`) history.replaceState(null, "", `/contacts/${newId}${window.location.search}`);
      for (const name of inputs.keys()) ui.changed(name);
      title.textContent = formContext.data.entity.getPrimaryAttributeValue() || title.textContent;
      sandbox.log.push({ kind: "saved", id: newId });
      renderBar();
    },
    formNotification,
    controlNotification: () => true,
    refreshRibbon: () => renderBar(),
    close: () => navigate(entityName === "contact" ? "contact" : INTEGRATION, undefined),
  };
  const formContext = createFormContext({ xrm, entityName, entitySet: table.entitySet, primaryKey: table.primaryKey, columns: table.columns, row, frames, ui, hidden, locked });
  sandbox.formContext = formContext;
  for (const [name, { input, column }] of inputs) {
    ui.changed(name);
    input.addEventListener("change", () => {
      formContext.getAttribute(name).setValue(read(input, column));
      formContext.getAttribute(name).fireOnChange();
    });
  }
  title.textContent = formContext.data.entity.getPrimaryAttributeValue() || (entityName === "contact" ? t("newContact") : t("integration"));
  document.title = `${title.textContent} · Dynamics 365 sandbox`;

  const state = {
    get formType() {
      return formContext.ui.getFormType();
    },
    selected: 0,
  };
  const parameters = {
    PrimaryControl: () => formContext,
    PrimaryEntityTypeName: () => entityName,
    FirstPrimaryItemId: () => formContext.data.entity.getId(),
    PrimaryItemIds: () => [formContext.data.entity.getId()],
    UserLcid: () => lcid,
    OrgLcid: () => 1033,
    OrgName: () => "sandbox",
  };
  const system = {
    "Mscrm.SavePrimary": () => formContext.data.save().catch(() => {}),
    "Mscrm.NewRecordFromForm": async () => navigate(entityName, null),
    "Mscrm.RefreshForm": () => formContext.data.refresh(false),
    "Mscrm.DeletePrimaryRecord": async () => {
      const { confirmed } = await xrm.Navigation.openConfirmDialog({ text: t("deleteConfirm") });
      if (!confirmed) return;
      await xrm.WebApi.deleteRecord(entityName, formContext.data.entity.getId());
      navigate(entityName === "contact" ? "contact" : INTEGRATION, undefined);
    },
  };

  // Form libraries and OnLoad handlers, as the form XML declares them.
  if (mainForm) {
    for (const library of children(path(mainForm.form, "formLibraries"), "Library")) await loadLibrary(`/WebResources/${library.getAttribute("name")}`);
  }
  await showCommandBar(solution, entityName, "form", parameters, state, system);
  timeline?.load(); // not awaited: the form does not wait for its timeline
  if (mainForm) {
    for (const event of children(path(mainForm.form, "events"), "event")) {
      if (event.getAttribute("name") !== "onload") continue;
      for (const handler of children(path(event, "Handlers"), "Handler")) {
        const name = handler.getAttribute("functionName");
        const f = name.split(".").reduce((at, part) => (at ? at[part] : undefined), window);
        if (typeof f !== "function") {
          wiring(`OnLoad handler ${name} is not a function after loading ${handler.getAttribute("libraryName")}`);
          continue;
        }
        const executionContext = { getFormContext: () => formContext, getEventSource: () => formContext.data.entity, getDepth: () => 0, getContext: () => xrm.Utility.getGlobalContext() };
        try {
          await (handler.getAttribute("passExecutionContext") === "true" ? f(executionContext) : f());
        } catch (e) {
          wiring(`OnLoad handler ${name} failed: ${e.message}`);
        }
      }
    }
  }
}

// ---- the contact's timeline ----

/**
 * The timeline of contact `contactId`: the SALESmanago activity rows regarding it, newest first,
 * each with its kind (the solution's label in the user's language), subject, time and
 * description. Returns `{section, load()}`: `load` reads the rows through the Web API, a page at
 * a time, and never throws (a failure is shown in the section). The section carries
 * `data-timeline` (and `data-state`: loading, ready or failed), each row `data-activity` and
 * `data-kind` (the option value), for tests.
 */
function timelineSection(solution, tables, contactId) {
  const table = tables[ACTIVITY];
  const entity = solution.entities.get(ACTIVITY);
  const kinds = new Map(((entity && entity.columns.get("new_kind")?.options) || []).map((o) => [o.value, pick(o.label, lcid)]));
  const heading = element("h2", { id: "timeline-heading" }, t("timeline"));
  const status = element("p", { class: "timeline-status", role: "status" }, t("loadingTimeline"));
  const list = element("ol", { class: "timeline", "aria-labelledby": "timeline-heading", hidden: true });
  const more = element("button", { type: "button", class: "timeline-more", hidden: true }, t("moreActivity"));
  const section = element("section", { class: "form-section", "aria-labelledby": "timeline-heading", "data-timeline": true, "data-state": "loading" }, heading, status, list, more);
  const when = new Intl.DateTimeFormat(lcid === 1045 ? "pl-PL" : "en-US", { dateStyle: "medium", timeStyle: "short" });

  function item(row) {
    const kind = row.new_kind;
    const occurred = row.actualend ? new Date(row.actualend) : null;
    return element(
      "li",
      { class: "activity", "data-activity": row[table.primaryKey], "data-kind": kind === null || kind === undefined ? "" : String(kind) },
      element("p", { class: "kind" }, kind === null || kind === undefined ? "—" : kinds.get(kind) || String(kind)),
      element("h3", { class: "subject" }, row.subject || "—"),
      occurred ? element("p", { class: "when" }, element("time", { datetime: row.actualend }, when.format(occurred))) : null,
      row.description ? element("p", { class: "description" }, row.description) : null,
    );
  }

  async function page(url) {
    const response = await fetch(url, { headers: { Accept: "application/json", "OData-Version": "4.0", "X-Sandbox-Lcid": String(lcid), Prefer: `odata.maxpagesize=${TIMELINE_PAGE}` } });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try {
        message = (await response.json()).error.message || message;
      } catch {
        // not a Dataverse error body: the status says it
      }
      throw new Error(message);
    }
    return response.json();
  }

  async function show(url) {
    section.setAttribute("data-state", "loading");
    more.disabled = true;
    try {
      const body = await page(url);
      list.append(...body.value.map(item));
      const next = body["@odata.nextLink"] || null;
      more.hidden = !next;
      more.onclick = next ? () => show(next) : null;
      list.hidden = list.children.length === 0;
      status.textContent = list.children.length === 0 ? t("noActivity") : "";
      status.hidden = list.children.length > 0;
      section.setAttribute("data-state", "ready");
    } catch (e) {
      status.hidden = false;
      status.textContent = `${t("timelineFailed")}: ${e.message}`;
      section.setAttribute("data-state", "failed");
    } finally {
      more.disabled = false;
    }
  }

  function load() {
    if (!table) {
      status.textContent = `${t("timelineFailed")}: ${ACTIVITY}`;
      section.setAttribute("data-state", "failed");
      return Promise.resolve();
    }
    const select = [table.primaryKey, "subject", "description", "actualend", "new_kind"].join(",");
    const filter = encodeURIComponent(`_regardingobjectid_value eq ${String(contactId).toLowerCase()}`);
    return show(`${API}${table.entitySet}?$select=${select}&$filter=${filter}&$orderby=${encodeURIComponent("actualend desc")}`);
  }

  return { section, load };
}

function navigate(entityName, id) {
  if (entityName === INTEGRATION) window.location.assign((id === null ? "/integration/new" : "/integration") + window.location.search);
  else if (id === undefined) window.location.assign("/contacts" + window.location.search);
  else window.location.assign(`/contacts/${id ? String(id).replace(/[{}]/g, "").toLowerCase() : "new"}${window.location.search}`);
}

async function main() {
  document.documentElement.lang = lcid === 1045 ? "pl" : "en";
  $("language-label").textContent = t("language");
  $("commandbar").setAttribute("aria-label", t("commandBar"));
  $("badge").textContent = t("sandbox");
  const language = $("language");
  language.value = String(lcid);
  language.addEventListener("change", () => {
    localStorage.setItem("sandbox.lcid", language.value);
    const url = new URL(window.location.href);
    url.searchParams.delete("lcid");
    window.location.assign(url);
  });

  const [solution, tables] = await Promise.all([loadSolution(), loadTables()]);
  // The navigation is the app's site map, as the solution ships it.
  const PAGES = { contact: ["nav-contacts", "/contacts"], [INTEGRATION]: ["nav-integration", "/integration"] };
  $("sitemap").replaceChildren(
    ...solution.siteMap.map(({ entity, titles }) => {
      const [id, href] = PAGES[entity] || [`nav-${entity}`, `/${entity}`];
      return element("a", { id, href }, pick(titles, lcid));
    }),
  );
  const entitySets = Object.fromEntries(Object.entries(tables).map(([name, table]) => [name, table.entitySet]));
  const xrm = createXrm({ lcid, entitySets, ui: { dialog, progress, globalNotification, navigate, label: (l) => pick(l, lcid) } });
  window.Xrm = xrm;

  const route = window.location.pathname.replace(/\/+$/, "");
  if (route === "" || route === "/contacts") {
    $("nav-contacts").setAttribute("aria-current", "page");
    await gridPage(solution, tables, xrm);
  } else if (route.startsWith("/contacts/")) {
    $("nav-contacts").setAttribute("aria-current", "page");
    const id = route.slice("/contacts/".length);
    await formPage(solution, tables, xrm, "contact", id === "new" ? null : id);
  } else if (route === "/integration/new") {
    $("nav-integration").setAttribute("aria-current", "page");
    await formPage(solution, tables, xrm, INTEGRATION, null);
  } else if (route === "/integration") {
    $("nav-integration").setAttribute("aria-current", "page");
    const existing = await xrm.WebApi.retrieveMultipleRecords(INTEGRATION, "?$select=new_salesmanagointegrationid&$orderby=createdon asc&$top=1");
    const record = existing.entities[0];
    await formPage(solution, tables, xrm, INTEGRATION, record ? record.new_salesmanagointegrationid : null);
  } else {
    $("main").replaceChildren(element("h1", {}, "404"));
  }
  sandbox.ready = true;
}

main().catch((e) => {
  sandbox.fatal = e.message;
  console.error(e);
  $("main").replaceChildren(element("h1", {}, t("error")), element("p", { role: "alert" }, e.message));
});
