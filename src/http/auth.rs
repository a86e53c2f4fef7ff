//! probe-http behind Keystone: a token (cached) sent as X-Auth-Token, the
//! URL from the service catalog, one retry with a fresh token on a 401,
//! and the whole-catalog sweep.

use std::time::Duration;

use super::targets::{self, Target};
use super::Spec;
use crate::cli::Context;
use crate::openstack::keystone::{Keystone, Token};
use crate::report::{Record, Status, TraceStep};

/// Placeholder URL of a spec whose URL comes from the catalog.
pub const CATALOG_HOST: &str = "catalog.invalid";

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthKind {
    /// No authentication (or Basic, when -a is given).
    None,
    /// Basic authentication from -a/--auth-file.
    Basic,
    /// A Keystone token as X-Auth-Token.
    Keystone,
}

/// Keystone settings of a probe.
#[derive(Debug, Clone)]
pub struct OpenStack {
    /// The client (cloud and token cache).
    pub keystone: Keystone,
    /// Probe this service type's endpoint.
    pub service: Option<String>,
    /// Probe every endpoint.
    pub all_endpoints: bool,
    /// Which interface.
    pub interface: String,
    /// Which region.
    pub region: Option<String>,
}

/// What a record is about before the catalog gave a URL: the cloud and
/// the service asked for (`compute of prod (public)`), not a placeholder.
fn catalog_target(spec: &Spec) -> String {
    match &spec.openstack {
        Some(os) if spec.url.contains(CATALOG_HOST) => format!(
            "{} of {} ({}{})",
            os.service.as_deref().unwrap_or("every endpoint"),
            os.keystone.cloud.source,
            os.interface,
            os.region
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        ),
        _ => spec.url.clone(),
    }
}

fn failed(spec: &Spec, summary: String, trace: Vec<TraceStep>) -> Record {
    let target = catalog_target(spec);
    let mut r = Record::new(super::CHECK, &target, Status::Critical, summary);
    r.name = spec.name.clone().unwrap_or(target);
    r.labels = (*spec.labels).clone();
    r.trace = trace;
    r
}

fn with_token(spec: &Spec, url: String, token: &Token) -> Spec {
    let mut s = spec.clone();
    if s.name.is_none() {
        s.name = Some(url.clone());
    }
    s.url = url;
    // The cloud's cacert and verify settings hold for its endpoints as for
    // Keystone, unless the command line says otherwise.
    if let Some(os) = &spec.openstack {
        if s.tls.ca_file.is_none() {
            s.tls.ca_file.clone_from(&os.keystone.cloud.cacert);
        }
        s.tls.insecure |= os.keystone.cloud.insecure;
    }
    s.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("x-auth-token"));
    s.headers
        .push(("X-Auth-Token".into(), token.id.expose().to_string()));
    s
}

/// The path and query given with `-u` for a catalog URL (empty for `/`).
fn catalog_path(spec: &Spec) -> &str {
    let rest = spec
        .url
        .split_once(CATALOG_HOST)
        .map(|(_, rest)| rest)
        .unwrap_or("");
    // A port given with -p stays out: the catalog says where the service is.
    let rest = rest
        .strip_prefix(':')
        .map_or(rest, |r| r.find(['/', '?']).map_or("", |i| &r[i..]));
    if rest == "/" {
        ""
    } else {
        rest
    }
}

fn endpoint_url(os: &OpenStack, token: &Token, spec: &Spec) -> Result<String, String> {
    match &os.service {
        None => Ok(spec.url.clone()),
        Some(service) => token
            .endpoint(service, &os.interface, os.region.as_deref())
            .map(|base| {
                // -u PATH (and a query) goes onto the endpoint's own path.
                let path = catalog_path(spec);
                if path.is_empty() {
                    base
                } else if path.starts_with('?') {
                    format!("{base}{path}")
                } else {
                    format!("{}{path}", base.trim_end_matches('/'))
                }
            })
            .ok_or_else(|| {
                let mut types: Vec<&str> = token.catalog.iter().map(|s| s.kind.as_str()).collect();
                types.sort_unstable();
                types.dedup();
                format!(
                "no {service} endpoint for interface {} in region {} in the catalog (it has: {})",
                os.interface,
                os.region.as_deref().unwrap_or("any"),
                types.join(", ")
            )
            }),
    }
}

/// One probe with a Keystone token. Without Keystone settings, a plain probe.
pub fn probe(spec: &Spec, ctx: &Context) -> Record {
    let Some(os) = &spec.openstack else {
        return super::probe(spec, ctx);
    };
    // Tokens in memory are the round's, shared by all its targets.
    let keystone = os.keystone.in_round(&ctx.round);
    let mut trace = Vec::new();
    let mut token = match keystone.token(ctx.deadline, &mut trace) {
        Ok(t) => t,
        Err(e) => return failed(spec, e.to_string(), trace),
    };
    let url = match endpoint_url(os, &token, spec) {
        Ok(u) => u,
        Err(_) if token.earlier_run => {
            // A catalog cached by an earlier run may predate the service:
            // a fresh token (and catalog) once, before saying it is missing.
            keystone.invalidate();
            trace.push(TraceStep::new(
                "keystone",
                true,
                Duration::ZERO,
                Some(
                    "the service is not in the cached catalog; asking Keystone for a new token"
                        .into(),
                ),
            ));
            token = match keystone.token(ctx.deadline, &mut trace) {
                Ok(t) => t,
                Err(e) => return failed(spec, e.to_string(), trace),
            };
            match endpoint_url(os, &token, spec) {
                Ok(u) => u,
                Err(e) => return failed(spec, e, trace),
            }
        }
        Err(e) => return failed(spec, e, trace),
    };
    let first = super::probe_outcome(&with_token(spec, url.clone(), &token), ctx);
    let mut record = first.record;
    if token.from_cache && first.status_code == Some(401) {
        // The cached token was revoked or the keys rotated: once more with a new one.
        keystone.invalidate();
        trace.push(TraceStep::new(
            "keystone",
            true,
            Duration::ZERO,
            Some("401 with the cached token; asking Keystone for a new one".into()),
        ));
        match keystone.token(ctx.deadline, &mut trace) {
            Ok(fresh) => record = super::probe(&with_token(spec, url, &fresh), ctx),
            Err(e) => return failed(spec, e.to_string(), trace),
        }
    }
    trace.append(&mut record.trace);
    record.trace = trace;
    record
}

/// Probe every endpoint of the catalog (for the interface, or all).
pub fn sweep(spec: &Spec, ctx: &Context, concurrency: usize) -> Vec<Record> {
    let Some(os) = &spec.openstack else {
        return vec![super::probe(spec, ctx)];
    };
    // Tokens in memory are the round's, shared by all its targets.
    let keystone = os.keystone.in_round(&ctx.round);
    let mut trace = Vec::new();
    let mut token = match keystone.token(ctx.deadline, &mut trace) {
        Ok(t) => t,
        Err(e) => return vec![failed(spec, e.to_string(), trace)],
    };
    if token.earlier_run {
        // The sweep is of the catalog as it is now, not as an earlier run
        // cached it: services registered since are swept too.
        keystone.invalidate();
        token = match keystone.token(ctx.deadline, &mut trace) {
            Ok(t) => t,
            Err(e) => return vec![failed(spec, e.to_string(), trace)],
        };
    }
    let mut list: Vec<Target> = Vec::new();
    for service in &token.catalog {
        for e in &service.endpoints {
            if os.interface != "all" && e.interface != os.interface {
                continue;
            }
            if os.region.as_deref().is_some_and(|r| {
                e.region.as_deref() != Some(r) && e.region_id.as_deref() != Some(r)
            }) {
                continue;
            }
            let name = format!(
                "{} {} {}",
                service.name.as_deref().unwrap_or(&service.kind),
                e.interface,
                e.region
                    .as_deref()
                    .or(e.region_id.as_deref())
                    .unwrap_or("-")
            );
            let mut s = with_token(spec, e.url.clone(), &token);
            s.name = Some(name.clone());
            s.openstack = None;
            let labels = std::sync::Arc::make_mut(&mut s.labels);
            labels.insert("service_type".into(), service.kind.clone());
            labels.insert("interface".into(), e.interface.clone());
            list.push(Target {
                name,
                spec: s,
                enabled: true,
            });
        }
    }
    if list.is_empty() {
        return vec![failed(
            spec,
            format!("no endpoint for interface {} in the catalog", os.interface),
            trace,
        )];
    }
    let refs: Vec<&Target> = list.iter().collect();
    targets::run_all(&refs, ctx, concurrency)
}
