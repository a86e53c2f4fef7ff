//! probe-host: is a host alive? TCP ports on every host at once and ICMP
//! echo, in one event loop each (`net::scan`, `net::icmp`), one record per
//! host. This module holds what the flags and the hosts file parse into.

pub mod cli;
pub mod signals;
pub mod tcp;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::cli::UsageError;
use crate::threshold::Range;

/// Parse a port list: `22,111,16509`, ranges `8000-8010` (or `8000:8010`).
/// Duplicates are kept once, in the order first given.
pub fn parse_ports(text: &str) -> Result<Vec<u16>, String> {
    let port = |part: &str| -> Result<u16, String> {
        let value: u32 = part
            .trim()
            .parse()
            .map_err(|_| format!("port {:?} in {text:?} is not a number", part.trim()))?;
        if value == 0 || value > 65_535 {
            return Err(format!("port {value} in {text:?} is outside 1-65535"));
        }
        Ok(value as u16)
    };
    let mut ports = Vec::new();
    for part in text.split(',') {
        if part.trim().is_empty() {
            return Err(format!("empty port in {text:?}"));
        }
        let (from, to) = match part.split_once(['-', ':']) {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(part)?;
                (p, p)
            }
        };
        if from > to {
            return Err(format!("port range {:?} runs backwards", part.trim()));
        }
        for p in from..=to {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
    }
    Ok(ports)
}

/// One host to probe, from `-H` or the hosts file.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// Name in records.
    pub name: String,
    /// Name or address to resolve.
    pub address: String,
    /// Ports of its own (else the `-p` ones).
    pub ports: Option<Vec<u16>>,
    /// Its labels (joined with `--label`).
    pub labels: BTreeMap<String, String>,
    /// With --verdict: its other networks, by name (the address above is on
    /// the management network).
    pub networks: BTreeMap<String, String>,
    /// Its name in Nova and Neutron (`host` of its services), if not `name`.
    pub service_host: Option<String>,
    /// Its node name in Pacemaker, if not `name`.
    pub cluster_node: Option<String>,
    /// Its BMC's address, for `--bmc-command`'s `{bmc}`.
    pub bmc: Option<String>,
    /// ICMP echo for this host or not (`icmp = false` in the hosts file),
    /// whatever `--icmp` says for the rest.
    pub icmp: Option<bool>,
}

impl HostSpec {
    /// A host named by its address.
    pub fn plain(address: &str) -> HostSpec {
        HostSpec {
            name: address.to_string(),
            address: address.to_string(),
            ports: None,
            labels: BTreeMap::new(),
            networks: BTreeMap::new(),
            service_host: None,
            cluster_node: None,
            bmc: None,
            icmp: None,
        }
    }

    /// Its name in Nova and Neutron.
    pub fn service_name(&self) -> &str {
        self.service_host.as_deref().unwrap_or(&self.name)
    }

    /// Its zone, from the labels `zone` or `az`.
    pub fn zone(&self) -> Option<&str> {
        self.labels
            .get("zone")
            .or_else(|| self.labels.get("az"))
            .map(String::as_str)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    #[serde(default)]
    host: Vec<HostEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    name: Option<String>,
    address: Option<String>,
    ports: Option<PortsValue>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    networks: BTreeMap<String, String>,
    nova_host: Option<String>,
    cluster_node: Option<String>,
    bmc: Option<String>,
    icmp: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortsValue {
    List(Vec<i64>),
    Text(String),
}

/// Read a hosts file: TOML (`[[host]]` with `name`, `address`, `ports`,
/// `labels`) when it ends in `.toml` or holds a `[[host]]` table, else
/// plain text, one host per line, `#` comments.
pub fn read_hosts(path: &Path) -> Result<Vec<HostSpec>, UsageError> {
    let shown = path.display();
    let text = crate::files::read_text(path, 16 * 1024 * 1024)
        .map_err(|e| UsageError::new(format!("hosts file {shown}: {e}")))?;
    let toml_like = path.extension().is_some_and(|e| e == "toml")
        || text.lines().any(|l| l.trim_start().starts_with("[[host]]"));
    if !toml_like {
        let mut hosts = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.contains(char::is_whitespace) || line.contains(['=', '"']) {
                return Err(UsageError::new(format!(
                    "hosts file {shown} line {}: {line:?} is not one host name or address",
                    n + 1
                )));
            }
            hosts.push(HostSpec::plain(line));
        }
        return Ok(hosts);
    }
    let file: HostsFile = toml::from_str(&text).map_err(|e| {
        UsageError::new(format!(
            "hosts file {shown} {}",
            crate::files::toml_words(&e, &text)
        ))
    })?;
    let mut hosts = Vec::new();
    for (i, entry) in file.host.into_iter().enumerate() {
        let which = |what: &str| format!("hosts file {shown}: host {} {what}", i + 1);
        let address = match (entry.address, &entry.name) {
            (Some(a), _) => a,
            (None, Some(n)) => n.clone(),
            (None, None) => return Err(UsageError::new(which("has neither name nor address"))),
        };
        if address.trim().is_empty() {
            return Err(UsageError::new(which("has an empty address")));
        }
        let ports = match entry.ports {
            None => None,
            Some(PortsValue::Text(t)) => {
                Some(parse_ports(&t).map_err(|e| UsageError::new(which(&e)))?)
            }
            Some(PortsValue::List(list)) => {
                let text = list
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                if list.is_empty() {
                    Some(Vec::new())
                } else {
                    Some(parse_ports(&text).map_err(|e| UsageError::new(which(&e)))?)
                }
            }
        };
        for (net, a) in &entry.networks {
            if net.trim().is_empty() || a.trim().is_empty() || a.contains(char::is_whitespace) {
                return Err(UsageError::new(which(&format!(
                    "network {net:?} = {a:?} is not a name and one address"
                ))));
            }
        }
        hosts.push(HostSpec {
            name: entry.name.unwrap_or_else(|| address.clone()),
            address,
            ports,
            labels: entry.labels,
            networks: entry.networks,
            service_host: entry.nova_host,
            cluster_node: entry.cluster_node,
            bmc: entry.bmc,
            icmp: entry.icmp,
        });
    }
    if hosts.is_empty() {
        return Err(UsageError::new(format!(
            "hosts file {shown}: no [[host]] in it"
        )));
    }
    Ok(hosts)
}

/// check_icmp's threshold form, `RTA,PL%` (`200,40%`, `200ms,40%`,
/// `0.2s,40%`, or one of the two): round-trip average in milliseconds
/// unless a unit says otherwise, and packet loss in percent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcmpLimit {
    /// Round-trip average that alerts (ms), as a Nagios range.
    pub rta: Option<Range>,
    /// Loss that alerts (%), as a Nagios range.
    pub pl: Option<Range>,
}

/// Parse `RTA,PL%`.
pub fn parse_icmp_limit(text: &str) -> Result<IcmpLimit, String> {
    let mut limit = IcmpLimit::default();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("{text:?}: empty part (RTA,PL% like 200,40%)"));
        }
        let number = |t: &str, what: &str| -> Result<f64, String> {
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{text:?}: {t:?} is not a {what} (RTA,PL% like 200,40%)"))
        };
        if let Some(pl) = part.strip_suffix('%') {
            let v = number(pl, "percentage")?;
            limit.pl = Some(Range::parse(&crate::render::number(v)).map_err(|e| e.to_string())?);
        } else {
            let ms = if let Some(v) = part.strip_suffix("ms") {
                number(v, "time")?
            } else if let Some(v) = part.strip_suffix("us") {
                number(v, "time")? / 1000.0
            } else if let Some(v) = part.strip_suffix('s') {
                number(v, "time")? * 1000.0
            } else {
                number(part, "time")?
            };
            limit.rta = Some(Range::parse(&crate::render::number(ms)).map_err(|e| e.to_string())?);
        }
    }
    Ok(limit)
}

/// `WARN,CRIT` for a figure where lower is worse (MOS, score): each
/// alerts when the value falls below it.
pub fn parse_low_pair(text: &str) -> Result<(Range, Range), String> {
    let (w, c) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?} is not WARN,CRIT"))?;
    let low = |v: &str| -> Result<Range, String> {
        let n: f64 = v
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(|| format!("{text:?}: {:?} is not a number", v.trim()))?;
        Range::parse(&format!("{}:", crate::render::number(n))).map_err(|e| e.to_string())
    };
    Ok((low(w)?, low(c)?))
}

/// `WARN,CRIT` for a figure where higher is worse (jitter, ms).
pub fn parse_high_pair(text: &str) -> Result<(Range, Range), String> {
    let (w, c) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?} is not WARN,CRIT"))?;
    let high = |v: &str| Range::parse(v.trim()).map_err(|e| e.to_string());
    Ok((high(w)?, high(c)?))
}

/// check_tcp's `-E`: `\n`, `\r`, `\t`, `\\` (and `\0`) in send and quit strings.
pub fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => return Err(format!("{text:?}: unknown escape \\{other}")),
            None => return Err(format!("{text:?}: ends in a lone backslash")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_take_lists_and_ranges() {
        assert_eq!(
            parse_ports("22,111,16509").expect("ok"),
            vec![22, 111, 16509]
        );
        assert_eq!(
            parse_ports("8000-8002,22,8001").expect("ok"),
            vec![8000, 8001, 8002, 22]
        );
        assert_eq!(parse_ports("2:3").expect("ok"), vec![2, 3]);
        for bad in ["0", "70000", "3:2", "a", "22,", "", "5-"] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
        assert!(parse_ports("3:2")
            .expect_err("an error")
            .contains("backwards"));
    }

    #[test]
    fn icmp_limits_read_check_icmp_form() {
        let l = parse_icmp_limit("200,40%").expect("ok");
        assert_eq!(l.rta.expect("rta").as_str(), "200");
        assert_eq!(l.pl.expect("pl").as_str(), "40");
        let l = parse_icmp_limit("0.5s").expect("ok");
        assert_eq!(l.rta.expect("rta").as_str(), "500");
        assert!(l.pl.is_none());
        assert_eq!(
            parse_icmp_limit("80%")
                .expect("ok")
                .pl
                .expect("pl")
                .as_str(),
            "80"
        );
        for bad in ["", "x,40%", "200,x%", "-1", "200,,"] {
            assert!(parse_icmp_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pairs_and_escapes() {
        let (w, c) = parse_low_pair("3.5,3").expect("ok");
        assert!(w.alerts(3.4) && !w.alerts(4.0) && c.alerts(2.9));
        assert!(parse_low_pair("3").is_err());
        let (w, _) = parse_high_pair("40,80").expect("ok");
        assert!(w.alerts(41.0));
        assert_eq!(unescape("QUIT\\r\\n").expect("ok"), "QUIT\r\n");
        assert!(unescape("a\\q").is_err());
    }

    #[test]
    fn hosts_files_plain_and_toml() {
        let dir = std::env::temp_dir().join(format!("skyprobe-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let plain = dir.join("hosts.txt");
        std::fs::write(
            &plain,
            "# computes\n10.0.0.1\n\ncompute-2.example  # rack 4\n",
        )
        .expect("write");
        let hosts = read_hosts(&plain).expect("ok");
        assert_eq!(
            hosts,
            vec![
                HostSpec::plain("10.0.0.1"),
                HostSpec::plain("compute-2.example")
            ]
        );
        std::fs::write(&plain, "10.0.0.1 22\n").expect("write");
        let e = read_hosts(&plain).expect_err("an error").0;
        assert!(e.contains("line 1"), "{e}");
        let toml = dir.join("hosts.toml");
        std::fs::write(
            &toml,
            "[[host]]\nname = \"c1\"\naddress = \"10.0.0.1\"\nports = [22, 16509]\nlabels = { az = \"a\" }\n[[host]]\nname = \"10.0.0.2\"\nports = \"22,8000-8001\"\n",
        )
        .expect("write");
        let hosts = read_hosts(&toml).expect("ok");
        assert_eq!(hosts[0].ports, Some(vec![22, 16509]));
        assert_eq!(hosts[0].labels.get("az").map(String::as_str), Some("a"));
        assert_eq!(hosts[1].address, "10.0.0.2");
        assert_eq!(hosts[1].ports, Some(vec![22, 8000, 8001]));
        std::fs::write(&toml, "[[host]]\nname = \"c1\"\nports = [0]\n").expect("write");
        assert!(read_hosts(&toml)
            .expect_err("an error")
            .0
            .contains("host 1"));
        std::fs::write(&toml, "[[host]]\nnmae = \"c1\"\n").expect("write");
        let e = read_hosts(&toml).expect_err("an error").0;
        assert!(e.contains("hosts.toml") && e.contains("nmae"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
