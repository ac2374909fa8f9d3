//! The dashboard's files, compiled into the binary so the page needs nothing at run time (no Node.js,
//! no CDN, no files beside the binary).

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::OnceLock;

/// One embedded file.
pub struct Asset {
    /// Its name under `/dashboard/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $name)),
        }
    };
}

/// Every file the page loads.
pub static ALL: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("icon.svg", SVG),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("chart.js", JS),
    asset!("ui.js", JS),
    asset!("overview.js", JS),
    asset!("explorer.js", JS),
    asset!("session.js", JS),
    asset!("errors.js", JS),
    asset!("notifications.js", JS),
    asset!("types.js", JS),
];

/// The page itself.
pub static INDEX: &Asset = &ALL[0];

/// The asset of this name.
pub fn find(name: &str) -> Option<&'static Asset> {
    ALL.iter().find(|asset| asset.name == name)
}

/// What is computed once per asset: its gzip form and its ETag.
pub struct Prepared {
    /// The body, gzipped.
    pub gzip: Vec<u8>,
    /// A strong validator: a hash of the body, quoted.
    pub etag: String,
}

/// The asset's compressed form and ETag, computed at first use.
pub fn prepared(asset: &'static Asset) -> &'static Prepared {
    static PREPARED: OnceLock<Vec<Prepared>> = OnceLock::new();
    let all = PREPARED.get_or_init(|| ALL.iter().map(prepare).collect());
    let index = ALL
        .iter()
        .position(|candidate| std::ptr::eq(candidate, asset))
        .unwrap_or_default();
    &all[index]
}

fn prepare(asset: &Asset) -> Prepared {
    let digest = Sha256::digest(asset.body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    Prepared {
        gzip: gzip(asset.body),
        etag: format!("\"{hex}\""),
    }
}

/// Gzip at the best level: it runs once per process, on about 100 KB.
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail; should it, the empty result would be caught by the size test.
    if encoder.write_all(body).is_err() {
        return Vec::new();
    }
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn the_whole_page_is_under_200_kb_compressed() {
        // Everything a first visit downloads.
        let total: usize = ALL.iter().map(|asset| prepared(asset).gzip.len()).sum();
        let raw: usize = ALL.iter().map(|asset| asset.body.len()).sum();
        println!("dashboard assets: {raw} bytes, {total} bytes gzipped");
        assert!(total > 1000, "suspiciously small: {total} bytes");
        assert!(total < 200 * 1024, "{total} bytes gzipped");
    }

    #[test]
    fn the_gzip_form_decodes_to_the_file() {
        for asset in ALL {
            let mut decoded = Vec::new();
            let read = GzDecoder::new(prepared(asset).gzip.as_slice()).read_to_end(&mut decoded);
            assert!(read.is_ok(), "{}", asset.name);
            assert_eq!(decoded, asset.body, "{}", asset.name);
        }
    }

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        for asset in ALL
            .iter()
            .filter(|a| a.content_type == JS || a.content_type == HTML)
        {
            let text = String::from_utf8_lossy(asset.body);
            for import in imports(&text) {
                assert!(find(import).is_some(), "{} imports {import}", asset.name);
            }
        }
    }

    /// `./x.js` names in `from './x.js'` and `src="/dashboard/x.js"`.
    fn imports(text: &str) -> Vec<&str> {
        let modules = text.split("from './").skip(1);
        let scripts = text.split("/dashboard/").skip(1);
        modules
            .chain(scripts)
            .filter_map(|rest| rest.split(['\'', '"']).next())
            .filter(|name| {
                name.ends_with(".js") || name.ends_with(".css") || name.ends_with(".svg")
            })
            .collect()
    }
}
