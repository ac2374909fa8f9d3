//! One path served by several APIs (e.g. `POST /v1/events` to send, `GET /v1/events` to read).
//!
//! poem-openapi 5.1 routes such paths correctly but writes one `paths` entry per API, which yields a
//! spec with duplicate keys (a JSON reader keeps only the last). [`MergePaths`] folds the operations of
//! equal paths into the first entry, so the spec lists each path once with all its methods.

use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem_openapi::OpenApi;
use poem_openapi::registry::{MetaApi, MetaPath, Registry};
use std::collections::HashMap;

/// Wraps a set of APIs (usually a tuple) and merges their equal paths in the spec.
pub struct MergePaths<T>(pub T);

impl<T: OpenApi> OpenApi for MergePaths<T> {
    fn meta() -> Vec<MetaApi> {
        merge(T::meta())
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn add_routes(self, route_table: &mut HashMap<String, HashMap<Method, BoxEndpoint<'static>>>) {
        self.0.add_routes(route_table);
    }
}

fn merge(apis: Vec<MetaApi>) -> Vec<MetaApi> {
    let mut merged: Vec<MetaApi> = Vec::with_capacity(apis.len());
    for api in apis {
        let mut kept = Vec::new();
        for path in api.paths {
            match find_path(&mut merged, &path.path) {
                Some(existing) => existing.operations.extend(path.operations),
                None => kept.push(path),
            }
        }
        merged.push(MetaApi { paths: kept });
    }
    merged
}

fn find_path<'a>(apis: &'a mut [MetaApi], path: &str) -> Option<&'a mut MetaPath> {
    apis.iter_mut()
        .flat_map(|api| api.paths.iter_mut())
        .find(|candidate| candidate.path == path)
}
