//! A loopback HTTP server for the demo (scripts/demo.sh): a healthy JSON
//! endpoint, a broken one, a slow one and a redirect. It prints its port and
//! stops by itself after `--seconds N` (default 60).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(60);
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo_server: cannot bind 127.0.0.1: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("{port}");
    let _ = std::io::stdout().flush();
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    std::thread::spawn(move || {
        std::thread::sleep(stop_at.saturating_duration_since(Instant::now()));
        std::process::exit(0);
    });
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(&conn);
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                return;
            }
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.trim().is_empty() => break,
                    Ok(_) => {}
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("/");
            let (status, extra, body): (&str, &str, &str) = match path {
                "/healthz" => (
                    "200 OK",
                    "Content-Type: application/json\r\n",
                    "{\"status\":\"UP\",\"checks\":[\"db\",\"queue\"]}",
                ),
                "/v3" => (
                    "200 OK",
                    "Content-Type: application/json\r\n",
                    "{\"version\":{\"id\":\"v3.14\",\"status\":\"stable\"}}",
                ),
                "/broken" => ("503 Service Unavailable", "", "maintenance"),
                "/slow" => {
                    std::thread::sleep(Duration::from_millis(700));
                    ("200 OK", "", "finally")
                }
                "/old" => ("301 Moved Permanently", "Location: /v3\r\n", ""),
                _ => ("404 Not Found", "", "not here"),
            };
            let mut out = &conn;
            let _ = write!(
                out,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        });
    }
}
