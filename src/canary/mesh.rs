//! Many sources' records of many peers, put together: the zone × zone (or
//! peer × peer) matrix, who is to blame for what fails, which peers a
//! canary measures when it may not measure them all, and the Prometheus
//! series whose number grows with zones², not peers².

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Value};

use super::{Identity, Peer};
use crate::report::{Record, Status};

/// One measured pair: a source canary's record of one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The canary that measured.
    pub src: Identity,
    /// The canary measured.
    pub dst: Identity,
    /// The record's state.
    pub status: Status,
    /// HTTP latency p95, seconds.
    pub p95: Option<f64>,
    /// UDP loss, %.
    pub loss: Option<f64>,
    /// HTTP requests answered, %.
    pub success: Option<f64>,
}

impl Pair {
    /// Whether the pair counts as failing (WARNING or worse; UNKNOWN is no evidence).
    pub fn failing(&self) -> bool {
        matches!(self.status, Status::Warning | Status::Critical)
    }
}

fn label(r: &Record, key: &str) -> String {
    r.labels.get(key).cloned().unwrap_or_default()
}

/// The pairs among `records`: canary-peer records that name a source and a peer.
pub fn pairs(records: &[Record]) -> Vec<Pair> {
    records
        .iter()
        .filter(|r| r.check == super::CHECK && r.event.is_none())
        .filter(|r| r.labels.contains_key("src_id") && r.labels.contains_key("dst_id"))
        .map(|r| {
            let metric = |name: &str| r.metrics.iter().find(|m| m.name == name).map(|m| m.value);
            Pair {
                src: Identity {
                    id: label(r, "src_id"),
                    datacenter: label(r, "src_dc"),
                    az: label(r, "src_az"),
                },
                dst: Identity {
                    id: label(r, "dst_id"),
                    datacenter: label(r, "dst_dc"),
                    az: label(r, "dst_az"),
                },
                status: r.status,
                p95: metric("latency_p95"),
                loss: metric("loss"),
                success: metric("success"),
            }
        })
        .collect()
}

/// What the matrix's rows and columns are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// Availability zones (data centre/zone when data centres are named).
    Zone,
    /// Single canaries.
    Peer,
}

fn key(i: &Identity, by: By) -> String {
    match by {
        By::Peer => i.id.clone(),
        By::Zone => {
            let az = if i.az.is_empty() { "-" } else { i.az.as_str() };
            if i.datacenter.is_empty() {
                az.to_string()
            } else {
                format!("{}/{az}", i.datacenter)
            }
        }
    }
}

/// One cell: every pair from one row's sources to one column's peers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cell {
    /// Pairs measured.
    pub pairs: usize,
    /// Of those, failing.
    pub failing: usize,
    /// The worst pair's p95, seconds.
    pub p95_max: Option<f64>,
    /// Mean UDP loss over the pairs, %.
    pub loss_mean: Option<f64>,
    /// The worst pair's state.
    pub status: Option<Status>,
}

/// The matrix: sources down, destinations across.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    /// Row names (sources).
    pub rows: Vec<String>,
    /// Column names (destinations).
    pub cols: Vec<String>,
    /// Cells by `row → col`.
    pub cells: BTreeMap<String, BTreeMap<String, Cell>>,
}

/// The matrix of `pairs`, grouped `by` zone or peer.
pub fn matrix(pairs: &[Pair], by: By) -> Matrix {
    let mut rows = BTreeSet::new();
    let mut cols = BTreeSet::new();
    let mut sums: BTreeMap<(String, String), (Cell, f64, usize)> = BTreeMap::new();
    for p in pairs {
        let (r, c) = (key(&p.src, by), key(&p.dst, by));
        rows.insert(r.clone());
        cols.insert(c.clone());
        let (cell, loss_sum, loss_n) = sums.entry((r, c)).or_default();
        cell.pairs += 1;
        if p.failing() {
            cell.failing += 1;
        }
        if let Some(v) = p.p95 {
            cell.p95_max = Some(cell.p95_max.map_or(v, |m: f64| m.max(v)));
        }
        if let Some(l) = p.loss {
            *loss_sum += l;
            *loss_n += 1;
        }
        cell.status = Some(cell.status.map_or(p.status, |s| s.max(p.status)));
    }
    let mut cells: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
    for ((r, c), (mut cell, loss_sum, loss_n)) in sums {
        if loss_n > 0 {
            cell.loss_mean = Some((loss_sum / loss_n as f64 * 100.0).round() / 100.0);
        }
        cells.entry(r).or_default().insert(c, cell);
    }
    Matrix {
        rows: rows.into_iter().collect(),
        cols: cols.into_iter().collect(),
        cells,
    }
}

/// Who is to blame for the failing pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Blame {
    /// Peers that fail from at least the share of sources: the peer is bad.
    pub destinations: Vec<Accused>,
    /// Sources that fail to at least the share of peers: the observer is bad.
    pub sources: Vec<Accused>,
    /// Failing pairs neither explains: the path between them.
    pub paths: Vec<(String, String)>,
}

/// A canary blamed, with the evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accused {
    /// Its id.
    pub id: String,
    /// Pairs that failed.
    pub failing: usize,
    /// Pairs counted.
    pub of: usize,
}

/// Fewest pairs that can accuse a canary: one failing pair says nothing
/// about which end is bad.
const MIN_EVIDENCE: usize = 2;

fn accuse(
    pairs: &[Pair],
    end: impl Fn(&Pair) -> &str,
    counted: impl Fn(&Pair) -> bool,
    share: f64,
) -> Vec<Accused> {
    let mut by: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for p in pairs.iter().filter(|p| p.src.id != p.dst.id && counted(p)) {
        let e = by.entry(end(p)).or_default();
        e.1 += 1;
        if p.failing() {
            e.0 += 1;
        }
    }
    by.into_iter()
        .filter(|(_, (f, n))| *n >= MIN_EVIDENCE && *f as f64 >= share * *n as f64 && *f > 0)
        .map(|(id, (failing, of))| Accused {
            id: id.to_string(),
            failing,
            of,
        })
        .collect()
}

/// Blame over `pairs` (NetBouncer's idea: each path seen from many
/// sources): a peer failing from at least `share` (0–1) of the sources
/// that are not themselves bad is a bad destination; a source failing to
/// at least `share` of the peers that are not bad destinations is a bad
/// source; a failing pair neither explains is a bad path.
pub fn blame(pairs: &[Pair], share: f64) -> Blame {
    let raw_dst: BTreeSet<String> = accuse(pairs, |p| &p.dst.id, |_| true, share)
        .into_iter()
        .map(|a| a.id)
        .collect();
    let sources = accuse(
        pairs,
        |p| &p.src.id,
        |p| !raw_dst.contains(&p.dst.id),
        share,
    );
    let bad_src: BTreeSet<&str> = sources.iter().map(|a| a.id.as_str()).collect();
    let destinations = accuse(
        pairs,
        |p| &p.dst.id,
        |p| !bad_src.contains(p.src.id.as_str()),
        share,
    );
    let bad_dst: BTreeSet<&str> = destinations.iter().map(|a| a.id.as_str()).collect();
    let paths = pairs
        .iter()
        .filter(|p| p.failing())
        .filter(|p| !bad_dst.contains(p.dst.id.as_str()) && !bad_src.contains(p.src.id.as_str()))
        .map(|p| (p.src.id.clone(), p.dst.id.clone()))
        .collect();
    Blame {
        destinations,
        sources,
        paths,
    }
}

impl Blame {
    /// What is blamed for one failing pair: `destination`, `source`,
    /// `source and destination` or `path` (None for a pair that does not fail).
    pub fn of(&self, p: &Pair) -> Option<&'static str> {
        if !p.failing() {
            return None;
        }
        let dst = self.destinations.iter().any(|a| a.id == p.dst.id);
        let src = self.sources.iter().any(|a| a.id == p.src.id);
        Some(match (src, dst) {
            (true, true) => "source and destination",
            (false, true) => "destination",
            (true, false) => "source",
            (false, false) => "path",
        })
    }

    /// The blame in one line for a person.
    pub fn words(&self) -> String {
        let mut parts = Vec::new();
        for a in &self.destinations {
            parts.push(format!(
                "bad destination {} (fails from {} of {} sources)",
                a.id, a.failing, a.of
            ));
        }
        for a in &self.sources {
            parts.push(format!(
                "bad source {} (fails to {} of {} peers)",
                a.id, a.failing, a.of
            ));
        }
        for (s, d) in &self.paths {
            parts.push(format!("bad path {s} -> {d}"));
        }
        parts.join("; ")
    }
}

/// Annotate each pair record in `records` with its blame
/// (`details.blame`) and make one summary record of the mesh.
pub fn judge(records: &mut [Record], share: f64, by: By) -> Record {
    let all = pairs(records);
    let b = blame(&all, share);
    for r in records.iter_mut() {
        let one = pairs(std::slice::from_ref(r));
        if let Some(p) = one.first() {
            if let Some(w) = b.of(p) {
                r.detail("blame", w);
            }
        }
    }
    let m = matrix(&all, by);
    let failing = all.iter().filter(|p| p.failing()).count();
    let status = if b.destinations.is_empty() && b.sources.is_empty() && b.paths.is_empty() {
        Status::Ok
    } else {
        all.iter()
            .filter(|p| p.failing())
            .map(|p| p.status)
            .max()
            .unwrap_or(Status::Ok)
    };
    let summary = if failing == 0 {
        format!("{} pairs, none failing", all.len())
    } else {
        format!("{failing} of {} pairs failing: {}", all.len(), b.words())
    };
    let mut r = Record::new(super::CHECK, "mesh", status, summary);
    r.detail("pairs", all.len());
    r.detail("failing", failing);
    r.detail("blame", json!(b));
    r.detail("matrix", json!(m));
    r
}

/// The zone of each peer, for [`choose`]: its configured zone, else "".
fn zone_of(p: &Peer) -> &str {
    p.az.as_deref().unwrap_or("")
}

/// At most `cap` of `peers` for the canary `source` to measure: the same
/// choice every cycle (rendezvous hashing on source and peer), one peer of
/// every zone first so every zone pair stays covered (the cap grows to
/// the number of zones if it must), the rest by score.
pub fn choose(source: &str, peers: &[Peer], cap: usize) -> Vec<Peer> {
    if peers.len() <= cap {
        return peers.to_vec();
    }
    let score = |p: &Peer| crate::state::fnv(&format!("{source}\u{0}{}", p.url));
    let mut ranked: Vec<&Peer> = peers.iter().collect();
    ranked.sort_by_key(|p| std::cmp::Reverse(score(p)));
    let mut chosen: Vec<&Peer> = Vec::new();
    let mut zones = BTreeSet::new();
    for p in &ranked {
        if zones.insert(zone_of(p)) {
            chosen.push(p);
        }
    }
    for p in &ranked {
        if chosen.len() >= cap {
            break;
        }
        if !chosen.iter().any(|c| c.url == p.url) {
            chosen.push(p);
        }
    }
    // Keep the input order: records stream in the order peers were given.
    peers
        .iter()
        .filter(|p| chosen.iter().any(|c| c.url == p.url))
        .cloned()
        .collect()
}

/// Upper bounds of the latency histogram's buckets, seconds.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram (cumulative, as Prometheus keeps them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each of [`BUCKETS`].
    pub counts: [u64; BUCKETS.len()],
    /// Every observation.
    pub count: u64,
    /// Their sum, seconds.
    pub sum: f64,
}

impl Histogram {
    /// Count one observation.
    pub fn observe(&mut self, v: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if v <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What a canary exposes of its mesh: per zone pair a latency histogram
/// and loss, plus the `worst` peer pairs of the last cycle.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Latency by (source zone, destination zone), over every cycle.
    pub latency: BTreeMap<(String, String), Histogram>,
    /// Mean loss (%) by zone pair, last cycle.
    pub loss: BTreeMap<(String, String), f64>,
    /// Failing pairs by zone pair, last cycle.
    pub failing: BTreeMap<(String, String), usize>,
    /// The worst pairs of the last cycle: (source, destination, p95 s, loss %).
    pub worst: Vec<(String, String, f64, f64)>,
}

impl Series {
    /// The Prometheus text of these series.
    pub fn exposition(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP canary_peer_latency_seconds HTTP latency between zones.\n# TYPE canary_peer_latency_seconds histogram\n");
        for ((s, d), h) in &self.latency {
            let l = format!("src_az=\"{}\",dst_az=\"{}\"", escape(s), escape(d));
            for (le, c) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "canary_peer_latency_seconds_bucket{{{l},le=\"{}\"}} {c}",
                    crate::render::number(*le)
                );
            }
            let _ = writeln!(
                out,
                "canary_peer_latency_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "canary_peer_latency_seconds_sum{{{l}}} {}",
                crate::render::number(h.sum)
            );
            let _ = writeln!(out, "canary_peer_latency_seconds_count{{{l}}} {}", h.count);
        }
        out.push_str("# HELP canary_peer_loss_percent Mean UDP loss between zones, last cycle.\n# TYPE canary_peer_loss_percent gauge\n");
        for ((s, d), v) in &self.loss {
            let _ = writeln!(
                out,
                "canary_peer_loss_percent{{src_az=\"{}\",dst_az=\"{}\"}} {}",
                escape(s),
                escape(d),
                crate::render::number(*v)
            );
        }
        out.push_str("# HELP canary_peer_failing_pairs Peer pairs failing between zones, last cycle.\n# TYPE canary_peer_failing_pairs gauge\n");
        for ((s, d), v) in &self.failing {
            let _ = writeln!(
                out,
                "canary_peer_failing_pairs{{src_az=\"{}\",dst_az=\"{}\"}} {v}",
                escape(s),
                escape(d)
            );
        }
        out.push_str("# HELP canary_peer_worst_latency_p95_seconds The worst peer pairs' p95, last cycle.\n# TYPE canary_peer_worst_latency_p95_seconds gauge\n");
        for (s, d, p95, _) in &self.worst {
            let _ = writeln!(
                out,
                "canary_peer_worst_latency_p95_seconds{{src=\"{}\",dst=\"{}\"}} {}",
                escape(s),
                escape(d),
                crate::render::number(*p95)
            );
        }
        out.push_str("# HELP canary_peer_worst_loss_percent The worst peer pairs' UDP loss, last cycle.\n# TYPE canary_peer_worst_loss_percent gauge\n");
        for (s, d, _, loss) in &self.worst {
            let _ = writeln!(
                out,
                "canary_peer_worst_loss_percent{{src=\"{}\",dst=\"{}\"}} {}",
                escape(s),
                escape(d),
                crate::render::number(*loss)
            );
        }
        out
    }

    /// Take one cycle: its HTTP latencies per peer into the histograms,
    /// its loss and failing pairs, and its `k` worst pairs.
    pub fn cycle(&mut self, measured: &[(Pair, Vec<f64>)], k: usize) {
        self.loss.clear();
        self.failing.clear();
        let mut loss_n: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (p, latencies) in measured {
            let zk = (key(&p.src, By::Zone), key(&p.dst, By::Zone));
            let h = self.latency.entry(zk.clone()).or_default();
            for v in latencies {
                h.observe(*v);
            }
            *self.failing.entry(zk.clone()).or_default() += usize::from(p.failing());
            if let Some(l) = p.loss {
                *self.loss.entry(zk.clone()).or_default() += l;
                *loss_n.entry(zk).or_default() += 1;
            }
        }
        for (zk, n) in loss_n {
            if let Some(v) = self.loss.get_mut(&zk) {
                *v = (*v / n as f64 * 100.0).round() / 100.0;
            }
        }
        let mut worst: Vec<(String, String, f64, f64)> = measured
            .iter()
            .map(|(p, _)| {
                (
                    p.src.id.clone(),
                    p.dst.id.clone(),
                    p.p95.unwrap_or(f64::INFINITY),
                    p.loss.unwrap_or(100.0),
                )
            })
            .collect();
        // Worst first: the most loss, then the slowest.
        worst.sort_by(|a, b| b.3.total_cmp(&a.3).then(b.2.total_cmp(&a.2)));
        worst.truncate(k);
        for w in &mut worst {
            if !w.2.is_finite() {
                w.2 = 0.0;
            }
        }
        self.worst = worst;
    }
}

/// The matrix as a table for a person: p95 in ms and loss per cell.
pub fn table(m: &Matrix) -> String {
    let mut header: Vec<&str> = vec!["FROM \\ TO"];
    header.extend(m.cols.iter().map(String::as_str));
    let rows = m.rows.iter().map(|r| {
        let mut row = vec![r.clone()];
        for c in &m.cols {
            row.push(match m.cells.get(r).and_then(|x| x.get(c)) {
                Some(cell) => cell_words(cell),
                None => "-".into(),
            });
        }
        row
    });
    crate::render::grid(&header, rows)
}

fn cell_words(cell: &Cell) -> String {
    let p95 = cell
        .p95_max
        .map(|v| format!("{:.1}ms", v * 1000.0))
        .unwrap_or_else(|| "-".into());
    let loss = cell
        .loss_mean
        .map(|v| format!("{}%", crate::render::number(v)))
        .unwrap_or_else(|| "-".into());
    let bad = if cell.failing > 0 {
        format!(" {}/{} bad", cell.failing, cell.pairs)
    } else {
        String::new()
    };
    format!("{p95} {loss}{bad}")
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The matrix as an SVG heat map: each cell coloured by its worst state
/// (green OK, amber WARNING, red CRITICAL, grey UNKNOWN or unmeasured),
/// with its p95 and loss written in it.
pub fn svg(m: &Matrix, title: &str) -> String {
    const CELL_W: usize = 110;
    const CELL_H: usize = 40;
    let label_w = m
        .rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40)
        * 8
        + 20;
    let top = 70;
    let width = label_w + CELL_W * m.cols.len().max(1) + 10;
    let height = top + CELL_H * m.rows.len().max(1) + 40;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        xml(title)
    );
    let _ = writeln!(
        out,
        "<text x=\"10\" y=\"38\" fill=\"#555\">rows: source, columns: destination; p95 latency and UDP loss</text>"
    );
    for (j, c) in m.cols.iter().enumerate() {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
            label_w + j * CELL_W + CELL_W / 2,
            top - 8,
            xml(c)
        );
    }
    for (i, r) in m.rows.iter().enumerate() {
        let y = top + i * CELL_H;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-weight=\"bold\">{}</text>",
            label_w - 8,
            y + CELL_H / 2 + 4,
            xml(r)
        );
        for (j, c) in m.cols.iter().enumerate() {
            let x = label_w + j * CELL_W;
            let cell = m.cells.get(r).and_then(|row| row.get(c));
            let fill = match cell.and_then(|c| c.status) {
                Some(Status::Ok) => "#7bc96f",
                Some(Status::Warning) => "#f5c242",
                Some(Status::Critical) => "#e5534b",
                _ => "#d0d0d0",
            };
            let _ = writeln!(
                out,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" stroke=\"#fff\"/>",
                CELL_W,
                CELL_H
            );
            if let Some(cell) = cell {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                    x + CELL_W / 2,
                    y + CELL_H / 2 + 4,
                    xml(&cell_words(cell))
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

/// The matrix and blame as one JSON value.
pub fn json(m: &Matrix, b: &Blame) -> Value {
    json!({"matrix": m, "blame": b})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: &str, az: &str) -> Identity {
        Identity {
            id: n.into(),
            datacenter: String::new(),
            az: az.into(),
        }
    }

    fn mesh(ids: &[(&str, &str)], bad: impl Fn(&str, &str) -> bool) -> Vec<Pair> {
        let mut out = Vec::new();
        for (s, saz) in ids {
            for (d, daz) in ids {
                if s == d {
                    continue;
                }
                let failing = bad(s, d);
                out.push(Pair {
                    src: id(s, saz),
                    dst: id(d, daz),
                    status: if failing {
                        Status::Critical
                    } else {
                        Status::Ok
                    },
                    p95: Some(0.001),
                    loss: Some(if failing { 30.0 } else { 0.0 }),
                    success: Some(100.0),
                });
            }
        }
        out
    }

    const FOUR: [(&str, &str); 4] = [("a", "z1"), ("b", "z1"), ("s", "z2"), ("d", "z2")];

    #[test]
    fn one_bad_destination_and_one_bad_source_are_named_and_nothing_else() {
        let pairs = mesh(&FOUR, |s, d| s == "s" || d == "d");
        let b = blame(&pairs, 0.5);
        assert_eq!(b.destinations.len(), 1, "{b:?}");
        assert_eq!(b.destinations[0].id, "d");
        assert_eq!(b.sources.len(), 1, "{b:?}");
        assert_eq!(b.sources[0].id, "s");
        assert!(b.paths.is_empty(), "{b:?}");
        let sd = pairs
            .iter()
            .find(|p| p.src.id == "s" && p.dst.id == "d")
            .expect("pair");
        assert_eq!(b.of(sd), Some("source and destination"));
    }

    #[test]
    fn a_single_bad_link_is_a_path_not_a_canary() {
        let pairs = mesh(&FOUR, |s, d| s == "a" && d == "b");
        let b = blame(&pairs, 0.5);
        assert!(b.destinations.is_empty() && b.sources.is_empty(), "{b:?}");
        assert_eq!(b.paths, vec![("a".to_string(), "b".to_string())]);
    }

    #[test]
    fn the_matrix_groups_by_zone() {
        let pairs = mesh(&FOUR, |_, d| d == "d");
        let m = matrix(&pairs, By::Zone);
        assert_eq!(m.rows, vec!["z1", "z2"]);
        let z1z2 = &m.cells["z1"]["z2"];
        assert_eq!((z1z2.pairs, z1z2.failing), (4, 2));
        assert_eq!(z1z2.loss_mean, Some(15.0));
        assert_eq!(z1z2.status, Some(Status::Critical));
        assert_eq!(m.cells["z1"]["z1"].pairs, 2);
        let svg = svg(&m, "mesh <test>");
        assert!(svg.contains("mesh &lt;test&gt;") && svg.contains("#e5534b"));
        assert!(table(&m).contains("2/4 bad"));
    }

    #[test]
    fn the_choice_is_stable_and_covers_every_zone() {
        let peers: Vec<Peer> = (0..100)
            .map(|i| Peer {
                url: format!("http://10.0.{}.{}:8080", i / 10, i % 10),
                id: None,
                datacenter: None,
                az: Some(format!("z{}", i % 10)),
                udp_port: None,
            })
            .collect();
        let a = choose("canary-1", &peers, 12);
        assert_eq!(a.len(), 12);
        assert_eq!(a, choose("canary-1", &peers, 12));
        let zones: BTreeSet<_> = a.iter().map(|p| p.az.clone()).collect();
        assert_eq!(zones.len(), 10);
        // Another source picks another set (load spreads over the peers).
        assert_ne!(a, choose("canary-2", &peers, 12));
        // A cap below the number of zones still covers every zone.
        assert_eq!(choose("canary-1", &peers, 3).len(), 10);
    }

    #[test]
    fn series_grow_with_zone_pairs_not_peer_pairs() {
        let ids: Vec<(String, String)> = (0..40)
            .map(|i| (format!("c{i}"), format!("z{}", i % 4)))
            .collect();
        let refs: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let pairs = mesh(&refs, |_, _| false);
        let mut s = Series::default();
        let measured: Vec<(Pair, Vec<f64>)> =
            pairs.into_iter().map(|p| (p, vec![0.001, 0.02])).collect();
        s.cycle(&measured, 5);
        let text = s.exposition();
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        // 16 zone pairs × (13 buckets + sum + count + loss + failing) + 5 × 2 worst.
        assert_eq!(series, 16 * 17 + 10);
        assert!(text.contains(
            "canary_peer_latency_seconds_bucket{src_az=\"z0\",dst_az=\"z1\",le=\"0.001\"} 10"
        ));
    }
}
