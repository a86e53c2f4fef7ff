//! OpenStack: clouds.yaml and `OS_*` configuration as the openstack client
//! reads it, Keystone v3 tokens (password and application credentials)
//! cached until shortly before they expire, and the service catalog.
//!
//! Secrets (passwords, application-credential secrets, tokens) live in
//! [`Secret`], whose `Debug` prints `***`; they never reach a record.

pub mod config;
pub mod keystone;

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
