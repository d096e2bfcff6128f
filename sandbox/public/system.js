// What Dynamics itself brings and the solution does not ship: the system contact table's
// standard columns that the integration reads, the layout of its main form, the built-in
// command-bar buttons, and the sandbox's own texts. Everything the solution adds comes from
// customizations.xml instead (see solution.js).

export const L = (en, pl) => ({ 1033: en, 1045: pl });

/** Standard contact columns (a subset of the system table), as Web API metadata. */
export const CONTACT_COLUMNS = [
  { logicalName: "fullname", type: "String", maxLength: 160, label: L("Full Name", "Imię i nazwisko"), readOnly: true },
  { logicalName: "firstname", type: "String", maxLength: 50, label: L("First Name", "Imię") },
  { logicalName: "lastname", type: "String", maxLength: 50, label: L("Last Name", "Nazwisko") },
  { logicalName: "emailaddress1", type: "String", maxLength: 100, label: L("Email", "Adres e-mail") },
  { logicalName: "mobilephone", type: "String", maxLength: 50, label: L("Mobile Phone", "Telefon komórkowy") },
  { logicalName: "telephone1", type: "String", maxLength: 50, label: L("Business Phone", "Telefon służbowy") },
  { logicalName: "fax", type: "String", maxLength: 50, label: L("Fax", "Faks") },
  { logicalName: "birthdate", type: "DateOnly", label: L("Birthday", "Data urodzenia") },
  { logicalName: "address1_line1", type: "String", maxLength: 250, label: L("Street 1", "Ulica 1") },
  { logicalName: "address1_line2", type: "String", maxLength: 250, label: L("Street 2", "Ulica 2") },
  { logicalName: "address1_line3", type: "String", maxLength: 250, label: L("Street 3", "Ulica 3") },
  { logicalName: "address1_city", type: "String", maxLength: 80, label: L("City", "Miasto") },
  { logicalName: "address1_postalcode", type: "String", maxLength: 20, label: L("ZIP/Postal Code", "Kod pocztowy") },
  { logicalName: "address1_country", type: "String", maxLength: 80, label: L("Country/Region", "Kraj/region") },
  // Its options as Dynamics labels them (not Yes/No).
  {
    logicalName: "donotbulkemail",
    type: "Boolean",
    label: L("Do not allow Bulk Emails", "Nie zezwalaj na masowe wiadomości e-mail"),
    options: [
      { value: 1, label: L("Do Not Allow", "Nie zezwalaj") },
      { value: 0, label: L("Allow", "Zezwalaj") },
    ],
  },
  // Standard columns an admin maps to SALESmanago (issue 26): text, a choice, a number.
  { logicalName: "jobtitle", type: "String", maxLength: 100, label: L("Job Title", "Stanowisko") },
  {
    logicalName: "preferredcontactmethodcode",
    type: "Picklist",
    label: L("Preferred Method of Contact", "Preferowana metoda kontaktu"),
    options: [
      { value: 1, label: L("Any", "Dowolna") },
      { value: 2, label: L("Email", "E-mail") },
      { value: 3, label: L("Phone", "Telefon") },
      { value: 4, label: L("Fax", "Faks") },
      { value: 5, label: L("Mail", "Poczta") },
    ],
  },
  { logicalName: "numberofchildren", type: "Integer", label: L("No. of Children", "Liczba dzieci") },
];

/** The consent column the demo data adds, as an admin would (the solution ships none). */
export const DEMO_CONSENT_COLUMN = {
  logicalName: "new_consent_marketing",
  type: "Boolean",
  label: L("Marketing consent", "Zgoda marketingowa"),
};

/** Custom columns the demo data adds, as an admin would: a customer number to map to a
 * SALESmanago detail, and a Yes/No column to limit the sync scope by. */
export const DEMO_CUSTOM_COLUMNS = [
  { logicalName: "new_customerno", type: "String", maxLength: 20, label: L("Customer number", "Numer klienta") },
  { logicalName: "new_marketingcontact", type: "Boolean", label: L("Marketing contact", "Kontakt marketingowy") },
];

/** Views of contacts an admin made, as `savedquery` rows: one the sync scope can be, one it
 * cannot (a condition on a related table). */
export const DEMO_VIEWS = [
  {
    savedqueryid: "00000000-0000-4000-8000-5a7ed0000001",
    name: "Marketing contacts",
    returnedtypecode: "contact",
    fetchxml:
      '<fetch version="1.0" mapping="logical"><entity name="contact"><attribute name="fullname"/><order attribute="fullname" descending="false"/><filter type="and"><condition attribute="new_marketingcontact" operator="eq" value="1"/></filter></entity></fetch>',
  },
  {
    savedqueryid: "00000000-0000-4000-8000-5a7ed0000002",
    name: "Contacts of partner accounts",
    returnedtypecode: "contact",
    fetchxml:
      '<fetch version="1.0" mapping="logical"><entity name="contact"><attribute name="fullname"/><link-entity name="account" from="accountid" to="parentcustomerid"><filter><condition attribute="customertypecode" operator="eq" value="3"/></filter></link-entity></entity></fetch>',
  },
];

/** The system contact form's sections; the solution's and consent columns follow in their own section. */
export const CONTACT_FORM = [
  { label: L("Contact", "Kontakt"), columns: ["firstname", "lastname", "emailaddress1", "mobilephone", "telephone1", "fax", "birthdate"] },
  { label: L("Address", "Adres"), columns: ["address1_line1", "address1_line2", "address1_line3", "address1_city", "address1_postalcode", "address1_country"] },
  { label: L("Contact preferences", "Preferencje kontaktu"), columns: ["donotbulkemail", "preferredcontactmethodcode"] },
  { label: L("Details", "Szczegóły"), columns: ["jobtitle", "numberofchildren", "new_customerno", "new_marketingcontact"] },
];

/** The contact grid's columns (the system "Active Contacts" view, plus the solution's status). */
export const CONTACT_VIEW = ["fullname", "emailaddress1", "mobilephone", "address1_city", "new_salesmanagoid", "new_salesmanagosyncstatus", "new_salesmanagosyncedon"];

/**
 * The built-in buttons, by page. A CommandDefinition of the same id in the solution replaces
 * the built-in behaviour, as a command override does in Dynamics.
 */
export const SYSTEM_BUTTONS = {
  form: [
    { command: "Mscrm.SavePrimary", label: L("Save", "Zapisz"), sequence: 10, enable: "always" },
    { command: "Mscrm.NewRecordFromForm", label: L("New", "Nowy"), sequence: 20, enable: "always" },
    { command: "Mscrm.DeletePrimaryRecord", label: L("Delete", "Usuń"), sequence: 30, enable: "existing" },
    { command: "Mscrm.RefreshForm", label: L("Refresh", "Odśwież"), sequence: 40, enable: "existing" },
  ],
  grid: [
    { command: "Mscrm.NewRecordFromGrid", label: L("New", "Nowy"), sequence: 10, enable: "always" },
    { command: "Mscrm.DeleteSelectedRecord", label: L("Delete", "Usuń"), sequence: 20, enable: "selection" },
    { command: "Mscrm.RefreshGrid", label: L("Refresh", "Odśwież"), sequence: 30, enable: "always" },
  ],
};

/** The sandbox's own texts. */
export const TEXT = {
  contacts: L("Contacts", "Kontakty"),
  integration: L("SALESmanago Integration", "Integracja z SALESmanago"),
  language: L("Language", "Język"),
  commandBar: L("Command bar", "Pasek poleceń"),
  select: L("Select", "Zaznacz"),
  selectAll: L("Select all rows", "Zaznacz wszystkie wiersze"),
  previous: L("Previous page", "Poprzednia strona"),
  next: L("Next page", "Następna strona"),
  page: L("Page", "Strona"),
  ok: L("OK", "OK"),
  cancel: L("Cancel", "Anuluj"),
  confirm: L("Confirm", "Potwierdź"),
  error: L("Error", "Błąd"),
  close: L("Close", "Zamknij"),
  newContact: L("New contact", "Nowy kontakt"),
  unsaved: L("Unsaved changes", "Niezapisane zmiany"),
  saved: L("Saved", "Zapisano"),
  deleteConfirm: L("Delete this record? This cannot be undone.", "Usunąć ten rekord? Tej operacji nie można cofnąć."),
  deleteSelectedConfirm: L("Delete the selected records? This cannot be undone.", "Usunąć zaznaczone rekordy? Tej operacji nie można cofnąć."),
  notFound: L("The record does not exist (it may have been deleted).", "Rekord nie istnieje (mógł zostać usunięty)."),
  sandbox: L("Sandbox: a local stand-in for Dynamics 365", "Piaskownica: lokalny zamiennik Dynamics 365"),
  yes: L("Yes", "Tak"),
  no: L("No", "Nie"),
  empty: L("No records", "Brak rekordów"),
  wiring: L("Sandbox: the solution's command wiring is broken", "Piaskownica: polecenie rozwiązania jest źle podłączone"),
  timeline: L("Timeline", "Oś czasu"),
  noActivity: L("No activity yet", "Brak aktywności"),
  loadingTimeline: L("Loading the timeline…", "Wczytywanie osi czasu…"),
  timelineFailed: L("The timeline could not be loaded", "Nie udało się wczytać osi czasu"),
  moreActivity: L("Show more activity", "Pokaż więcej aktywności"),
};
