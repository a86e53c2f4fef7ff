//! probe-http behind Keystone: a token (cached) sent as X-Auth-Token, the
//! URL from the service catalog, one retry with a fresh token on a 401,
//! and the whole-catalog sweep.

use super::{Spec, Target};
use crate::cli::Context;
use crate::openstack::client::{join, OsError, Session};
use crate::openstack::keystone::Token;
use crate::report::{Record, TraceStep};

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
    /// The cloud's session (Keystone, interface — `all` for a sweep —,
    /// region, endpoint overrides).
    pub session: Session,
    /// Probe this service type's endpoint.
    pub service: Option<String>,
    /// Probe every endpoint.
    pub all_endpoints: bool,
}

/// What a record is about before the catalog gave a URL: the cloud and
/// the service asked for (`compute of prod (public)`), not a placeholder.
fn catalog_target(spec: &Spec) -> String {
    match &spec.openstack {
        Some(os) if spec.url.contains(CATALOG_HOST) => format!(
            "{} of {} ({}{})",
            os.service.as_deref().unwrap_or("every endpoint"),
            os.session.keystone.cloud.source,
            os.session.interface,
            os.session
                .region
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        ),
        _ => spec.url.clone(),
    }
}

fn failed(spec: &Spec, why: &OsError, trace: Vec<TraceStep>) -> Record {
    let target = catalog_target(spec);
    // Credentials Keystone refuses are the monitor's: UNKNOWN; a Keystone
    // or service that is down or missing: CRITICAL.
    let mut r = Record::new(super::CHECK, &target, why.status(), why.to_string());
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
        let cloud = &os.session.keystone.cloud;
        if s.tls.ca_file.is_none() {
            s.tls.ca_file.clone_from(&cloud.cacert);
        }
        s.tls.insecure |= cloud.insecure;
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

/// Where the probe goes and the token to send: the catalog's endpoint of
/// the service (with `-u`'s path and query on it), or the URL given.
fn target_url(
    os: &OpenStack,
    session: &Session,
    spec: &Spec,
    ctx: &Context,
    trace: &mut Vec<TraceStep>,
) -> Result<(String, Token), OsError> {
    match &os.service {
        None => Ok((spec.url.clone(), session.token(ctx.deadline, trace)?)),
        Some(service) => {
            let (base, token) = session.endpoint(service, ctx.deadline, trace)?;
            Ok((join(&base, catalog_path(spec)), token))
        }
    }
}

/// One probe with a Keystone token. Without Keystone settings, a plain probe.
pub fn probe(spec: &Spec, ctx: &Context) -> Record {
    let Some(os) = &spec.openstack else {
        return super::probe(spec, ctx);
    };
    // Tokens in memory are the round's, shared by all its targets.
    let session = os.session.in_round(&ctx.round);
    let mut trace = Vec::new();
    let (url, token) = match target_url(os, &session, spec, ctx, &mut trace) {
        Ok(found) => found,
        Err(e) => return failed(spec, &e, trace),
    };
    let probed =
        session.fresh_token_on_401(&url, token, ctx.deadline, &mut trace, |url, token, _| {
            let outcome = super::probe_outcome(&with_token(spec, url.to_string(), token), ctx);
            let unauthorized = outcome.status_code == Some(401);
            (outcome.record, unauthorized)
        });
    let mut record = match probed {
        Ok(r) => r,
        Err(e) => return failed(spec, &e, trace),
    };
    trace.append(&mut record.trace);
    record.trace = trace;
    record
}

/// Every endpoint of the catalog (for the interface, or all) as a target
/// to probe, each with the token; or the record of why there are none.
pub fn sweep(spec: &Spec, ctx: &Context) -> Result<Vec<Target>, Box<Record>> {
    let Some(os) = &spec.openstack else {
        return Ok(vec![Target {
            name: spec.display_name().to_string(),
            spec: spec.clone(),
            enabled: true,
        }]);
    };
    // Tokens in memory are the round's, shared by all its targets.
    let session = os.session.in_round(&ctx.round);
    let mut trace = Vec::new();
    let mut token = match session.token(ctx.deadline, &mut trace) {
        Ok(t) => t,
        Err(e) => return Err(Box::new(failed(spec, &e, trace))),
    };
    if token.earlier_run {
        // The sweep is of the catalog as it is now, not as an earlier run
        // cached it: services registered since are swept too.
        session.keystone.invalidate();
        token = match session.token(ctx.deadline, &mut trace) {
            Ok(t) => t,
            Err(e) => return Err(Box::new(failed(spec, &e, trace))),
        };
    }
    let mut list: Vec<Target> = Vec::new();
    for service in &token.catalog {
        for e in &service.endpoints {
            if session.interface != "all" && e.interface != session.interface {
                continue;
            }
            if session.region.as_deref().is_some_and(|r| {
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
        let mut types: Vec<&str> = token.catalog.iter().map(|s| s.kind.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        let none = OsError::NoEndpoint {
            service: "any".into(),
            interface: session.interface.clone(),
            region: session.region.clone().unwrap_or_else(|| "any".into()),
            has: types.join(", "),
        };
        return Err(Box::new(failed(spec, &none, trace)));
    }
    Ok(list)
}
