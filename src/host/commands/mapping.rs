//! The mapping editor on the integration form: the contact's columns from its metadata, the
//! stored rows, a check as the admin types, a preview of what one contact would send, and
//! saving the mapping into the form's `new_fieldmapping`. Every rule is the core's
//! ([`crate::core::mapping::draft`]).

use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::{encode, like_literal, literal, select, selects_lookup};
use crate::core::dataverse::schema::{self, contact, integration};
use crate::core::i18n::{text, Lang, Message};
use crate::core::integration::read_columns;
use crate::core::json::{Map, Value};
use crate::core::mapping::draft::{self, Column, Draft, ScopeDraft, ScopeProblem};
use crate::core::mapping::fields::{FieldMapping, MappingError};
use crate::core::mapping::{to_salesmanago, OutboundOptions, Skip};
use crate::core::salesmanago::contact::UpsertDetails;
use crate::core::scope::Scope;
use crate::object;
use crate::prelude::*;

use super::super::browser::now_ms;
use super::super::dynamics::{read_json, ClientApiError, FormContext, Ui};

/// What the editor opens with: the columns, the stored rows, and what is wrong with the stored
/// mapping, if anything.
pub(crate) async fn open(ui: &Ui, form: &FormContext, lang: Lang) -> Result<Value, ClientApiError> {
    let (attributes, choices, views) = futures_util::future::join3(
        read_json(ui, draft::ATTRIBUTES, ""),
        read_json(ui, draft::CHOICES, ""),
        read_json(ui, draft::VIEWS, ""),
    )
    .await;
    let (attributes, choices) = (attributes?, choices?);
    let columns = draft::columns(&attributes, &choices);
    // Without the views (no privilege to read them), the other scopes stay possible.
    let views = views.map(|answer| draft::views(&answer, &attributes)).unwrap_or_default();
    let views: Vec<Value> = views
        .iter()
        .map(|view| {
            let problem =
                view.problem.as_ref().map(|p| text(&Message::ScopeProblem(ScopeProblem::View(p.clone())), lang));
            object! {"name": view.name.clone(), "problem": problem}
        })
        .collect();
    let stored = form.value(integration::FIELD_MAPPING)?;
    let (rows, problem) = match FieldMapping::parse(stored.as_str().unwrap_or_default()) {
        Ok(mapping) => (draft::drafts(&mapping), None),
        Err(error) => (Vec::new(), Some(mapping_problem(&error, lang))),
    };
    Ok(object! {
        "columns": Value::Array(columns.iter().map(Column::to_json).collect()),
        "rows": Value::Array(rows.iter().map(Draft::to_json).collect()),
        "problem": problem,
        "views": Value::Array(views),
        "scope": ScopeDraft::from_record(&scope_record(form)?).to_json(),
    })
}

/// The editor's check of `rows` over `columns`: `{ok, entry, problem}`.
pub(crate) fn check(rows: &Value, columns: &Value, lang: Lang) -> Value {
    match built(rows, columns, lang) {
        Ok(_) => object! {"ok": true, "entry": Value::Null, "problem": Value::Null},
        Err(error) => {
            let entry = match &error {
                MappingError::Entry { number, .. } => Value::from(*number as u64),
                _ => Value::Null,
            };
            object! {"ok": false, "entry": entry, "problem": mapping_problem(&error, lang)}
        }
    }
}

/// What one contact (the first whose e-mail is `who`, or whose full name starts with it) would
/// send under `rows`: `{contact, sent, warnings}`.
pub(crate) async fn preview(ui: &Ui, rows: &Value, columns: &Value, who: &str, lang: Lang) -> Result<Value, String> {
    let mapping = built(rows, columns, lang).map_err(|e| mapping_problem(&e, lang))?;
    let failed = |e: ClientApiError| text(&Message::Dataverse { detail: e.message }, lang);
    let consents = schema::consent_columns(&read_json(ui, schema::CONTACT_ATTRIBUTES, "").await.map_err(failed)?);
    let read = read_columns(&consents, &mapping, &Scope::default());
    let who = who.trim();
    let filter =
        format!("{} eq {} or startswith({}, {})", contact::EMAIL, literal(who), contact::FULL_NAME, like_literal(who));
    let query = format!("{}{}&$filter={}&$top=1", contact::ENTITY_SET, select(&read), encode(&filter));
    let prefer = if selects_lookup(&query) {
        r#"odata.include-annotations="OData.Community.Display.V1.FormattedValue""#
    } else {
        ""
    };
    let answer = read_json(ui, &query, prefer).await.map_err(failed)?;
    let Some(row) = answer["value"].as_array().and_then(|rows| rows.first()).and_then(Value::as_object) else {
        return Err(text(&Message::PreviewNoContact { who: who.to_owned() }, lang));
    };
    let row = ContactRow::from_json(row);
    let name = row.get(contact::FULL_NAME).or(row.get(contact::EMAIL)).unwrap_or_default().to_owned();
    let options = OutboundOptions { now_ms: now_ms(), ..OutboundOptions::default() };
    match to_salesmanago(&row, &options, &mapping) {
        Ok(outbound) => {
            let warnings: Vec<Value> =
                outbound.warnings.into_iter().map(|w| text(&Message::Warning(w), lang).into()).collect();
            Ok(object! {"contact": name, "sent": sent(&outbound.details), "warnings": warnings})
        }
        Err(skip) => Err(skipped(skip, lang)),
    }
}

/// Saves `rows` as the record's mapping (none when there are none) and `scope` as its scope
/// (a view's FetchXML read again and judged now), and the form with them; the text to show.
pub(crate) async fn save(
    ui: &Ui,
    form: &FormContext,
    rows: &Value,
    columns: &Value,
    scope: &Value,
    lang: Lang,
) -> Result<String, String> {
    let mapping = built(rows, columns, lang).map_err(|e| mapping_problem(&e, lang))?;
    let failed = |e: ClientApiError| text(&Message::Dataverse { detail: e.message }, lang);
    let scope = ScopeDraft::of(scope);
    let views = match scope.rule.as_str() {
        "view" => {
            let (answer, attributes) =
                futures_util::future::try_join(read_json(ui, draft::VIEWS, ""), read_json(ui, draft::ATTRIBUTES, ""))
                    .await
                    .map_err(failed)?;
            draft::views(&answer, &attributes)
        }
        _ => Vec::new(),
    };
    let record = scope.record(&Column::list(columns), &views).map_err(|p| text(&Message::ScopeProblem(p), lang))?;
    form.set_value(integration::FIELD_MAPPING, &mapping.stored()).map_err(failed)?;
    for (column, value) in record.iter() {
        form.set_value(column, value).map_err(failed)?;
    }
    form.save().await.map_err(failed)?;
    Ok(text(&Message::MappingSaved { entries: mapping.entries.len() }, lang))
}

/// The scope's columns as the form holds them.
fn scope_record(form: &FormContext) -> Result<Map, ClientApiError> {
    let columns =
        [integration::SYNC_SCOPE, integration::SCOPE_COLUMN, integration::SCOPE_VIEW, integration::SCOPE_LEAVING];
    let mut record = Map::new();
    for column in columns {
        record.insert(column.into(), form.value(column)?);
    }
    Ok(record)
}

fn built(rows: &Value, columns: &Value, lang: Lang) -> Result<FieldMapping, MappingError> {
    let rows = Draft::list(rows)?;
    draft::mapping(&rows, &Column::list(columns), lang.code())
}

fn mapping_problem(error: &MappingError, lang: Lang) -> String {
    text(&Message::MappingProblem(error.clone()), lang)
}

fn skipped(skip: Skip, lang: Lang) -> String {
    text(&Message::Skipped(skip), lang)
}

/// The upsert as SALESmanago would receive it.
fn sent(details: &UpsertDetails) -> Value {
    use crate::core::json::ToJson;
    details.to_json()
}
