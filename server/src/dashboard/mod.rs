//! The analyst dashboard at `/dashboard`: static files embedded in the binary, served as they are.
//!
//! The page is only a client of the public API (it sends the analyst's read key or admin token as a
//! bearer header), so this module holds no data access at all: it serves files, compressed once, with
//! an ETag and a strict Content-Security-Policy.

mod assets;

use assets::Asset;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, handler};

/// What the page may load and where it may connect: only its own origin (no CDN, no inline script).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard, to be nested at `/dashboard`: the page at its root, its files beside it.
pub fn routes() -> impl Endpoint {
    poem::get(dashboard).catch_all_error(crate::api::problem::catch_all)
}

#[handler]
fn dashboard(req: &Request) -> poem::Result<Response> {
    // Nesting strips the `/dashboard` prefix: what is left names the file.
    let asset = match req.uri().path().trim_start_matches('/') {
        "" => assets::INDEX,
        name => assets::find(name).ok_or(poem::error::NotFoundError)?,
    };
    Ok(serve(req, asset))
}

/// The asset, gzipped when the client accepts it; `304` when the client's copy is current.
fn serve(req: &Request, asset: &'static Asset) -> Response {
    let prepared = assets::prepared(asset);
    let etag = prepared.etag.as_str();
    let mut response = if matches_etag(req, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(req) {
        Response::builder()
            .header(header::CONTENT_ENCODING, "gzip")
            .body(prepared.gzip.clone())
    } else {
        Response::builder().body(asset.body)
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The files change only with the binary: revalidate (cheap, by ETag) rather than cache blindly.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn matches_etag(req: &Request, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*")
}

fn accepts_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            // `gzip;q=0` means "not gzip" (RFC 9110, 12.5.3).
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            name.eq_ignore_ascii_case("gzip") && weight > 0.0
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::Route;
    use poem::test::TestClient;

    fn app() -> impl Endpoint {
        Route::new().nest("/dashboard", routes())
    }

    #[tokio::test]
    async fn the_page_is_served_at_the_bare_path_and_with_a_slash() {
        let client = TestClient::new(app());
        for path in ["/dashboard", "/dashboard/"] {
            let response = client.get(path).send().await;
            response.assert_status_is_ok();
            response.assert_content_type("text/html; charset=utf-8");
            let body = response
                .0
                .into_body()
                .into_string()
                .await
                .unwrap_or_default();
            assert!(body.contains("<title>The Eye"), "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type_and_a_strict_policy() {
        let client = TestClient::new(app());
        for asset in assets::ALL {
            let response = client
                .get(format!("/dashboard/{}", asset.name))
                .send()
                .await;
            response.assert_status_is_ok();
            response.assert_content_type(asset.content_type);
            response.assert_header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
            response.assert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        }
    }

    #[tokio::test]
    async fn gzip_is_sent_to_clients_that_accept_it_and_a_current_copy_gets_304() {
        let client = TestClient::new(app());
        let response = client
            .get("/dashboard/app.js")
            .header(header::ACCEPT_ENCODING, "br;q=1, gzip;q=0.8")
            .send()
            .await;
        response.assert_header(header::CONTENT_ENCODING, "gzip");
        let etag = response
            .0
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(etag.starts_with('"'), "{etag}");
        let again = client
            .get("/dashboard/app.js")
            .header(header::IF_NONE_MATCH, etag)
            .send()
            .await;
        again.assert_status(StatusCode::NOT_MODIFIED);
        let refused = client
            .get("/dashboard/app.js")
            .header(header::ACCEPT_ENCODING, "gzip;q=0")
            .send()
            .await;
        assert!(refused.0.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[tokio::test]
    async fn only_reading_is_allowed() {
        let client = TestClient::new(app());
        let response = client.post("/dashboard/app.js").send().await;
        response.assert_status(StatusCode::METHOD_NOT_ALLOWED);
        client.head("/dashboard").send().await.assert_status_is_ok();
    }

    #[tokio::test]
    async fn an_unknown_file_is_a_404_problem() {
        let client = TestClient::new(app());
        let response = client.get("/dashboard/nope.js").send().await;
        response.assert_status(StatusCode::NOT_FOUND);
        response.assert_content_type("application/problem+json");
    }
}
