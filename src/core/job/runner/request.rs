//! What a job asks of the services and what comes back: the requests, the SALESmanago calls,
//! their outputs and failures, and the reading of the host's reply to each (by the request's
//! own kind: a reply never yields another request's output).

use crate::core::dataverse::error::{self, DvError};
use crate::core::dataverse::query;
use crate::core::i18n::{Message, Service};
use crate::core::json::{Map, Value};
use crate::core::retry::{Failed, RetryPolicy};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::export::{ExportConsents, JobStatus};
use crate::core::salesmanago::operation::{BatchOutcome, BatchUpsert, Lookup, ModifiedContacts, ModifiedPage};
use crate::core::salesmanago::operation::{Delete, HasContact, SetSubscription, Upsert};
use crate::core::salesmanago::relay::Refusal;
use crate::core::salesmanago::{Client, SmError};
use crate::prelude::*;

#[cfg(feature = "jobs")]
use super::super::lease::Purpose;
use super::super::Reply;
#[cfg(feature = "jobs")]
use super::guarded::Guarded;

/// A request a job wants made; kept until it is answered for good, so it can be made again.
#[derive(Debug, Clone)]
pub(in crate::core::job) enum Request {
    /// A page of contacts.
    Read(String),
    /// A page of contact ids alone ([`super::super::Read::KEYS_PAGE`] a page): where a read
    /// of every contact is cut into parts.
    Keys(String),
    /// A page of a change-tracked read of contacts.
    Tracked(String),
    /// Contact columns, in one `$batch`.
    #[cfg(feature = "jobs")]
    Write(Vec<(String, Map)>),
    /// New activity rows with the ids given, each created only if it is not there, in one
    /// `$batch`.
    #[cfg(feature = "activity")]
    Create(Vec<(String, Map)>),
    /// Columns of the integration record, written under the job's lease.
    #[cfg(feature = "jobs")]
    Record(Guarded),
    /// One row (`GET`, a path under the Web API root).
    #[cfg(any(feature = "contact", feature = "activity"))]
    Row(String),
    /// Columns of one row (`PATCH` of an existing row: `If-Match: *`).
    #[cfg(feature = "contact")]
    Patch(String, Map),
    /// Delete one row; one already gone counts as deleted.
    #[cfg(any(feature = "contact", feature = "activity"))]
    Remove(String),
    /// A SALESmanago call.
    Call(Call),
    /// A file SALESmanago handed out, read part by part.
    #[cfg(feature = "consents")]
    Download(String),
}

impl Request {
    /// Whether it changes anything in Dataverse or SALESmanago (all but reads).
    pub(super) fn changes(&self) -> bool {
        match self {
            Request::Read(_) | Request::Keys(_) | Request::Tracked(_) => false,
            #[cfg(any(feature = "contact", feature = "activity"))]
            Request::Row(_) => false,
            #[cfg(feature = "jobs")]
            Request::Write(_) => true,
            #[cfg(feature = "contact")]
            Request::Patch(..) => true,
            #[cfg(any(feature = "contact", feature = "activity"))]
            Request::Remove(_) => true,
            #[cfg(feature = "consents")]
            Request::Download(_) => false,
            #[cfg(feature = "activity")]
            Request::Create(_) => true,
            #[cfg(feature = "jobs")]
            Request::Record(guarded) => guarded.purpose != Purpose::Acquire,
            Request::Call(call) => call.changes(),
        }
    }

    /// Which service answers it: each has its own bound on requests in flight.
    pub(super) fn service(&self) -> Service {
        match self {
            Request::Call(_) => Service::Salesmanago,
            #[cfg(feature = "consents")]
            Request::Download(_) => Service::Salesmanago,
            #[cfg(feature = "activity")]
            Request::Create(_) => Service::Dataverse,
            #[cfg(feature = "jobs")]
            Request::Record(_) => Service::Dataverse,
            Request::Read(_) | Request::Keys(_) | Request::Tracked(_) => Service::Dataverse,
            #[cfg(feature = "jobs")]
            Request::Write(_) => Service::Dataverse,
            #[cfg(any(feature = "contact", feature = "activity"))]
            Request::Row(_) | Request::Remove(_) => Service::Dataverse,
            #[cfg(feature = "contact")]
            Request::Patch(..) => Service::Dataverse,
        }
    }
}

/// The SALESmanago calls jobs make.
#[derive(Debug, Clone)]
pub(in crate::core::job) enum Call {
    #[cfg(feature = "export")]
    Upsert(BatchUpsert),
    Lookup(Lookup),
    #[cfg(feature = "changes")]
    Modified(ModifiedContacts),
    #[cfg(feature = "contact")]
    UpsertOne(Box<Upsert>),
    #[cfg(any(feature = "contact", feature = "export"))]
    Has(HasContact),
    #[cfg(any(feature = "contact", feature = "export"))]
    Delete(Delete),
    #[cfg(any(feature = "contact", feature = "export"))]
    Subscribe(SetSubscription),
    #[cfg(feature = "consents")]
    Export(ExportConsents),
    #[cfg(feature = "consents")]
    Status(JobStatus),
}

impl Call {
    /// Whether it changes a contact in SALESmanago (asking for an export changes none).
    fn changes(&self) -> bool {
        match self {
            Call::Lookup(_) => false,
            #[cfg(any(feature = "contact", feature = "export"))]
            Call::Has(_) => false,
            #[cfg(any(feature = "contact", feature = "export"))]
            Call::Delete(_) | Call::Subscribe(_) => true,
            #[cfg(feature = "export")]
            Call::Upsert(_) => true,
            #[cfg(feature = "contact")]
            Call::UpsertOne(_) => true,
            #[cfg(feature = "changes")]
            Call::Modified(_) => false,
            #[cfg(feature = "consents")]
            Call::Export(_) | Call::Status(_) => false,
        }
    }
}

/// What an answered request yields.
#[derive(Debug)]
pub(in crate::core::job) enum Output {
    /// A page's rows (each as it came, read one by one) and the next page's query.
    Page(Vec<Value>, Option<String>),
    /// A change-tracked page: its rows, the next page's query, and on the last page the delta
    /// link to read next time.
    Tracked(Vec<Value>, Option<String>, Option<String>),
    /// Each row's outcome of a `$batch`, in order.
    Written(Vec<Result<(), String>>),
    /// Each creation's outcome of a `$batch`, in order: created, or there already.
    Created(Vec<Result<bool, String>>),
    /// The integration record was written under the lease.
    Recorded,
    /// A `PATCH` of the record went through: the record's new ETag, when it said.
    RecordWritten(Option<String>),
    /// The integration record as read for a guarded write.
    RecordRead(Map),
    /// A guarded write found the record changed since it was read (`412`).
    Conflict,
    Upserted(BatchOutcome),
    Found(Vec<SmContact>),
    Modified(ModifiedPage),
    /// A row as read.
    Row(Map),
    /// A row written or deleted.
    Done,
    /// The SALESmanago id of the contact upserted, or found (`None`: not there).
    Contact(Option<String>),
    /// The id of the export job SALESmanago started.
    Requested(String),
    /// The export file's address, once it is ready.
    Status(Option<String>),
    /// A part of a download; `true` when it is the first of this attempt (the download went
    /// again from the start).
    Part(Vec<u8>, bool),
    /// A download is complete.
    Downloaded,
}

/// A request that failed for good.
#[derive(Debug)]
pub(in crate::core::job) enum Error {
    Dataverse(DvError),
    Salesmanago(SmError),
    /// A verdict that trying again cannot change: the job's lease stops it (another run holds
    /// it, took it over, or the record would not stay still long enough to write), or Dataverse
    /// says the user may not do this.
    Refused(Message, &'static str),
}

impl Error {
    /// Whether it may pass on another try (a service unavailable or busy), rather than being a
    /// refusal that stands.
    pub(in crate::core::job) fn passes(&self) -> bool {
        match self {
            Error::Dataverse(DvError::Unavailable { .. } | DvError::Throttled { .. }) => true,
            Error::Dataverse(_) | Error::Refused(..) => false,
            Error::Salesmanago(error) => crate::core::retry::is_transient(error),
        }
    }

    /// Whether every later request would fail the same way, so the job must stop.
    pub(in crate::core::job) fn stops_job(&self) -> bool {
        match self {
            Error::Dataverse(_) | Error::Refused(..) => true,
            Error::Salesmanago(error) => error.stops_job(),
        }
    }

    /// How to try again after it: the service's policy, what the failure says, the service.
    pub(super) fn retrying(&self) -> Option<(RetryPolicy, Failed, Service)> {
        match self {
            Error::Dataverse(e) => Some((RetryPolicy::dataverse(), Failed::from(e), Service::Dataverse)),
            Error::Salesmanago(e) => Some((RetryPolicy::default(), Failed::from(e), Service::Salesmanago)),
            // A lease's verdict is final.
            Error::Refused(..) => None,
        }
    }

    /// A stable name of the failure, for scripts.
    pub(in crate::core::job) fn kind(&self) -> &'static str {
        match self {
            Error::Dataverse(_) => "dataverse",
            Error::Salesmanago(e) => e.kind(),
            Error::Refused(_, kind) => kind,
        }
    }

    /// The user's message.
    pub(in crate::core::job) fn into_message(self) -> Message {
        match self {
            Error::Dataverse(DvError::MissingPrivilege { privilege }) => Message::MissingPrivilege { privilege },
            Error::Dataverse(error) => Message::Dataverse { detail: error.detail() },
            Error::Salesmanago(error) => Message::Salesmanago(error),
            Error::Refused(message, _) => message,
        }
    }
}

/// Reads the host's reply to `request`.
pub(super) fn read(request: &Request, client: &Client, reply: Reply) -> Result<Output, Error> {
    match (request, reply) {
        (Request::Read(_) | Request::Keys(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            // An answer that is not a page (cut off, garbled) may read on another attempt.
            let (rows, next) =
                query::page(&text).map_err(|detail| Error::Dataverse(DvError::Unavailable { detail }))?;
            Ok(Output::Page(rows, next))
        }
        (Request::Tracked(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            let (rows, next, delta) =
                query::tracked_page(&text).map_err(|detail| Error::Dataverse(DvError::Unavailable { detail }))?;
            Ok(Output::Tracked(rows, next, delta))
        }
        #[cfg(feature = "jobs")]
        (Request::Write(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            Ok(Output::Written(crate::core::dataverse::batch::outcomes(&text)))
        }
        #[cfg(feature = "activity")]
        (Request::Create(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            Ok(Output::Created(crate::core::dataverse::batch::created(&text)))
        }
        #[cfg(feature = "jobs")]
        (Request::Record(guarded), Reply::Dataverse(answer)) => {
            if guarded.etag.is_some() {
                if matches!(&answer, Ok(response) if response.status == 412) {
                    return Ok(Output::Conflict);
                }
                let text = error::answer(answer).map_err(Error::Dataverse)?;
                let etag = match crate::core::json::from_str(&text) {
                    Ok(Value::Object(row)) => row.get("@odata.etag").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                };
                return Ok(Output::RecordWritten(etag));
            }
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            match crate::core::json::from_str(&text) {
                Ok(Value::Object(record)) => Ok(Output::RecordRead(record)),
                // Cut off or garbled: may read on another attempt.
                _ => Err(Error::Dataverse(DvError::Unavailable {
                    detail: "the integration record could not be read".into(),
                })),
            }
        }
        (Request::Call(call), Reply::Salesmanago(outcome)) => {
            let sm = |e| Error::Salesmanago(e);
            match call {
                #[cfg(feature = "export")]
                Call::Upsert(op) => client.response(op, outcome).map(Output::Upserted).map_err(sm),
                Call::Lookup(op) => client.response(op, outcome).map(Output::Found).map_err(sm),
                #[cfg(feature = "changes")]
                Call::Modified(op) => client.response(op, outcome).map(Output::Modified).map_err(sm),
                #[cfg(feature = "contact")]
                Call::UpsertOne(op) => {
                    client.response(op.as_ref(), outcome).map(|id| Output::Contact(Some(id))).map_err(sm)
                }
                #[cfg(any(feature = "contact", feature = "export"))]
                Call::Has(op) => client.response(op, outcome).map(Output::Contact).map_err(sm),
                #[cfg(any(feature = "contact", feature = "export"))]
                Call::Delete(op) => client.response(op, outcome).map(|()| Output::Done).map_err(sm),
                #[cfg(any(feature = "contact", feature = "export"))]
                Call::Subscribe(op) => client.response(op, outcome).map(|_| Output::Done).map_err(sm),
                #[cfg(feature = "consents")]
                Call::Export(op) => client.response(op, outcome).map(Output::Requested).map_err(sm),
                #[cfg(feature = "consents")]
                Call::Status(op) => {
                    let address = client.response(op, outcome).map_err(sm)?;
                    Ok(Output::Status(address.map(|url| client.file_address(&url))))
                }
            }
        }
        #[cfg(feature = "consents")]
        (Request::Download(_), Reply::Salesmanago(outcome)) => match outcome {
            Ok(response) if (200..300).contains(&response.status) => Ok(Output::Downloaded),
            // The file's server speaks no envelope: its status says it all, but for a relay's
            // refusal, which names its reason.
            Ok(response) => Err(Error::Salesmanago(match (Refusal::of_body(&response.body), response.status) {
                (Some(refusal), _) if client.relay.is_some() => SmError::Relay(refusal),
                (_, 429) => SmError::Throttled { retry_after: response.wait() },
                (_, status @ (408 | 500..=599)) => SmError::Server { status },
                (_, status) => SmError::UnexpectedStatus { status },
            })),
            Err(failure) => Err(Error::Salesmanago(client.judged(failure.into()))),
        },
        #[cfg(any(feature = "contact", feature = "activity"))]
        (Request::Row(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            match crate::core::json::from_str(&text) {
                Ok(Value::Object(row)) => Ok(Output::Row(row)),
                // Cut off or garbled: may read on another attempt.
                _ => Err(Error::Dataverse(DvError::Unavailable { detail: "the row could not be read".into() })),
            }
        }
        #[cfg(feature = "contact")]
        (Request::Patch(..), Reply::Dataverse(answer)) => {
            error::answer(answer).map_err(Error::Dataverse)?;
            Ok(Output::Done)
        }
        #[cfg(any(feature = "contact", feature = "activity"))]
        (Request::Remove(_), Reply::Dataverse(answer)) => {
            // A row already gone (deleted by an earlier attempt whose answer was lost) is gone.
            if matches!(&answer, Ok(response) if response.status == 404) {
                return Ok(Output::Done);
            }
            error::answer(answer).map_err(Error::Dataverse)?;
            Ok(Output::Done)
        }
        (_, _) => Err(Error::Dataverse(DvError::Refused { detail: "the host answered with the wrong service".into() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::salesmanago::HttpResponse;

    fn client(relay: bool) -> Client {
        Client::relayed(if relay { "k1.x" } else { "" })
    }

    fn downloaded(client: &Client, status: u16, body: &str) -> Result<Output, Error> {
        let response = HttpResponse { date: None, status, retry_after: None, body: body.into() };
        read(&Request::Download("files/1/a".into()), client, Reply::Salesmanago(Ok(response)))
    }

    #[test]
    fn a_download_the_relay_refuses_names_its_reason_and_the_file_server_its_status() {
        let refused = Refusal::File.body();
        let through = downloaded(&client(true), 404, &refused);
        assert!(matches!(through, Err(Error::Salesmanago(SmError::Relay(Refusal::File)))), "{through:?}");
        // From SALESmanago's file server itself, such a body is not the relay's: its status tells.
        let direct = downloaded(&client(false), 404, &refused);
        assert!(matches!(direct, Err(Error::Salesmanago(SmError::UnexpectedStatus { status: 404 }))), "{direct:?}");
        let busy = downloaded(&client(true), 503, "");
        assert!(matches!(busy, Err(Error::Salesmanago(SmError::Server { status: 503 }))), "{busy:?}");
        assert!(matches!(downloaded(&client(false), 200, ""), Ok(Output::Downloaded)));
    }
}
