//! A smoke run of every fuzz target (`src/fuzz.rs`): the checked-in corpus
//! (`fuzz/corpus/TARGET/`, seeds and what the coverage-guided fuzzer kept)
//! replayed, then mutations of it — bit flips, cut and repeated spans,
//! spliced inputs — for a bounded count per target. A panic fails the test;
//! the long runs and their figures are in FUZZING.md.

use std::path::Path;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("a corpus file"))
        .collect()
}

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] =
                    [0, 0xff, b'\n', b'"', b'\\', b'{', b'[', b'|', b'=', b'~'][rng.below(10)];
            }
            2 if len > 1 => {
                let a = rng.below(len);
                let b = a + rng.below(len - a);
                data.drain(a..b);
            }
            3 if len > 1 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                let span = data[a..b].to_vec();
                let at = rng.below(len);
                for _ in 0..=rng.below(8) {
                    data.splice(at..at, span.iter().copied());
                }
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len());
                let at = rng.below(data.len());
                data.truncate(at);
                data.extend_from_slice(&other[cut..]);
            }
            _ => {
                let at = rng.below(len + 1);
                let n = rng.next().to_le_bytes();
                data.splice(at..at, n.iter().copied());
            }
        }
    }
    data
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations_of_it() {
    assert!(!skyprobe::fuzz::run("no-such-target", b""));
    for target in skyprobe::fuzz::TARGETS {
        let started = std::time::Instant::now();
        let seeds = corpus(target);
        assert!(!seeds.is_empty(), "{target}: an empty corpus");
        for data in &seeds {
            assert!(skyprobe::fuzz::run(target, data), "{target}");
        }
        // The HTTP target makes a loopback exchange per input: fewer.
        let rounds = if *target == "http-response" {
            300
        } else {
            1_000
        };
        let mut rng = Rng(0x5eed_0000 ^ target.len() as u64 ^ (target.as_bytes()[0] as u64) << 32);
        for _ in 0..rounds {
            let data = mutate(&mut rng, &seeds);
            skyprobe::fuzz::run(target, &data);
        }
        eprintln!("{target}: {rounds} mutations in {:.2?}", started.elapsed());
    }
}
