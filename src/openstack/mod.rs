//! OpenStack: clouds.yaml and `OS_*` configuration as the openstack client
//! reads it, Keystone v3 tokens (password and application credentials)
//! cached until shortly before they expire, the service catalog, one
//! service client ([`client::Session`]) and the typed calls the binaries
//! need of Nova, Neutron, Masakari, Placement and Glance.
//!
//! Secrets (passwords, application-credential secrets, tokens) live in
//! [`Secret`], whose `Debug` prints `***`; they never reach a record.

pub mod client;
pub mod config;
pub mod glance;
pub mod keystone;
pub mod masakari;
pub mod neutron;
pub mod nova;
pub mod placement;

/// The headers that ask a service for a microversion: the standard
/// `OpenStack-API-Version`, and the older per-service header for the
/// services that had one (Nova still honours only that one before 2.27).
pub fn microversion_headers(service_type: &str, version: &str) -> Vec<(String, String)> {
    let mut h = vec![(
        "OpenStack-API-Version".to_string(),
        format!("{service_type} {version}"),
    )];
    let legacy = match service_type {
        "compute" => Some("X-OpenStack-Nova-API-Version"),
        "volume" | "block-storage" => None,
        "baremetal" => Some("X-OpenStack-Ironic-API-Version"),
        "shared-file-system" | "share" => Some("X-OpenStack-Manila-API-Version"),
        _ => None,
    };
    if let Some(name) = legacy {
        h.push((name.to_string(), version.to_string()));
    }
    h
}

/// A string that must never be shown.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}
