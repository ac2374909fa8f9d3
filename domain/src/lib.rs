//! Domain types of The Eye: the parsed, trusted form of everything the service handles.
//!
//! Values are parsed once at the boundary (HTTP, queue, database) into these types; code that holds one can
//! trust its invariants. This crate does no I/O.

pub mod batch;
pub mod event;
pub mod failure;
pub mod ids;
pub mod text;
pub mod time;

pub use batch::IngestBatch;
pub use event::{EventType, NewEvent, Payload};
pub use failure::{Failure, Retryability};
pub use ids::{ApplicationId, EventId, JobId};
pub use text::{Category, DeviceId, EventName, SessionId, TextError, UserId, check_bounded};
pub use time::{TimestampError, parse_timestamp};
