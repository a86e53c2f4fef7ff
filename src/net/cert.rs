//! Certificate facts: what a probe reports of a chain a server presented,
//! whether or not it verified (expiry is worth knowing either way).

use std::time::{SystemTime, UNIX_EPOCH};

/// One certificate of the chain the server presented.
#[derive(Debug, Clone, PartialEq)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Expiry, seconds since the epoch.
    pub not_after: i64,
    /// Subject alternative names: DNS names and IP addresses.
    pub sans: Vec<String>,
}

impl CertInfo {
    /// Days until expiry from `now` (negative once expired).
    pub fn days_left(&self, now: SystemTime) -> f64 {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        (self.not_after as f64 - now) / 86_400.0
    }
}

/// The facts of a presented chain, leaf first (certificates that do not
/// parse are left out).
pub fn chain_facts(
    end_entity: &rustls::pki_types::CertificateDer<'_>,
    intermediates: &[rustls::pki_types::CertificateDer<'_>],
) -> Vec<CertInfo> {
    std::iter::once(end_entity)
        .chain(intermediates.iter())
        .filter_map(|c| cert_info(c.as_ref()))
        .collect()
}

/// Parse a DER certificate into what a probe reports; `None` when it is
/// not a certificate.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    GeneralName::IPAddress(b) => ip_words(b),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.timestamp(),
        sans,
    })
}

fn ip_words(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// The certificate of a chain that expires first (the one that decides
/// how long the chain is good for), if any.
pub fn first_to_expire<'a>(chain: impl IntoIterator<Item = &'a CertInfo>) -> Option<&'a CertInfo> {
    chain.into_iter().min_by_key(|c| c.not_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(names: Vec<String>, until: (i32, u8, u8), cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(names).expect("params");
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn facts_of_a_certificate() {
        let der = make(
            vec!["api.example".into(), "127.0.0.1".into(), "::1".into()],
            (2090, 1, 1),
            "api.example",
        );
        let c = cert_info(&der).expect("parses");
        assert_eq!(c.subject, "CN=api.example");
        assert_eq!(c.issuer, "CN=api.example", "self-signed");
        assert_eq!(c.sans, ["api.example", "127.0.0.1", "::1"]);
        // 2089-01-01T00:00:00Z, a year before it expires.
        let at_2089 = UNIX_EPOCH + std::time::Duration::from_secs(3_755_289_600);
        let days = c.days_left(at_2089);
        assert!((360.0..=370.0).contains(&days), "{days}");
        assert!(c.days_left(SystemTime::now()) > 0.0);
    }

    #[test]
    fn the_first_to_expire_decides_and_garbage_is_none() {
        let soon = cert_info(&make(vec!["a".into()], (2030, 1, 1), "soon")).expect("cert");
        let late = cert_info(&make(vec!["b".into()], (2080, 1, 1), "late")).expect("cert");
        let chain = [late.clone(), soon.clone()];
        assert_eq!(first_to_expire(&chain), Some(&soon));
        assert_eq!(first_to_expire(&[]), None);
        assert_eq!(cert_info(b"not a certificate"), None);
    }
}
