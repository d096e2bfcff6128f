//! Dataverse: the tables and columns the solution defines or reads.

pub mod access;
pub mod batch;
pub mod burst;
pub mod contact;
pub mod error;
pub mod event;
pub mod query;
pub mod registration;
pub mod schema;
