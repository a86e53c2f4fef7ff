//! Nova (`compute`): compute services (with force-down), the servers on a
//! host, server actions, migrations, hypervisors and aggregates, with the
//! shapes recorded in `../shared/OPENSTACK-TESTBED.md`.
//!
//! Hosts are matched exactly: `servers?host=` and `os-services?host=`
//! (Nova's hypervisor searches match substrings, so `compute1` finds
//! `compute10` too; they are not used to find a host's servers).

use std::time::{Instant, SystemTime};

use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{query_value, Answer, Call, Method, OsError, Session};
use crate::report::TraceStep;

const SERVICE: &str = "compute";
/// Service UUIDs and force-down by id; hypervisor and aggregate UUIDs.
pub const MICROVERSION: &str = "2.53";
/// Migrations with their `uuid`, paging, and filters that are checked
/// (below 2.59 an unknown filter is silently ignored: everything returned).
pub const MIGRATIONS_MICROVERSION: &str = "2.59";
/// The most pages of a list followed before giving up (1,000 each).
const MAX_PAGES: usize = 1000;

/// A compute service (`os-services`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ComputeService {
    /// Its UUID (2.53+).
    pub id: String,
    /// nova-compute, nova-conductor, ...
    pub binary: String,
    /// The host it runs on.
    pub host: String,
    /// Its availability zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// enabled or disabled.
    pub status: String,
    /// up or down (down after `service_down_time`, or when forced down).
    pub state: String,
    /// Its last report, UTC with no zone.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Why it was disabled.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Forced down by an operator (or a fencing tool).
    #[serde(default)]
    pub forced_down: bool,
}

impl ComputeService {
    /// Its last report, read as UTC.
    pub fn updated(&self) -> Option<SystemTime> {
        super::neutron::utc_naive(self.updated_at.as_deref()?)
    }
}

/// A server (`servers/detail`), with the admin attributes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Server {
    /// Its UUID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// ACTIVE, SHUTOFF, ERROR, REBUILD, ...
    pub status: String,
    /// The compute host it is on.
    #[serde(rename = "OS-EXT-SRV-ATTR:host", default)]
    pub host: Option<String>,
    /// active, stopped, error, ...
    #[serde(rename = "OS-EXT-STS:vm_state", default)]
    pub vm_state: Option<String>,
    /// A task in progress (rebuilding, rebuild_spawning, ...).
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    pub task_state: Option<String>,
    /// UP, DOWN, MAINTENANCE, UNKNOWN (2.16+).
    #[serde(default)]
    pub host_status: Option<String>,
    /// Its metadata.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Addresses by network: `{"net": [{"addr", "version", "OS-EXT-IPS:type"}]}`.
    #[serde(default)]
    pub addresses: std::collections::BTreeMap<String, Vec<Address>>,
    /// Its project.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Locked against changes.
    #[serde(default)]
    pub locked: Option<bool>,
    /// Its availability zone.
    #[serde(rename = "OS-EXT-AZ:availability_zone", default)]
    pub az: Option<String>,
    /// Its flavor as embedded from 2.47 (what it needs on another host).
    #[serde(default)]
    pub flavor: Option<Flavor>,
    /// The image it was booted from: `{"id": ...}`, or `""` when it boots
    /// from a volume.
    #[serde(default)]
    pub image: serde_json::Value,
}

impl Server {
    /// The id of the image it was booted from, if any.
    pub fn image_id(&self) -> Option<&str> {
        self.image
            .get("id")
            .and_then(serde_json::Value::as_str)
            .filter(|id| !id.is_empty())
    }
}

/// A server's flavor as Nova embeds it (2.47+).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Flavor {
    /// Virtual CPUs.
    #[serde(default)]
    pub vcpus: u64,
    /// Memory, MiB.
    #[serde(default)]
    pub ram: u64,
    /// Root disk, GiB.
    #[serde(default)]
    pub disk: u64,
    /// Ephemeral disk, GiB.
    #[serde(default)]
    pub ephemeral: u64,
    /// Swap, MiB.
    #[serde(default)]
    pub swap: u64,
    /// Its extra specs, as embedded with it (2.47+).
    #[serde(default)]
    pub extra_specs: std::collections::BTreeMap<String, String>,
}

impl Flavor {
    /// What Placement allocates for it: VCPU, MEMORY_MB, DISK_GB.
    pub fn resources(&self) -> std::collections::BTreeMap<String, u64> {
        let mut r = std::collections::BTreeMap::new();
        r.insert("VCPU".to_string(), self.vcpus);
        r.insert("MEMORY_MB".to_string(), self.ram);
        r.insert(
            "DISK_GB".to_string(),
            self.disk + self.ephemeral + self.swap.div_ceil(1024),
        );
        r
    }
}

/// One address of a server on a network.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Address {
    /// The address.
    pub addr: String,
    /// 4 or 6.
    #[serde(default)]
    pub version: Option<u8>,
    /// fixed or floating.
    #[serde(rename = "OS-EXT-IPS:type", default)]
    pub kind: Option<String>,
}

/// A migration (`os-migrations`, 2.59).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Migration {
    /// Its number.
    pub id: u64,
    /// Its UUID (2.59+).
    #[serde(default)]
    pub uuid: Option<String>,
    /// The instance moved.
    pub instance_uuid: String,
    /// accepted, pre-migrating, done, completed, failed, error, ...
    pub status: String,
    /// evacuation, live-migration, migration, resize.
    #[serde(default)]
    pub migration_type: Option<String>,
    /// From.
    #[serde(default)]
    pub source_compute: Option<String>,
    /// To.
    #[serde(default)]
    pub dest_compute: Option<String>,
    /// When it began.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Its last change.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A hypervisor (`os-hypervisors/detail`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hypervisor {
    /// Its UUID (2.53+).
    pub id: String,
    /// The node name.
    pub hypervisor_hostname: String,
    /// The address Nova knows it by.
    #[serde(default)]
    pub host_ip: Option<String>,
    /// up or down.
    #[serde(default)]
    pub state: Option<String>,
    /// enabled or disabled.
    #[serde(default)]
    pub status: Option<String>,
    /// Its compute service.
    #[serde(default)]
    pub service: Option<HypervisorService>,
}

/// The compute service of a hypervisor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HypervisorService {
    /// The service's host (which `servers?host=` takes).
    pub host: String,
    /// The service's UUID.
    #[serde(default)]
    pub id: Option<String>,
    /// Why it was disabled.
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

/// A host aggregate.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Aggregate {
    /// Its number.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its availability zone, if it defines one.
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Its hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Its metadata.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, Value>,
}

/// Nova's API on a session.
pub struct Nova<'a>(pub &'a Session);

impl Nova<'_> {
    /// Compute services of `binary`, on `host` when given (exact match).
    pub fn services(
        &self,
        binary: &str,
        host: Option<&str>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<ComputeService>, OsError> {
        let mut path = format!("/os-services?binary={}", query_value(binary));
        if let Some(h) = host {
            path.push_str(&format!("&host={}", query_value(h)));
        }
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            &path,
            "services",
            deadline,
            trace,
        )
    }

    fn update_service(
        &self,
        id: &str,
        body: Value,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<ComputeService, OsError> {
        let path = format!("/os-services/{}", query_value(id));
        let call = Call::with_body(Method::Put, SERVICE, Some(MICROVERSION), &path, &body);
        self.0.fetch(&call, "service", deadline, trace)
    }

    /// Force a compute service down (or clear it). Nova's API reference:
    /// forcing down a host that is not fenced will likely corrupt its VMs.
    pub fn force_down(
        &self,
        id: &str,
        down: bool,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<ComputeService, OsError> {
        self.update_service(id, json!({ "forced_down": down }), deadline, trace)
    }

    /// Disable a compute service with a reason (the scheduler then leaves
    /// it alone), or enable it (`reason` None).
    pub fn set_enabled(
        &self,
        id: &str,
        reason: Option<&str>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<ComputeService, OsError> {
        let body = match reason {
            Some(r) => json!({"status": "disabled", "disabled_reason": r}),
            None => json!({"status": "enabled"}),
        };
        self.update_service(id, body, deadline, trace)
    }

    /// Every server Nova places on `host`, of every project, following
    /// the pages to the end.
    pub fn servers_on_host(
        &self,
        host: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Server>, OsError> {
        self.servers(Some(host), deadline, trace)
    }

    /// Every server of every project, on `host` when given (an exact
    /// match), following the pages to the end: one listing for many hosts
    /// instead of a call per host.
    pub fn servers(
        &self,
        host: Option<&str>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Server>, OsError> {
        let base = match host {
            Some(h) => format!(
                "/servers/detail?host={}&all_tenants=1&limit=1000",
                query_value(h)
            ),
            None => "/servers/detail?all_tenants=1&limit=1000".to_string(),
        };
        self.list_servers(base, deadline, trace)
    }

    /// The ACTIVE servers of the token's project, or of every project
    /// (`all_projects`, an admin's right), following the pages to the end.
    pub fn active_servers(
        &self,
        all_projects: bool,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Server>, OsError> {
        let base = format!(
            "/servers/detail?status=ACTIVE&limit=1000{}",
            if all_projects { "&all_tenants=1" } else { "" }
        );
        self.list_servers(base, deadline, trace)
    }

    fn list_servers(
        &self,
        base: String,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Server>, OsError> {
        let mut all: Vec<Server> = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut path = base.clone();
            if let Some(last) = all.last() {
                path.push_str(&format!("&marker={}", query_value(&last.id)));
            }
            let call = Call::get(SERVICE, Some(MICROVERSION), &path);
            let answer = self.0.call(&call, deadline, trace)?;
            let page: Vec<Server> =
                super::client::parse(&answer, "servers").map_err(|w| call.bad_answer(w))?;
            let more = answer
                .json()
                .map_err(|w| call.bad_answer(w))?
                .get("servers_links")
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(|x| x["rel"] == "next"));
            let empty = page.is_empty();
            all.extend(page);
            if !more || empty {
                return Ok(all);
            }
        }
        Err(OsError::BadAnswer {
            service: SERVICE.into(),
            method: "GET",
            path: base,
            why: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// One server.
    pub fn server(
        &self,
        id: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Server, OsError> {
        let path = format!("/servers/{}", query_value(id));
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            &path,
            "server",
            deadline,
            trace,
        )
    }

    /// A server action (`{"evacuate": {}}`, `{"lock": null}`, ...): any
    /// answer, whatever its status, for the caller to judge (an evacuation
    /// off a host still up is 400 "... is still in use").
    pub fn action(
        &self,
        id: &str,
        action: &Value,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Answer, OsError> {
        self.action_at(id, action, MICROVERSION, deadline, trace)
    }

    /// A server action at a chosen microversion (`lock` with a reason
    /// needs 2.73): any answer, for the caller to judge.
    pub fn action_at(
        &self,
        id: &str,
        action: &Value,
        microversion: &str,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Answer, OsError> {
        let path = format!("/servers/{}/action", query_value(id));
        let call = Call::with_body(Method::Post, SERVICE, Some(microversion), &path, action);
        self.0.send(&call, deadline, trace)
    }

    /// The migrations off a compute host, of one type when given
    /// (`source_compute` matches exactly).
    pub fn migrations_from(
        &self,
        host: &str,
        migration_type: Option<&str>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Migration>, OsError> {
        self.list_migrations("source_compute", host, migration_type, deadline, trace)
    }

    /// The migrations of an instance, of one type (`evacuation`) when given.
    pub fn migrations(
        &self,
        instance: &str,
        migration_type: Option<&str>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Migration>, OsError> {
        self.list_migrations("instance_uuid", instance, migration_type, deadline, trace)
    }

    /// `os-migrations` filtered by `key=value` (and a type when given).
    fn list_migrations(
        &self,
        key: &str,
        value: &str,
        migration_type: Option<&str>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Migration>, OsError> {
        let mut path = format!("/os-migrations?{key}={}", query_value(value));
        if let Some(t) = migration_type {
            path.push_str(&format!("&migration_type={}", query_value(t)));
        }
        self.0.get(
            SERVICE,
            Some(MIGRATIONS_MICROVERSION),
            &path,
            "migrations",
            deadline,
            trace,
        )
    }

    /// Every hypervisor, with its `host_ip` and service.
    pub fn hypervisors(
        &self,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Hypervisor>, OsError> {
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            "/os-hypervisors/detail",
            "hypervisors",
            deadline,
            trace,
        )
    }

    /// Every host aggregate.
    pub fn aggregates(
        &self,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Aggregate>, OsError> {
        self.0.get(
            SERVICE,
            Some(MICROVERSION),
            "/os-aggregates",
            "aggregates",
            deadline,
            trace,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zed_shapes_parse() {
        let s: Vec<ComputeService> = serde_json::from_value(json!([
            {"id": "8e8c5a7e-5d7d-4b5e-9d0e-2a3f4b5c6d7e", "binary": "nova-compute", "disabled_reason": null,
             "host": "compute1", "state": "down", "status": "enabled", "updated_at": "2026-11-20T10:00:05.000000",
             "forced_down": true, "zone": "nova"}
        ]))
        .expect("services");
        assert!(s[0].forced_down);
        assert!(s[0].updated().is_some());
        let v: Vec<Server> = serde_json::from_value(json!([
            {"id": "6695eb01-f6a4-8304-79aa-97f2502e193f", "name": "vm1", "status": "ACTIVE",
             "OS-EXT-SRV-ATTR:host": "compute1", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:task_state": null,
             "host_status": "UP", "metadata": {"ha": "true"}, "tenant_id": "p1", "locked": false,
             "OS-EXT-AZ:availability_zone": "az1",
             "addresses": {"private": [{"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed",
               "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]}}
        ]))
        .expect("servers");
        assert_eq!(v[0].host.as_deref(), Some("compute1"));
        assert_eq!(v[0].task_state, None);
        assert_eq!(v[0].az.as_deref(), Some("az1"));
        assert_eq!(v[0].addresses["private"][0].addr, "10.0.0.5");
        let m: Vec<Migration> = serde_json::from_value(json!([
            {"id": 3, "uuid": "42341d4b-346a-40d0-83c6-5f4f6892b650", "instance_uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f",
             "status": "done", "migration_type": "evacuation", "source_compute": "compute1", "dest_compute": "compute2",
             "source_node": "compute1", "dest_node": "compute2", "created_at": "2026-11-20T10:01:00.000000",
             "updated_at": "2026-11-20T10:01:05.000000", "new_instance_type_id": 1, "old_instance_type_id": 1}
        ]))
        .expect("migrations");
        assert_eq!(m[0].status, "done");
        let h: Vec<Hypervisor> = serde_json::from_value(json!([
            {"id": "b1e43b5f-eec1-44e0-9f10-7b4945c0226d", "hypervisor_hostname": "compute1", "host_ip": "192.0.2.11",
             "state": "up", "status": "enabled", "service": {"host": "compute1", "id": "8e8c5a7e-5d7d-4b5e-9d0e-2a3f4b5c6d7e", "disabled_reason": null}}
        ]))
        .expect("hypervisors");
        assert_eq!(
            h[0].service.as_ref().map(|s| s.host.as_str()),
            Some("compute1")
        );
        let a: Vec<Aggregate> = serde_json::from_value(json!([
            {"id": 1, "uuid": "x", "name": "rack1", "availability_zone": "az1", "hosts": ["compute1"], "metadata": {"availability_zone": "az1"}}
        ]))
        .expect("aggregates");
        assert_eq!(a[0].hosts, vec!["compute1"]);
    }
}
