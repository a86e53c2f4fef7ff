//! Helpers: run a binary, decode its records strictly, and loopback servers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skyprobe::report::Record;

/// What a run of a binary left behind.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// Every stdout line decoded as a record; unknown fields are errors
    /// (`Record` denies them), so schema drift fails here.
    pub fn records(&self) -> Vec<Record> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Record>(l).unwrap_or_else(|e| panic!("bad record {l}: {e}"))
            })
            .collect()
    }

    /// The only record.
    pub fn record(&self) -> Record {
        let mut all = self.records();
        assert_eq!(
            all.len(),
            1,
            "want one record, stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        all.remove(0)
    }
}

/// Run `bin` with `args`, stdin closed, in a clean format environment.
pub fn run(bin: &str, args: &[&str]) -> Run {
    run_env(bin, args, &[])
}

/// Run with extra environment variables.
pub fn run_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("SKYPROBE_FORMAT")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null());
    execute(cmd, env, started)
}

pub fn execute(mut cmd: Command, env: &[(&str, &str)], started: Instant) -> Run {
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

pub const PROBE_HTTP: &str = env!("CARGO_BIN_EXE_probe-http");

/// A parsed request as the test server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub type Handler = Arc<dyn Fn(&Request, &mut dyn Stream) + Send + Sync>;

pub fn read_request(stream: &mut dyn Stream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Write a complete response.
pub fn respond(stream: &mut dyn Stream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A loopback HTTP server running `handler` for each request, one thread
/// per connection. It lives as long as the test process.
pub struct Server {
    pub addr: SocketAddr,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{}", self.addr, path)
    }
}

pub fn http_server(handler: Handler) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                if let Some(req) = read_request(&mut conn) {
                    handler(&req, &mut conn);
                }
            });
        }
    });
    Server { addr }
}

/// A server that accepts connections and never says anything.
pub fn silent_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    Server { addr }
}

/// A loopback HTTPS server with the given certificate chain and key (PEM).
pub fn https_server(cert_pem: &str, key_pem: &str, handler: Handler) -> Server {
    https_server_with(cert_pem, key_pem, handler, rustls::DEFAULT_VERSIONS, None)
}

/// An HTTPS server limited to `versions`, requiring a client certificate
/// signed by `client_ca_pem` when one is given.
pub fn https_server_with(
    cert_pem: &str,
    key_pem: &str,
    handler: Handler,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_ca_pem: Option<&str>,
) -> Server {
    let config = tls_server_config(cert_pem, key_pem, versions, client_ca_pem);
    serve_tls("127.0.0.1:0", config, handler).expect("bind")
}

/// A rustls server configuration (its session cache included, so two
/// servers given one configuration resume each other's sessions).
pub fn tls_server_config(
    cert_pem: &str,
    key_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_ca_pem: Option<&str>,
) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .expect("versions");
    let builder = match client_ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(c.expect("ca")).expect("add ca");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).expect("server config");
    Arc::new(config)
}

/// Serve HTTPS with `config` on `bind`; `None` when the address is taken.
pub fn serve_tls(
    bind: &str,
    config: Arc<rustls::ServerConfig>,
    handler: Handler,
) -> Option<Server> {
    let listener = TcpListener::bind(bind).ok()?;
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let handler = Arc::clone(&handler);
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(tls) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut stream = rustls::StreamOwned::new(tls, conn);
                if let Some(req) = read_request(&mut stream) {
                    handler(&req, &mut stream);
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                }
            });
        }
    });
    Some(Server { addr })
}

/// Certificates made by the test.
pub struct Certs {
    pub ca_pem: String,
    pub chain_pem: String,
    pub key_pem: String,
    /// A client certificate and key signed by the same CA (CA-signed sets only).
    pub client: Option<(String, String)>,
}

fn leaf_params(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> rcgen::CertificateParams {
    let mut p =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("params");
    p.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    p
}

/// A CA and a leaf for localhost/127.0.0.1 signed by it, valid until `until`.
pub fn ca_signed(until: (i32, u8, u8)) -> Certs {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "skyprobe test CA");
    ca_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = leaf_params((2020, 1, 1), until)
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("leaf");
    let client_key = rcgen::KeyPair::generate().expect("key");
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "skyprobe test client");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params
        .signed_by(&client_key, &ca, &ca_key)
        .expect("client");
    Certs {
        ca_pem: ca.pem(),
        chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
        key_pem: leaf_key.serialize_pem(),
        client: Some((client.pem(), client_key.serialize_pem())),
    }
}

/// A self-signed certificate for localhost/127.0.0.1.
pub fn self_signed(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Certs {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = leaf_params(not_before, not_after)
        .self_signed(&key)
        .expect("cert");
    Certs {
        ca_pem: cert.pem(),
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        client: None,
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("skyprobe-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The step of a record's trace with this name, if any.
pub fn step<'a>(r: &'a Record, name: &str) -> Option<&'a skyprobe::report::TraceStep> {
    r.trace.iter().find(|s| s.step == name)
}

/// Whether we may create network namespaces here (root with `ip`). As
/// root, a test that needs them fails rather than skips when they do not
/// work: a skipped test in CI (which runs as root) would hide breakage.
pub fn can_netns() -> bool {
    needs_root(
        "ip netns",
        Command::new("ip")
            .args(["netns", "list"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    )
}

/// For a test that needs root and `tool`: true to go on; as another user,
/// false (the test says it is skipped); as root without the tool working,
/// a failure.
/// Whether `tool` is on PATH; without it the test says it is skipped,
/// unless the suite demands its tools (scripts/test.sh sets
/// SKYPROBE_REQUIRE_TOOLS=1, so there a missing tool fails).
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("SKYPROBE_REQUIRE_TOOLS").is_none(),
            "SKYPROBE_REQUIRE_TOOLS is set but {tool} is not installed"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

/// A child killed and reaped on drop, also when the test fails half-way.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `url` within 10 s: its status and body, or None when nothing
/// answers (for polling a service that is starting).
pub fn try_get(url: &str) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(url).call().ok()?;
    let code = resp.status().as_u16();
    Some((code, resp.body_mut().read_to_string().ok()?))
}

pub fn needs_root(tool: &str, tool_works: bool) -> bool {
    if !nix_is_root() {
        eprintln!("skipped: needs root ({tool})");
        return false;
    }
    assert!(tool_works, "running as root, but {tool} does not work here");
    true
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A network namespace made by the test, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("skyprobe-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip");
        assert!(ok.success(), "ip netns add {name}");
        Netns(name)
    }

    pub fn exec(&self, args: &[&str]) {
        let ok = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .status()
            .expect("ip netns exec");
        assert!(ok.success(), "ip netns exec {} {args:?}", self.0);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Run with an empty environment but PATH (as Nagios runs plugins) plus `env`.
pub fn run_clean(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    execute(cmd, env, started)
}

/// A running binary whose records are read as they come.
pub struct Streaming {
    pub child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Streaming {
    pub fn start(bin: &str, args: &[&str]) -> Streaming {
        let mut child = Command::new(bin)
            .args(args)
            .env_remove("SKYPROBE_FORMAT")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        Streaming {
            child,
            lines: std::io::BufRead::lines(std::io::BufReader::new(stdout)),
        }
    }

    /// The next `n` records.
    pub fn records(&mut self, n: usize) -> Vec<Record> {
        (0..n)
            .map(|_| {
                let line = self.lines.next().expect("a record").expect("read");
                serde_json::from_str(&line).expect("a record")
            })
            .collect()
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replace a file the way editors save: a new file renamed over the old.
pub fn replace_file(path: &str, text: &str) {
    let tmp = format!("{path}.new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The `KEY=VALUE` lines of the env file a start script wrote, named by
/// the variable `var`. Without it: None (the test says it is skipped), or
/// a failure when `require` is set (CI).
pub fn env_file(
    var: &str,
    require: &str,
    what: &str,
    how: &str,
) -> Option<std::collections::HashMap<String, String>> {
    let Ok(path) = std::env::var(var) else {
        assert!(
            std::env::var_os(require).is_none(),
            "{require} is set but no {what} is running ({how})"
        );
        eprintln!("skipped: no {what} ({how}; set {var}=DIR/env)");
        return None;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{var}={path}: {e}"));
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The real Nova and Neutron (scripts/openstack.sh, from SKYPROBE_OPENSTACK_ENV).
pub struct Stack {
    vars: std::collections::HashMap<String, String>,
}

impl Stack {
    pub fn get() -> Option<Stack> {
        let vars = env_file(
            "SKYPROBE_OPENSTACK_ENV",
            "SKYPROBE_REQUIRE_OPENSTACK",
            "OpenStack",
            "scripts/openstack.sh start DIR KEYSTONE_ENV",
        )?;
        Some(Stack { vars })
    }

    pub fn var(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{k}"))
    }

    pub fn env<'a>(&'a self, cache: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("OS_AUTH_URL", self.var("KEYSTONE_URL")),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", self.var("KEYSTONE_ADMIN_PASSWORD")),
            ("OS_PROJECT_NAME", "admin"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_DOMAIN_NAME", "Default"),
            ("SKYPROBE_CACHE_DIR", cache),
        ]
    }

    /// Boot a server with no network on `host` (the fake driver), ACTIVE
    /// within a minute; its id.
    pub fn boot_on(&self, host: &str) -> String {
        self.boot(&format!("vd-{host}"), host, &serde_json::json!({}))
    }

    /// Run `script` under Debian's python3 after a prelude that logs in as
    /// admin: `t` (the token), `nova` (its URL), `h` (headers at 2.53) and
    /// `call(url, method, body)`; the script's own arguments are
    /// `sys.argv[1:]`.
    fn python(&self, script: &str, args: &[&str]) -> std::process::Output {
        const PRELUDE: &str = r#"
import json, sys, time, urllib.request
ks, pw = sys.argv[1:3]
del sys.argv[1:3]
def call(url, method="GET", body=None, token=None, mv="2.53"):
    h = {"Content-Type": "application/json", "OpenStack-API-Version": "compute " + mv}
    if token: h["X-Auth-Token"] = token
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None, headers=h)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers.get("X-Subject-Token"), json.loads(r.read() or b"{}")
t, body = call(ks + "/auth/tokens", "POST", {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": pw}}},
    "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
nova = [e for e in body["token"]["catalog"] if e["type"] == "compute"][0]["endpoints"][0]["url"]
h = {"X-Auth-Token": t, "Content-Type": "application/json", "OpenStack-API-Version": "compute 2.53"}
"#;
        Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(format!("{PRELUDE}{script}"))
            .args([
                self.var("KEYSTONE_URL"),
                self.var("KEYSTONE_ADMIN_PASSWORD"),
            ])
            .args(args)
            .output()
            .expect("python3")
    }

    /// Boot server `name` with no network and `metadata` on `host` (the
    /// fake driver), ACTIVE within a minute; its id.
    pub fn boot(&self, name: &str, host: &str, metadata: &serde_json::Value) -> String {
        self.boot_with(
            name,
            host,
            metadata,
            self.var("OS_IMAGE_ID"),
            self.var("OS_FLAVOR_ID"),
        )
    }

    /// A flavor whose extra specs and an image whose properties carry
    /// `key=value` (made once per call; the test names them): their ids.
    pub fn tagged_flavor_and_image(&self, name: &str, key: &str, value: &str) -> (String, String) {
        let script = r#"
name, key, value = sys.argv[1:4]
glance = [e for e in body["token"]["catalog"] if e["type"] == "image"][0]["endpoints"][0]["url"]
_, fl = call(nova + "/flavors", "POST", {"flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 0}}, t)
fid = fl["flavor"]["id"]
call(nova + "/flavors/" + fid + "/os-extra_specs", "POST", {"extra_specs": {key: value}}, t)
_, img = call(glance + "/v2/images", "POST", {"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "public", key: value}, t)
req = urllib.request.Request(glance + "/v2/images/%s/file" % img["id"], method="PUT", data=b"\0" * 1024,
    headers={"X-Auth-Token": t, "Content-Type": "application/octet-stream"})
urllib.request.urlopen(req, timeout=30)
for _ in range(60):
    _, i = call(glance + "/v2/images/" + img["id"], token=t)
    if i["status"] == "active":
        break
    time.sleep(0.5)
print(fid, img["id"])
"#;
        let out = self.python(script, &[name, key, value]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut ids = text.split_whitespace().map(str::to_string);
        match (ids.next(), ids.next()) {
            (Some(f), Some(i)) => (f, i),
            _ => panic!(
                "flavor and image {name}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// [`Stack::boot`] from `image` with `flavor`.
    pub fn boot_with(
        &self,
        name: &str,
        host: &str,
        metadata: &serde_json::Value,
        image: &str,
        flavor: &str,
    ) -> String {
        let script = r#"
image, flavor, name, host, metadata = sys.argv[1:6]
_, s = call(nova + "/servers", "POST", {"server": {"name": name, "imageRef": image, "flavorRef": flavor,
    "networks": "none", "availability_zone": "nova:" + host, "metadata": json.loads(metadata)}}, t)
sid = s["server"]["id"]
for _ in range(120):
    _, d = call(nova + "/servers/" + sid, "GET", None, t)
    if d["server"]["status"] in ("ACTIVE", "ERROR"):
        break
    time.sleep(0.5)
print(sid, d["server"]["status"])
"#;
        let out = self.python(script, &[image, flavor, name, host, &metadata.to_string()]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.trim().ends_with("ACTIVE"),
            "boot {name} on {host}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.split_whitespace().next().unwrap_or("").to_string()
    }

    /// One call to the service of catalog type `kind` (`instance-ha`,
    /// `compute`, ...) as admin: its HTTP status and JSON body (Null when
    /// it has none).
    pub fn call(
        &self,
        kind: &str,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let script = r#"
import urllib.error
kind, method, path, data = sys.argv[1:5]
url = [e for e in body["token"]["catalog"] if e["type"] == kind][0]["endpoints"][0]["url"]
req = urllib.request.Request(url + path, method=method, data=data.encode() if data else None, headers=h)
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        code, text = r.status, r.read()
except urllib.error.HTTPError as e:
    code, text = e.code, e.read()
print(code)
print(text.decode() or "null")
"#;
        let data = body.map(|b| b.to_string()).unwrap_or_default();
        let out = self.python(script, &[kind, method, path, &data]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (code, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let code = code.trim().parse().unwrap_or_else(|_| {
            panic!(
                "{method} {kind} {path}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, serde_json::from_str(rest.trim()).unwrap_or_default())
    }

    /// Delete servers (best effort: a test's clean-up).
    pub fn delete(&self, ids: &[String]) {
        let script = r#"
for sid in sys.argv[1:]:
    try:
        urllib.request.urlopen(urllib.request.Request(nova + "/servers/" + sid, method="DELETE", headers=h), timeout=30)
    except Exception as e:
        print(sid, e)
"#;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let _ = self.python(script, &ids);
    }

    /// A server action (`{"os-stop": null}`, `{"os-resetState": {"state":
    /// "error"}}`), then wait up to a minute for `status`.
    pub fn act_on(&self, id: &str, action: &serde_json::Value, status: &str) {
        let script = r#"
sid, action, want = sys.argv[1:4]
urllib.request.urlopen(urllib.request.Request(nova + "/servers/" + sid + "/action", method="POST", data=action.encode(), headers=h), timeout=30)
for _ in range(120):
    _, d = call(nova + "/servers/" + sid, token=t)
    if d["server"]["status"] == want and not d["server"].get("OS-EXT-STS:task_state"):
        print(want); break
    time.sleep(0.5)
"#;
        let out = self.python(script, &[id, &action.to_string(), status]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            status,
            "{action} on {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Disable (with a reason) or enable `host`'s nova-compute.
    pub fn set_compute(&self, host: &str, reason: Option<&str>) {
        let script = r#"
host, reason = sys.argv[1:3]
_, d = call(nova + "/os-services?binary=nova-compute&host=" + host, token=t)
b = {"status": "disabled", "disabled_reason": reason} if reason else {"status": "enabled"}
call(nova + "/os-services/" + d["services"][0]["id"], "PUT", b, t)
print("ok")
"#;
        let out = self.python(script, &[host, reason.unwrap_or("")]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How many evacuation migrations Nova has of each of `ids`.
    pub fn evacuations(&self, ids: &[String]) -> Vec<usize> {
        let script = r#"
for sid in sys.argv[1:]:
    _, d = call(nova + "/os-migrations?migration_type=evacuation&instance_uuid=" + sid, token=t, mv="2.59")
    print(len(d["migrations"]))
"#;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let out = self.python(script, &ids);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().expect("a count"))
            .collect()
    }

    /// Kill and start `host`'s nova-compute (scripts/openstack.sh
    /// restart-compute): a restarted compute cleans up what was evacuated.
    pub fn restart_compute(&self, host: &str) {
        let dir = std::path::Path::new(self.var("OS_PIDS"))
            .parent()
            .expect("stack dir")
            .to_string_lossy()
            .into_owned();
        let ok = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/openstack.sh"))
            .args(["restart-compute", &dir, host])
            .status()
            .expect("openstack.sh");
        assert!(ok.success(), "restart-compute {host}");
    }

    /// [`Stack::signal`] that says whether it worked instead of failing
    /// (for clean-ups).
    pub fn signal_quiet(&self, what: &str, sig: &str) -> bool {
        std::fs::read_to_string(format!("{}/{what}", self.var("OS_PIDS"))).is_ok_and(|pid| {
            Command::new("kill")
                .args([&format!("-{sig}"), pid.trim()])
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    pub fn signal(&self, what: &str, sig: &str) {
        let pid =
            std::fs::read_to_string(format!("{}/{what}", self.var("OS_PIDS"))).expect("pid file");
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), pid.trim()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -{sig} {what}");
    }
}

/// Start `bin` once per delay and SIGKILL it after that delay (the kill -9
/// drill's arbitrary moments); how many were still running when killed.
pub fn kill_after(bin: &str, args: &[&str], env: &[(&str, &str)], delays_ms: &[u64]) -> usize {
    let mut killed = 0;
    for ms in delays_ms {
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(*ms));
        if child.try_wait().expect("try_wait").is_none() {
            killed += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    killed
}
