// The `Xrm` client API as far as the web resources use it, true to the @types/xrm signatures.
// Xrm.WebApi goes over HTTP to the sandbox's Dataverse endpoint (/api/data/v9.2/), as in Dataverse;
// dialogs, notifications and the progress indicator are drawn by `ui` (see shell.js).

const API = "/api/data/v9.2/";
// The caching token Dynamics puts in web resource addresses (getWebResourceUrl).
const CACHE_TOKEN = "638700000000000000";

/** A Web API failure as Xrm.WebApi reports it: `{errorCode, message, code}`. */
async function apiError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: described by the status below
  }
  const hex = body && body.error && body.error.code;
  const errorCode = hex && /^0x[0-9a-f]+$/i.test(hex) ? Number(hex) : response.status;
  const message = (body && body.error && body.error.message) || `HTTP ${response.status} ${response.statusText}`;
  const error = new Error(message);
  error.errorCode = errorCode;
  error.code = errorCode;
  error.status = response.status;
  error.retryAfter = Number(response.headers.get("Retry-After")) || undefined;
  return error;
}

function bare(id) {
  return String(id).replace(/[{}]/g, "").toLowerCase();
}

/** Creates the global `Xrm`. `entitySets` maps logical names to Web API entity set names. */
export function createXrm({ lcid, ui, entitySets, userId = "00000000-0000-0000-0000-0000000000aa", userName = "Sandbox User" }) {
  const origin = window.location.origin;

  function setOf(entityName) {
    const set = entitySets[entityName];
    if (!set) throw new Error(`Xrm.WebApi: unknown table "${entityName}"`);
    return set;
  }

  async function send(method, url, body, headers = {}) {
    const response = await fetch(url.startsWith("http") ? url : API + url, {
      method,
      headers: { Accept: "application/json", "OData-Version": "4.0", "X-Sandbox-Lcid": String(lcid), ...(body ? { "Content-Type": "application/json" } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw await apiError(response);
    return response;
  }

  function query(options) {
    if (!options) return "";
    return options.startsWith("?") ? options : "?" + options;
  }

  const WebApi = {
    async retrieveRecord(entityLogicalName, id, options) {
      const response = await send("GET", `${setOf(entityLogicalName)}(${bare(id)})${query(options)}`);
      return response.json();
    },
    async retrieveMultipleRecords(entityLogicalName, options, maxPageSize) {
      const headers = maxPageSize ? { Prefer: `odata.maxpagesize=${maxPageSize}` } : {};
      const response = await send("GET", setOf(entityLogicalName) + query(options), null, headers);
      const body = await response.json();
      const result = { entities: body.value };
      if (body["@odata.nextLink"]) result.nextLink = body["@odata.nextLink"];
      return result;
    },
    async createRecord(entityLogicalName, data) {
      const response = await send("POST", setOf(entityLogicalName), data);
      const location = response.headers.get("OData-EntityId") || "";
      const match = location.match(/\(([0-9a-f-]{36})\)$/i);
      return { entityType: entityLogicalName, id: match ? match[1] : "" };
    },
    async updateRecord(entityLogicalName, id, data) {
      await send("PATCH", `${setOf(entityLogicalName)}(${bare(id)})`, data, { "If-Match": "*" });
      return { entityType: entityLogicalName, id: bare(id) };
    },
    async deleteRecord(entityLogicalName, id) {
      await send("DELETE", `${setOf(entityLogicalName)}(${bare(id)})`);
      return { entityType: entityLogicalName, id: bare(id) };
    },
    isAvailableOffline() {
      return false;
    },
  };

  /** Metadata of `entityName` with the attributes named (none when `attributes` is omitted, as in Unified Interface). */
  async function getEntityMetadata(entityName, attributes) {
    const response = await send(
      "GET",
      `EntityDefinitions(LogicalName='${entityName}')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute&$expand=Attributes($select=LogicalName,AttributeType,DisplayName)`,
    );
    const body = await response.json();
    const wanted = new Set((attributes || []).map((a) => a.toLowerCase()));
    const list = (body.Attributes || []).filter((a) => wanted.has(a.LogicalName));
    const byName = new Map(list.map((a) => [a.LogicalName, a]));
    return {
      LogicalName: body.LogicalName,
      EntitySetName: body.EntitySetName,
      PrimaryIdAttribute: body.PrimaryIdAttribute,
      PrimaryNameAttribute: body.PrimaryNameAttribute,
      Attributes: {
        get: (key) => (typeof key === "number" ? list[key] : byName.get(key)) || null,
        getAll: () => list.slice(),
        getByIndex: (i) => list[i] || null,
        getByName: (name) => byName.get(name) || null,
        getLength: () => list.length,
        forEach: (f) => list.forEach(f),
      },
    };
  }

  const Utility = {
    showProgressIndicator(message) {
      ui.progress(message);
    },
    closeProgressIndicator() {
      ui.progress(null);
    },
    getEntityMetadata,
    getGlobalContext() {
      return {
        userSettings: { languageId: lcid, userId: `{${userId.toUpperCase()}}`, userName, securityRoles: [] },
        organizationSettings: { languageId: 1033, uniqueName: "sandbox", organizationId: "{00000000-0000-0000-0000-0000000000bb}" },
        getClientUrl: () => origin,
        // Relative, with a caching token, as Dynamics answers (the sandbox serves that path too).
        getWebResourceUrl: (name) => `/%7B${CACHE_TOKEN}%7D/WebResources/${name}`,
        getCurrentAppUrl: () => origin,
        getVersion: () => "9.2.0.0",
        isOnPremises: () => false,
      };
    },
    getResourceString(_webResourceName, key) {
      return key;
    },
  };

  const Navigation = {
    openAlertDialog(alertStrings) {
      return ui.dialog({ kind: "alert", title: alertStrings.title, text: alertStrings.text, confirm: alertStrings.confirmButtonLabel }).then(() => ({}));
    },
    openConfirmDialog(confirmStrings) {
      return ui
        .dialog({ kind: "confirm", title: confirmStrings.title, subtitle: confirmStrings.subtitle, text: confirmStrings.text, confirm: confirmStrings.confirmButtonLabel, cancel: confirmStrings.cancelButtonLabel })
        .then((confirmed) => ({ confirmed }));
    },
    openErrorDialog(errorOptions) {
      return ui.dialog({ kind: "error", text: errorOptions.message, details: errorOptions.details, errorCode: errorOptions.errorCode }).then(() => ({}));
    },
    openForm(options) {
      ui.navigate(options.entityName, options.entityId);
      return Promise.resolve({ savedEntityReference: [] });
    },
  };

  let notificationId = 0;
  const App = {
    addGlobalNotification(notification) {
      if (notification.type !== 2) return Promise.reject(new Error("Only notifications of type 2 are supported"));
      const id = `00000000-0000-0000-0000-${String(++notificationId).padStart(12, "0")}`;
      ui.globalNotification(id, notification);
      return Promise.resolve(id);
    },
    clearGlobalNotification(id) {
      ui.globalNotification(id, null);
      return Promise.resolve();
    },
  };

  return { WebApi, Utility, Navigation, App };
}
