//! Where a canary's peers come from: the list it was given (`--peers`,
//! `--peers-file`, `PEER_ENDPOINTS`) and, with `--os-peers KEY`, the ACTIVE
//! Nova servers whose metadata has KEY — asked again at every cycle, so a
//! canary booted or deleted joins or leaves the mesh without a restart.
//!
//! A server's metadata value says where its canary listens: a port
//! (`canary=8080`, on the server's address), a URL (`canary=http://HOST:PORT`),
//! or anything else (`canary=true`) for `--os-peers-port`. Its zone is the
//! server's availability zone; its data centre the metadata `datacenter`,
//! else the region the session asks.

use std::time::Instant;

use super::{mesh, normalise_url, Peer};
use crate::openstack::client::{OsError, Session};
use crate::openstack::nova::{Nova, Server};
use crate::report::TraceStep;

/// Most peers one list may name.
pub const MAX_PEERS: usize = 100_000;

/// Which address of a server its canary is reached on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AddressKind {
    /// The server's fixed address on its network.
    Fixed,
    /// Its floating address (canaries in other clouds or regions).
    Floating,
}

/// Canaries found among Nova's servers.
#[derive(Debug, Clone)]
pub struct NovaPeers {
    /// The cloud.
    pub session: Session,
    /// Every project's servers, not only the token's project.
    pub all_projects: bool,
    /// Which servers are canaries, and how they are reached.
    pub rule: CanaryRule,
}

/// Which servers are canaries, and how they are reached.
#[derive(Debug, Clone)]
pub struct CanaryRule {
    /// The metadata key that marks a canary.
    pub key: String,
    /// Only addresses on this network.
    pub network: Option<String>,
    /// Fixed or floating.
    pub address: AddressKind,
    /// The port when the metadata value names none.
    pub port: u16,
}

/// Where the peers come from.
#[derive(Debug, Clone)]
pub struct PeerSource {
    /// The peers named on the command line, a file or the environment.
    pub fixed: Vec<Peer>,
    /// The canaries Nova knows, when asked.
    pub nova: Option<NovaPeers>,
    /// This canary's id (its own entry is left out).
    pub me: String,
    /// At most this many peers (rendezvous-hashed, every zone kept).
    pub max_peers: Option<usize>,
}

impl PeerSource {
    /// No peer can ever come from this source.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.nova.is_none()
    }

    /// Where the peers come from, in words (for an empty list's record).
    pub fn describe(&self) -> String {
        match &self.nova {
            Some(n) => format!(
                "Nova servers with metadata {:?} ({})",
                n.rule.key,
                if n.all_projects {
                    "every project"
                } else {
                    "this project"
                }
            ),
            None => "the peer list".to_string(),
        }
    }

    /// The peers now: the fixed list and Nova's canaries, deduplicated,
    /// this canary left out, capped by `max_peers`. When Nova cannot be
    /// asked, the fixed list alone and what went wrong. `round`: the
    /// round's memory of tokens (a one-shot run's), else the source's own.
    pub fn peers(
        &self,
        round: Option<&crate::cli::RoundCache>,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> (Vec<Peer>, Option<OsError>) {
        let Some(n) = &self.nova else {
            // Settled once, when the source was made.
            return (self.fixed.clone(), None);
        };
        let n = match round {
            Some(r) => NovaPeers {
                session: n.session.in_round(r),
                ..n.clone()
            },
            None => n.clone(),
        };
        let mut peers = self.fixed.clone();
        let mut failed = None;
        match n.list(deadline, trace) {
            Ok(mut found) => peers.append(&mut found),
            Err(e) => failed = Some(e),
        }
        (self.settle(peers), failed)
    }

    /// Deduplicate, leave this canary out, cap.
    pub fn settle(&self, mut peers: Vec<Peer>) -> Vec<Peer> {
        let mut seen = std::collections::HashSet::new();
        peers.retain(|p| seen.insert(p.url.clone()));
        peers.retain(|p| p.id.as_deref() != Some(self.me.as_str()));
        peers.truncate(MAX_PEERS);
        match self.max_peers {
            Some(k) => mesh::choose(&self.me, &peers, k),
            None => peers,
        }
    }
}

impl NovaPeers {
    /// The canaries among the ACTIVE servers (one listing, all pages).
    /// A server marked as a canary but with no usable address is left out
    /// and said in the trace.
    pub fn list(
        &self,
        deadline: Instant,
        trace: &mut Vec<TraceStep>,
    ) -> Result<Vec<Peer>, OsError> {
        let servers = Nova(&self.session).active_servers(self.all_projects, deadline, trace)?;
        let mut peers = Vec::new();
        let mut skipped = Vec::new();
        let region = self.session.region.as_deref();
        for s in servers
            .iter()
            .filter(|s| s.metadata.contains_key(&self.rule.key))
        {
            match self.rule.peer_of(s, region) {
                Ok(p) => peers.push(p),
                Err(why) => skipped.push(format!("{} ({}): {why}", s.name, s.id)),
            }
        }
        trace.push(TraceStep::new(
            "nova-peers",
            skipped.is_empty(),
            std::time::Duration::ZERO,
            Some(if skipped.is_empty() {
                format!(
                    "{} canaries among {} ACTIVE servers",
                    peers.len(),
                    servers.len()
                )
            } else {
                format!(
                    "{} canaries among {} ACTIVE servers; left out: {}",
                    peers.len(),
                    servers.len(),
                    skipped.join("; ")
                )
            }),
        ));
        Ok(peers)
    }
}

impl CanaryRule {
    /// The peer a canary server stands for (`region`: its data centre
    /// when its metadata names none).
    pub fn peer_of(&self, s: &Server, region: Option<&str>) -> Result<Peer, String> {
        let value = s.metadata.get(&self.key).map(|v| v.trim()).unwrap_or("");
        let url = if value.contains("://") || value.contains(':') {
            normalise_url(value).map_err(|e| format!("metadata {:?}: {e}", self.key))?
        } else {
            let port = match value.parse::<u16>() {
                Ok(0) => return Err(format!("metadata {:?}: port 0", self.key)),
                Ok(p) => p,
                Err(_) => self.port,
            };
            let addr = self.address_of(s)?;
            let host = if addr.contains(':') {
                format!("[{addr}]")
            } else {
                addr
            };
            format!("http://{host}:{port}")
        };
        let nonempty =
            |v: Option<&String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Ok(Peer {
            url,
            id: Some(s.name.clone()),
            datacenter: nonempty(s.metadata.get("datacenter"))
                .or_else(|| region.map(str::to_string)),
            az: nonempty(s.az.as_ref()),
            udp_port: None,
        })
    }

    /// The server's address of the chosen kind (on the chosen network):
    /// IPv4 before IPv6, networks in name order.
    fn address_of(&self, s: &Server) -> Result<String, String> {
        let want = match self.address {
            AddressKind::Fixed => "fixed",
            AddressKind::Floating => "floating",
        };
        let mut found: Vec<(u8, &str)> = Vec::new();
        for (net, addrs) in &s.addresses {
            if self.network.as_ref().is_some_and(|n| n != net) {
                continue;
            }
            for a in addrs {
                // Without the extension attribute, an address is fixed.
                if a.kind.as_deref().unwrap_or("fixed") == want {
                    let v = a
                        .version
                        .unwrap_or(if a.addr.contains(':') { 6 } else { 4 });
                    found.push((v, a.addr.as_str()));
                }
            }
        }
        found.sort_by_key(|(v, _)| *v);
        match found.first() {
            Some((_, a)) => Ok(a.to_string()),
            None => Err(match &self.network {
                Some(n) => format!("no {want} address on network {n:?}"),
                None => format!("no {want} address"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DC: Option<&str> = Some("dc1");

    fn source() -> CanaryRule {
        CanaryRule {
            key: "canary".into(),
            network: None,
            address: AddressKind::Fixed,
            port: 8080,
        }
    }

    fn server(metadata: serde_json::Value, addresses: serde_json::Value) -> Server {
        serde_json::from_value(json!({
            "id": "6695eb01", "name": "canary-az2", "status": "ACTIVE",
            "OS-EXT-AZ:availability_zone": "az2", "metadata": metadata, "addresses": addresses
        }))
        .expect("server")
    }

    #[test]
    fn metadata_says_the_port_or_the_url() {
        let n = source();
        let addrs = json!({
            "b-net": [{"addr": "fd00::5", "version": 6, "OS-EXT-IPS:type": "fixed"},
                      {"addr": "203.0.113.5", "version": 4, "OS-EXT-IPS:type": "floating"}],
            "a-net": [{"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"}]
        });
        let p = n
            .peer_of(&server(json!({"canary": "9000"}), addrs.clone()), DC)
            .expect("port");
        assert_eq!(p.url, "http://10.0.0.5:9000");
        assert_eq!(p.id.as_deref(), Some("canary-az2"));
        assert_eq!(p.az.as_deref(), Some("az2"));
        assert_eq!(p.datacenter.as_deref(), Some("dc1"));
        let p = n
            .peer_of(
                &server(
                    json!({"canary": "true", "datacenter": "fra"}),
                    addrs.clone(),
                ),
                DC,
            )
            .expect("default port");
        assert_eq!(p.url, "http://10.0.0.5:8080");
        assert_eq!(p.datacenter.as_deref(), Some("fra"));
        let p = n
            .peer_of(
                &server(json!({"canary": "http://192.0.2.9:81"}), json!({})),
                DC,
            )
            .expect("url");
        assert_eq!(p.url, "http://192.0.2.9:81");
        let v6 = CanaryRule {
            network: Some("b-net".into()),
            ..source()
        };
        let p = v6
            .peer_of(&server(json!({"canary": ""}), addrs.clone()), DC)
            .expect("v6");
        assert_eq!(p.url, "http://[fd00::5]:8080");
        let floating = CanaryRule {
            address: AddressKind::Floating,
            ..source()
        };
        let p = floating
            .peer_of(&server(json!({"canary": "1"}), addrs.clone()), DC)
            .expect("fip");
        assert_eq!(p.url, "http://203.0.113.5:1");
        let e = n
            .peer_of(&server(json!({"canary": "8080"}), json!({})), DC)
            .expect_err("none");
        assert_eq!(e, "no fixed address");
        let e = n
            .peer_of(&server(json!({"canary": "https://x:1"}), addrs.clone()), DC)
            .expect_err("https");
        assert!(e.contains("plain HTTP"), "{e}");
        let e = n
            .peer_of(&server(json!({"canary": "0"}), addrs), DC)
            .expect_err("0");
        assert!(e.contains("port 0"), "{e}");
    }

    #[test]
    fn settling_dedups_leaves_itself_out_and_caps() {
        let mut me = Peer::at("127.0.0.1:1").expect("peer");
        me.id = Some("c1".into());
        let s = PeerSource {
            fixed: Vec::new(),
            nova: None,
            me: "c1".into(),
            max_peers: Some(2),
        };
        let peers = vec![
            me,
            Peer::at("127.0.0.2:1").expect("peer"),
            Peer::at("127.0.0.2:1").expect("peer"),
            Peer::at("127.0.0.3:1").expect("peer"),
            Peer::at("127.0.0.4:1").expect("peer"),
        ];
        let got = s.settle(peers);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|p| p.id.is_none()));
        assert!(s.describe().contains("peer list"));
    }
}
