//! The documentation tag of the data lifecycle endpoints.

use poem_openapi::Tags;

#[derive(Tags)]
pub enum LifecycleTags {
    /// The data lifecycle: exporting events (read key or admin token) and erasing a user's data (admin
    /// token). Retention is configured with `EYE_RETENTION`.
    Lifecycle,
}
