//! `order=desc`: newest first, keyset paging that holds while events arrive, and cursors that only
//! continue a listing in the order they were issued for.

use super::{Fixture, STORED_TICKS, page_of, record, send_ticks, tick};
use crate::support::{ADMIN_TOKEN, Backend};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Event `i` of session `p` on 2021-01-01, before every `tick`: older than any page's position.
fn older(i: u32) -> Value {
    json!({"session_id": "p", "category": "paging", "name": "tick", "data": {"i": i},
           "timestamp": format!("2021-01-01T23:{:02}:00Z", i % 60)})
}

async fn paging_newest_first_while_events_arrive(backend: Backend) -> anyhow::Result<()> {
    let f = Fixture::start(backend).await?;
    send_ticks(&f).await?;
    let (mut seen, mut order, mut cursor) = (HashSet::new(), Vec::new(), None::<String>);
    for page_number in 0u32.. {
        let page = page_of(&f, "desc", cursor.as_deref()).await?;
        record(&page, &mut seen, &mut order)?;
        // Between pages: one event tied with the position just read, one newer than everything (both
        // sort before the cursor, so they are not listed) and one older than everything (listed once,
        // at the end).
        let n = 1000 + 3 * page_number;
        let position = 250u32.saturating_sub(u32::try_from(seen.len()).unwrap_or(0)) / 3;
        let arrivals = json!([tick(n, position), tick(n + 1, 5000), older(n + 2)]);
        f.app.post_events(arrivals).await?;
        f.app
            .wait_for_count(STORED_TICKS, 250 + 3 * (i64::from(page_number) + 1))
            .await?;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
        anyhow::ensure!(page_number < 30, "paging does not end");
    }
    let ids: Vec<u64> = order.iter().map(|(_, i)| *i).collect();
    let initial: HashSet<u64> = ids.iter().copied().filter(|i| *i < 250).collect();
    assert_eq!(initial.len(), 250, "every event stored before paging, once");
    assert!(
        order.windows(2).all(|w| w[0].0 >= w[1].0),
        "pages are newest first"
    );
    let ties: Vec<u64> = ids.iter().copied().filter(|i| *i < 6).collect();
    assert_eq!(
        ties,
        [5, 4, 3, 2, 1, 0],
        "equal timestamps come in reverse sending order"
    );
    assert!(
        ids.iter().any(|i| *i >= 1000 && (i - 1000) % 3 == 2),
        "older arrivals appear on later pages"
    );
    assert!(
        !ids.iter().any(|i| *i >= 1000 && (i - 1000) % 3 != 2),
        "arrivals that sort before the position read are not listed"
    );
    f.app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_first_pages_have_no_duplicates_and_no_gaps_while_events_arrive_on_postgres()
-> anyhow::Result<()> {
    paging_newest_first_while_events_arrive(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_first_pages_have_no_duplicates_and_no_gaps_while_events_arrive_embedded()
-> anyhow::Result<()> {
    paging_newest_first_while_events_arrive(Backend::Embedded).await
}

/// A cursor of one order used with the other is a 400 naming `cursor`, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_used_with_the_other_order_is_refused_naming_cursor() -> anyhow::Result<()> {
    let f = Fixture::start(Backend::Embedded).await?;
    let newest = f.labels("/v1/events?order=desc", ADMIN_TOKEN).await?;
    assert_eq!(newest.join(" "), "a5 a4 a3 b1 a2 a1");
    for (issued, used) in [
        ("order=desc", "order=asc"),
        ("order=desc", ""),
        ("", "order=desc"),
    ] {
        let page = f
            .read(&format!("/v1/events?limit=2&{issued}"), ADMIN_TOKEN)
            .await?;
        let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
        let same = format!("/v1/events?limit=2&{issued}&cursor={cursor}");
        let next = f.read(&same, ADMIN_TOKEN).await?;
        assert_eq!(next["events"].as_array().map(Vec::len), Some(2), "{same}");
        let mixed = f
            .get(
                &format!("/v1/events?limit=2&{used}&cursor={cursor}"),
                ADMIN_TOKEN,
            )
            .await?;
        assert_eq!(
            mixed.status(),
            StatusCode::BAD_REQUEST,
            "{issued} then {used:?}"
        );
        let problem: Value = mixed.json().await?;
        assert_eq!(problem["errors"][0]["field"], "cursor", "{problem}");
    }
    let bad = f.get("/v1/events?order=newest", ADMIN_TOKEN).await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.json::<Value>().await?["errors"][0]["field"], "order");
    f.app.stop().await
}
