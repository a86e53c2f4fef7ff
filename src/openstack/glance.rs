//! Glance: an image's properties, for instances tagged through the image
//! they were booted from (`evacuable=true` on the image, as Red Hat's
//! InstanceHA reads it).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use super::client::{query_value, OsError, Session};
use crate::report::TraceStep;

const SERVICE: &str = "image";

/// The fields of a Glance v2 image that are Glance's own, not properties.
const CORE: &[&str] = &[
    "checksum",
    "container_format",
    "created_at",
    "direct_url",
    "disk_format",
    "file",
    "id",
    "locations",
    "min_disk",
    "min_ram",
    "name",
    "os_hash_algo",
    "os_hash_value",
    "os_hidden",
    "owner",
    "protected",
    "schema",
    "self",
    "size",
    "status",
    "tags",
    "updated_at",
    "virtual_size",
    "visibility",
];

/// Glance's API on a session.
pub struct Glance<'a>(pub &'a Session);

impl Glance<'_> {
    /// An image's properties (its additional fields, Glance v2 keeps them
    /// at the top level beside its own), each as text.
    pub fn properties(
        &self,
        image: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<BTreeMap<String, String>, OsError> {
        let path = format!("/v2/images/{}", query_value(image));
        let doc: BTreeMap<String, Value> = self.0.get(SERVICE, None, &path, "", deadline, trace)?;
        Ok(properties_of(doc))
    }
}

fn properties_of(doc: BTreeMap<String, Value>) -> BTreeMap<String, String> {
    doc.into_iter()
        .filter(|(k, _)| !CORE.contains(&k.as_str()))
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Bool(b) => Some((k, b.to_string())),
            Value::Number(n) => Some((k, n.to_string())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_images_own_fields_are_not_properties() {
        let doc: BTreeMap<String, Value> = serde_json::from_value(serde_json::json!({
            "id": "4a1c", "name": "tiny", "status": "active", "visibility": "public",
            "disk_format": "raw", "container_format": "bare", "size": 1024, "tags": [],
            "protected": false, "os_hidden": false, "min_ram": 0, "min_disk": 0,
            "evacuable": "true", "hw_qemu_guest_agent": "yes", "os_distro": "debian"
        }))
        .expect("image");
        let p = properties_of(doc);
        assert_eq!(p.get("evacuable").map(String::as_str), Some("true"));
        assert_eq!(p.len(), 3, "{p:?}");
    }
}
