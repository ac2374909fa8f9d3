//! Events given up on: counted once, handed to the application's error callback once, and the
//! reading of a 400 that names single events of a batch.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::error::{FieldError, Problem, SendError};
use crate::event::EventId;
use crate::stats::Counters;

/// Events the client gave up on, and why; see [`ClientBuilder::on_error`](crate::ClientBuilder::on_error).
#[derive(Debug)]
pub struct Failure<'a> {
    /// The events, in the order they were tracked.
    pub event_ids: &'a [EventId],
    /// Why: [`SendError::EventRefused`] for one event the server refused, [`SendError::InvalidEvent`]
    /// for one refused before sending, otherwise the failure of the whole batch.
    pub error: &'a SendError,
}

/// The application's error callback.
#[derive(Clone)]
pub(crate) struct OnError(pub Arc<dyn Fn(&Failure<'_>) + Send + Sync>);

impl fmt::Debug for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnError(..)")
    }
}

/// Counts failed events and tells the application, exactly once per event.
#[derive(Debug, Clone)]
pub(crate) struct Failures {
    pub counters: Arc<Counters>,
    pub on_error: Option<OnError>,
}

impl Failures {
    pub fn report(&self, event_ids: &[EventId], error: &SendError) {
        self.counters.add_failed(event_ids.len());
        if let Some(OnError(callback)) = &self.on_error {
            callback(&Failure { event_ids, error });
        }
    }
}

impl Problem {
    /// The events this problem names (`events[3].user_id`), by position in the request, each with
    /// its field errors made relative to the event (`user_id`).
    ///
    /// `None` when there are no field errors or any of them does not name one event (`events`).
    pub fn event_errors(&self) -> Option<BTreeMap<usize, Vec<FieldError>>> {
        let mut refused: BTreeMap<usize, Vec<FieldError>> = BTreeMap::new();
        for error in &self.errors {
            let (position, field) = event_field(&error.field)?;
            refused.entry(position).or_default().push(FieldError {
                field: field.to_owned(),
                message: error.message.clone(),
            });
        }
        (!refused.is_empty()).then_some(refused)
    }
}

/// The events of a batch of `events` that a 400 names, as [`Problem::event_errors`].
///
/// `None` when the answer is not such a 400, or when any of its errors does not name one event
/// of the batch (`events`, a body that is not JSON): then the whole batch is refused.
pub(crate) fn refused_events(
    error: &SendError,
    events: usize,
) -> Option<BTreeMap<usize, Vec<FieldError>>> {
    let SendError::Rejected {
        status: 400,
        problem: Some(problem),
        ..
    } = error
    else {
        return None;
    };
    problem
        .event_errors()
        .filter(|refused| refused.keys().all(|&position| position < events))
}

/// The positions of [`refused_events`], to take them out of their batch.
pub(crate) fn positions(refused: &BTreeMap<usize, Vec<FieldError>>) -> BTreeSet<usize> {
    refused.keys().copied().collect()
}

/// `events[3].user_id` -> `(3, "user_id")`; `events[3]` -> `(3, "")`.
fn event_field(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix("events[")?;
    let (index, field) = rest.split_once(']')?;
    let field = match field {
        "" => "",
        dotted => dotted.strip_prefix('.')?,
    };
    Some((index.parse().ok()?, field))
}

/// A 400 the way the server words it, with one error at each of `fields`.
#[cfg(test)]
pub(crate) fn problem_400(fields: impl Iterator<Item = String>) -> SendError {
    let errors = fields
        .map(|field| FieldError {
            field,
            message: "must not contain control characters".into(),
        })
        .collect();
    let problem = Problem {
        kind: "about:blank".into(),
        title: "Bad Request".into(),
        status: 400,
        detail: None,
        errors,
    };
    SendError::Rejected {
        status: 400,
        problem: Some(Box::new(problem)),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_request(fields: &[&str]) -> SendError {
        problem_400(fields.iter().map(|field| (*field).to_owned()))
    }

    #[test]
    fn paths_name_an_event_and_a_field_within_it() {
        let table = [
            ("events[3].user_id", Some((3, "user_id"))),
            ("events[0].data.x", Some((0, "data.x"))),
            ("events[12]", Some((12, ""))),
            ("events", None),
            ("events[]", None),
            ("events[-1].name", None),
            ("events[2]name", None),
            ("user_id", None),
        ];
        for (path, expected) in table {
            assert_eq!(event_field(path), expected, "{path}");
        }
    }

    #[test]
    fn a_400_naming_events_refuses_exactly_those_with_their_fields() {
        let error = bad_request(&["events[3].user_id", "events[1].name", "events[3].device_id"]);
        let refused = refused_events(&error, 11).expect("names events");
        assert_eq!(positions(&refused), BTreeSet::from([1, 3]));
        let fields: Vec<&str> = refused[&3].iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["user_id", "device_id"]);
    }

    #[test]
    fn a_400_that_does_not_name_events_of_the_batch_refuses_it_whole() {
        let table = [
            bad_request(&["events"]),
            bad_request(&["events[1].name", "events[11].name"]),
            bad_request(&[]),
            SendError::Rejected {
                status: 400,
                problem: None,
                retry_after: None,
            },
            SendError::Rejected {
                status: 401,
                problem: None,
                retry_after: None,
            },
        ];
        for error in table {
            assert_eq!(refused_events(&error, 11), None, "{error:?}");
        }
    }

    #[test]
    fn each_failed_event_is_counted_once_and_reported_to_the_callback() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let failures = Failures {
            counters: Arc::default(),
            on_error: Some(OnError(Arc::new(move |failure: &Failure<'_>| {
                let mut seen = sink.lock().expect("not poisoned");
                seen.extend_from_slice(failure.event_ids);
            }))),
        };
        let ids = [EventId::new_v7(), EventId::new_v7()];
        failures.report(&ids, &bad_request(&["events"]));
        assert_eq!(failures.counters.snapshot().failed, 2);
        assert_eq!(*seen.lock().expect("not poisoned"), ids);
    }
}
