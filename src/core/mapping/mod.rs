//! Contact mapping between Dataverse and SALESmanago, both ways: [`outbound`] builds the upsert
//! from a contact row, [`inbound`] the column changes from a SALESmanago contact. Single values
//! are checked in [`normalize`].

pub mod draft;
pub mod fields;
pub mod inbound;
pub mod normalize;
pub mod outbound;

#[cfg(test)]
mod tests;

pub use inbound::{from_salesmanago, ContactPatch};
pub use outbound::{to_salesmanago, Held, Outbound, OutboundOptions, Skip, Warning};
