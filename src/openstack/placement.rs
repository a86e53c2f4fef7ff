//! Placement: resource providers and their usages, for the capacity a
//! host's instances need elsewhere before an evacuation.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Deserialize;

use super::client::{query_value, OsError, Session};
use crate::report::TraceStep;

const SERVICE: &str = "placement";
/// `name` filters and `in_tree` (1.14).
pub const MICROVERSION: &str = "1.14";

/// A resource provider (a compute node, usually).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResourceProvider {
    /// Its UUID.
    pub uuid: String,
    /// Its name (the hypervisor's node name).
    pub name: String,
    /// Its generation.
    #[serde(default)]
    pub generation: u64,
}

/// An inventory of one resource class.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Inventory {
    /// How much there is.
    pub total: u64,
    /// Held back from use.
    #[serde(default)]
    pub reserved: u64,
    /// Overcommit ratio.
    #[serde(default = "one")]
    pub allocation_ratio: f64,
}

fn one() -> f64 {
    1.0
}

impl Inventory {
    /// What can be allocated: (total − reserved) × ratio.
    pub fn capacity(&self) -> f64 {
        self.total.saturating_sub(self.reserved) as f64 * self.allocation_ratio
    }
}

/// Placement's API on a session.
pub struct Placement<'a>(pub &'a Session);

impl Placement<'_> {
    /// Resource providers, by exact name when given.
    pub fn resource_providers(
        &self,
        name: Option<&str>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<ResourceProvider>, OsError> {
        let path = match name {
            Some(n) => format!("/resource_providers?name={}", query_value(n)),
            None => "/resource_providers".to_string(),
        };
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            &path,
            "resource_providers",
            deadline,
            trace,
        )
    }

    /// What a provider has used, by resource class (VCPU, MEMORY_MB, DISK_GB).
    pub fn usages(
        &self,
        provider: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<BTreeMap<String, u64>, OsError> {
        let path = format!("/resource_providers/{}/usages", query_value(provider));
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            &path,
            "usages",
            deadline,
            trace,
        )
    }

    /// What a provider has, by resource class.
    pub fn inventories(
        &self,
        provider: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<BTreeMap<String, Inventory>, OsError> {
        let path = format!("/resource_providers/{}/inventories", query_value(provider));
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            &path,
            "inventories",
            deadline,
            trace,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_shapes_parse() {
        let rp: Vec<ResourceProvider> = serde_json::from_value(serde_json::json!([
            {"uuid": "b1e43b5f-eec1-44e0-9f10-7b4945c0226d", "name": "compute1", "generation": 7,
             "links": [], "parent_provider_uuid": null, "root_provider_uuid": "b1e43b5f-eec1-44e0-9f10-7b4945c0226d"}
        ]))
        .expect("providers");
        assert_eq!(rp[0].generation, 7);
        let inv: BTreeMap<String, Inventory> = serde_json::from_value(serde_json::json!({
            "VCPU": {"total": 8, "reserved": 0, "min_unit": 1, "max_unit": 8, "step_size": 1, "allocation_ratio": 16.0},
            "MEMORY_MB": {"total": 16384, "reserved": 512, "min_unit": 1, "max_unit": 16384, "step_size": 1, "allocation_ratio": 1.5}
        }))
        .expect("inventories");
        assert_eq!(inv["VCPU"].capacity(), 128.0);
        assert_eq!(inv["MEMORY_MB"].capacity(), 23808.0);
    }
}
