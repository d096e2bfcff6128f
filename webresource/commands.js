/*
 * SALESmanago for Dynamics 365 @@VERSION@@: command-bar and form entry points
 * (web resource new_/salesmanago/commands.js).
 *
 * The solution's ribbon and form XML call the functions under the one global `SalesManago`.
 * Each forwards to an engine, which this script loads on first use, in the user's language
 * (`.pl.js` for Polish, `.en.js` for every other): the commands on a contact or a few
 * (`contact.*`) to new_/salesmanago/engine.<lang>.js, the exports over many contacts
 * (`job.export*`: the grid's and the integration record's) to
 * new_/salesmanago/engine-export.<lang>.js, each pull to its own (`job.pullConsents` to
 * new_/salesmanago/engine-pull-consents.<lang>.js, …), and the integration record's other
 * commands to new_/salesmanago/engine-admin.<lang>.js, the engine of its credential page and
 * mapping editor.
 * A contact form, which loads its engine each time it opens, never loads a job nor the other
 * language's text; the integration form loads a job only when a button starts it, and an export
 * no pull, a pull no export nor another pull.
 * Decisions and user text live in the engines; the only text here is the fallback shown when
 * an engine itself cannot start.
 */
(function (root) {
  "use strict";

  var VERSION = "@@VERSION@@";
  // Each engine's file without its language and the one global it defines, in either language
  // (core::command::Engine).
  var ENGINES = {
    contact: { stem: "engine", global: "SalesManagoEngine", loading: null },
    admin: { stem: "engine-admin", global: "SalesManagoAdminEngine", loading: null },
    exports: { stem: "engine-export", global: "SalesManagoExportEngine", loading: null },
    pullConsents: { stem: "engine-pull-consents", global: "SalesManagoPullConsentsEngine", loading: null },
    pullChanges: { stem: "engine-pull-changes", global: "SalesManagoPullChangesEngine", loading: null },
    pullActivity: { stem: "engine-pull-activity", global: "SalesManagoPullActivityEngine", loading: null }
  };

  // The URL this script was loaded from, when the browser tells (ribbon libraries may be
  // evaluated without a current script).
  var self = root.document && root.document.currentScript ? root.document.currentScript.src : null;

  function xrm() {
    return root.Xrm || (root.parent && root.parent !== root ? root.parent.Xrm : undefined);
  }

  /** The user's language (LCID) as Dynamics reports it; 1033 when it cannot tell. */
  function lcid() {
    try {
      return xrm().Utility.getGlobalContext().userSettings.languageId || 1033;
    } catch (e) {
      return 1033;
    }
  }

  /** The file of `engine` in the user's language (as core::i18n::Lang::from_lcid: 1045 is Polish). */
  function engineFile(engine) {
    return engine.stem + (lcid() === 1045 ? ".pl.js" : ".en.js");
  }

  /** The engine that runs command `name` (by its name, as core::command::Command::engine). */
  function engineOf(name) {
    var text = String(name);
    if (/^contact\./.test(text)) {
      return ENGINES.contact;
    }
    if (/^job\.export/.test(text)) {
      return ENGINES.exports;
    }
    var pull = /^job\.(pull(?:Consents|Changes|Activity))$/.exec(text);
    return pull ? ENGINES[pull[1]] : ENGINES.admin;
  }

  /**
   * Where an engine's script is: beside this script, else where Dynamics says, with its caching
   * token (getWebResourceUrl; an address made by hand would not be cached).
   */
  function engineUrl(engine) {
    if (self && /commands\.js(\?|$)/.test(self)) {
      return self.replace(/commands\.js(\?.*)?$/, engineFile(engine) + "?ver=" + VERSION);
    }
    return xrm().Utility.getGlobalContext().getWebResourceUrl("new_/salesmanago/" + engineFile(engine));
  }

  /**
   * Resolves to the exports of the engine that runs command `name` (the contact pages' when no
   * name is given), loading its script on first use (once per window).
   */
  function loadEngine(name) {
    var engine = name ? engineOf(name) : ENGINES.contact;
    if (!engine.loading) {
      engine.loading = new Promise(function (resolve, reject) {
        if (root[engine.global] && root[engine.global].version === VERSION) {
          resolve();
          return;
        }
        var script = root.document.createElement("script");
        script.src = engineUrl(engine);
        script.onload = function () {
          resolve();
        };
        script.onerror = function () {
          reject(new Error(engineFile(engine) + " could not be loaded from " + script.src));
        };
        root.document.head.appendChild(script);
      })
        .then(function () {
          var loaded = root[engine.global];
          if (!loaded) {
            throw new Error(engineFile(engine) + " loaded but did not define " + engine.global);
          }
          // A cache or a half-finished publish can serve another version's engine.
          if (loaded.version !== VERSION) {
            throw new Error(engineFile(engine) + " is version " + loaded.version + ", commands.js " + VERSION);
          }
          return loaded.ready();
        })
        .catch(function (error) {
          engine.loading = null;
          throw error;
        });
    }
    return engine.loading;
  }

  /** The text shown when the engine cannot start, so it cannot come from the engine. */
  function engineFailure(error) {
    var reason = error && error.message ? error.message : String(error);
    if (lcid() === 1045) {
      return (
        "Nie udało się uruchomić silnika SALESmanago (" + reason + "). " +
        "Jeśli organizacja stosuje ścisłą politykę Content Security Policy, odblokuj WebAssembly " +
        "albo poproś administratora o ponowne zaimportowanie rozwiązania."
      );
    }
    return (
      "The SALESmanago engine could not start (" + reason + "). " +
      "If your organisation enforces a strict Content Security Policy, allow WebAssembly, " +
      "or ask your administrator to import the solution again."
    );
  }

  function showAlert(text) {
    var navigation = xrm() && xrm().Navigation;
    return navigation ? navigation.openAlertDialog({ text: text }) : Promise.resolve();
  }

  function showError(text) {
    var navigation = xrm() && xrm().Navigation;
    return navigation ? navigation.openErrorDialog({ message: text }) : Promise.resolve();
  }

  /** A record id as Dynamics passes it (`{GUID}`), as the Web API takes it. */
  function bareId(id) {
    return String(id).replace(/[{}]/g, "").toLowerCase();
  }

  /**
   * Runs engine command `name` with the button's parameters (`primaryControl`, `selectedIds`,
   * `selectedControl`); resolves once the user has seen the outcome.
   */
  function context(parameters) {
    var out = { lcid: lcid(), xrm: xrm() };
    for (var key in parameters || {}) {
      out[key] = parameters[key];
    }
    return out;
  }

  /** Offers the file a job produced (the contacts that did not go), if the user wants it. */
  function offerDownload(download) {
    var navigation = xrm() && xrm().Navigation;
    if (!download || !navigation) {
      return Promise.resolve();
    }
    return navigation.openConfirmDialog({ text: download.prompt }).then(function (answer) {
      if (!answer || !answer.confirmed) {
        return;
      }
      var url = URL.createObjectURL(new Blob(["\ufeff" + download.text], { type: "text/csv;charset=utf-8" }));
      var link = root.document.createElement("a");
      link.href = url;
      link.download = download.name;
      root.document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () {
        URL.revokeObjectURL(url);
      }, 10000);
    });
  }

  function run(name, parameters) {
    return loadEngine(name).then(
      function (engine) {
        return engine.runCommand(name, context(parameters)).then(
          function (result) {
            return showAlert(result.message).then(function () {
              if (result.closeForm && parameters && parameters.primaryControl) {
                parameters.primaryControl.ui.close();
              }
              return offerDownload(result.download);
            });
          },
          function (e) {
            return showError(e && e.message ? e.message : String(e));
          }
        );
      },
      function (e) {
        return showError(engineFailure(e));
      }
    );
  }

  /** Runs engine command `name` without dialogs: the engine reports on the form itself. */
  function runQuietly(name, parameters) {
    return loadEngine(name)
      .then(function (engine) {
        return engine.runCommand(name, context(parameters));
      })
      .catch(function () {
        // Reported by the engine as a form notification, or not worth a dialog.
      });
  }

  // Contact forms whose save handlers are registered (once per form).
  var registered = typeof WeakSet === "function" ? new WeakSet() : null;

  /**
   * Enable rule of the contact form's buttons, evaluated when the form's command bar shows:
   * registers the save handlers once per form and starts the quiet check against SALESmanago.
   * Returns true at once; the engine loads in the background.
   */
  function onFormReady(formContext) {
    if (!formContext || !formContext.data || !registered || registered.has(formContext)) {
      return true;
    }
    registered.add(formContext);
    var changed = [];
    formContext.data.entity.addOnSave(function () {
      changed = formContext.getAttribute().filter(function (a) {
        return a.getIsDirty();
      }).map(function (a) {
        return a.getName();
      });
    });
    formContext.data.entity.addOnPostSave(function (event) {
      var args = event.getEventArgs();
      if (args && typeof args.getIsSaveSuccess === "function" && !args.getIsSaveSuccess()) {
        return;
      }
      return runQuietly("contact.saved", { primaryControl: formContext, changed: changed });
    });
    runQuietly("contact.opened", { primaryControl: formContext });
    return true;
  }

  /** A form button running engine command `name` (CrmParameter PrimaryControl). */
  function formCommand(name) {
    return function (primaryControl) {
      return run(name, { primaryControl: primaryControl });
    };
  }

  /** A grid button running engine command `name` (SelectedControlSelectedItemIds, SelectedControl). */
  function gridCommand(name) {
    return function (selectedIds, selectedControl) {
      return run(name, { selectedIds: (selectedIds || []).map(bareId), selectedControl: selectedControl });
    };
  }

  root.SalesManago = Object.freeze({
    version: VERSION,
    loadEngine: loadEngine,
    run: run,
    Contact: Object.freeze({
      /** Contact form: "Fetch from SALESmanago" (CrmParameter PrimaryControl). */
      fetch: formCommand("contact.fetch"),
      /** Contact form: "Send to SALESmanago" (CrmParameter PrimaryControl). */
      send: formCommand("contact.send"),
      /** Contact grid: "Export to SALESmanago" (SelectedControlSelectedItemIds, SelectedControl). */
      exportSelected: gridCommand("job.exportSelected"),
      /** Contact form and grid "Delete" (overrides the system command): SALESmanago, then Dynamics. */
      delete: formCommand("contact.delete"),
      deleteSelected: gridCommand("contact.delete"),
      /** Enable rule of the contact form's buttons (CrmParameter PrimaryControl). */
      onFormReady: onFormReady
    }),
    Integration: Object.freeze({
      /** Integration form OnLoad: hands Xrm and the formContext to the credential page and the mapping editor. */
      onLoad: function (executionContext) {
        var formContext = executionContext.getFormContext();
        if (formContext.ui && formContext.ui.getFormType && formContext.ui.getFormType() === 1) {
          // There is one integration record: a new one is refused while another exists.
          var refused = false;
          formContext.data.entity.addOnSave(function (event) {
            if (refused) {
              event.getEventArgs().preventDefault();
            }
          });
          loadEngine("integration.opened")
            .then(function (engine) {
              return engine.runCommand("integration.opened", context({ primaryControl: formContext }));
            })
            .catch(function (e) {
              refused = !!(e && e.kind === "integrationExists");
            });
        }
        // The credential page and the mapping editor get Xrm and the formContext.
        var pages = ["WebResource_credentials", "WebResource_mapping"].map(function (name) {
          var control = formContext.getControl(name);
          if (!control) {
            return Promise.resolve();
          }
          return control.getContentWindow().then(function (page) {
            if (page && typeof page.setClientApiContext === "function") {
              page.setClientApiContext(xrm(), formContext);
            }
          });
        });
        return Promise.all(pages);
      },
      /** Integration form: "Test connection". */
      testConnection: formCommand("integration.testConnection"),
      /** Integration form: "Export all contacts". */
      exportAll: formCommand("job.exportAll"),
      /** Integration form: "Export changes". */
      exportChanges: formCommand("job.exportChanges"),
      /** Integration form: "Pull consents". */
      pullConsents: formCommand("job.pullConsents"),
      /** Integration form: "Pull changes". */
      pullChanges: formCommand("job.pullChanges"),
      /** Integration form: "Pull activity": SALESmanago activity onto the contacts' timelines. */
      pullActivity: formCommand("job.pullActivity")
    })
  });
})(window);
