//! The `order` parameter of the event listings (`GET /v1/events` and its export): oldest or newest first,
//! and the rule that a cursor only continues a listing in the order it was issued for.

use crate::api::params::Words;
use eye_store::queries::{EventCursor, EventOrder};

/// The values of `order`.
pub struct OrderWords;

impl Words for OrderWords {
    const WORDS: &'static [&'static str] = &["asc", "desc"];
}

/// Parses `order`.
pub fn order(text: &str) -> Result<EventOrder, &'static str> {
    match text {
        "asc" => Ok(EventOrder::Ascending),
        "desc" => Ok(EventOrder::Descending),
        _ => Err("must be `asc` or `desc`"),
    }
}

fn word(order: EventOrder) -> &'static str {
    match order {
        EventOrder::Ascending => "asc",
        EventOrder::Descending => "desc",
    }
}

/// Reads a cursor for a listing in `order`: one issued for the other order would continue from the
/// wrong side of its position, so it is refused rather than silently misread.
pub fn cursor_for(text: &str, order: EventOrder) -> Result<EventCursor, String> {
    let cursor = EventCursor::decode(text).map_err(|err| err.to_string())?;
    if cursor.order() == order {
        Ok(cursor)
    } else {
        Err(format!(
            "this cursor continues a listing with `order={}`, not `order={}`",
            word(cursor.order()),
            word(order)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_word_parses_and_nothing_else_does() {
        for text in OrderWords::WORDS {
            assert_eq!(order(text).map(word), Ok(*text));
        }
        for text in ["", "ASC", "descending", "newest"] {
            assert!(order(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_cursor_continues_only_a_listing_in_its_own_order() {
        let newest = "ZHwyMDIxLTAxLTAxVDA5OjE1OjI3WnwxMg"; // d|2021-01-01T09:15:27Z|12
        let oldest = "ZXwyMDIxLTAxLTAxVDA5OjE1OjI3WnwxMg"; // e|2021-01-01T09:15:27Z|12
        assert!(cursor_for(newest, EventOrder::Descending).is_ok());
        assert!(cursor_for(oldest, EventOrder::Ascending).is_ok());
        let mismatch = cursor_for(newest, EventOrder::Ascending).expect_err("other order");
        assert!(mismatch.contains("order=desc"), "{mismatch}");
        assert!(cursor_for(oldest, EventOrder::Descending).is_err());
        assert!(cursor_for("!!", EventOrder::Ascending).is_err());
    }
}
