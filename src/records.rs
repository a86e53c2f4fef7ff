//! One reader for streams of records on stdin (notify now, evacuate next):
//! a line at a time, never more than [`MAX_LINE`] bytes of one kept, and a
//! line that cannot be used (too long, not UTF-8) said as such rather than
//! dropped or mangled, so the caller can report it and go on.

use std::io::{BufRead, Read};
use std::sync::mpsc;

/// The longest line taken as a record (records are a few KiB).
pub const MAX_LINE: usize = 4 << 20;

/// One line of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Its text, without the line end.
    Text(String),
    /// A line that cannot be a record, and why (for a record saying so).
    Unusable(String),
}

/// Read `input` line by line, handing each to `each` until the input ends
/// or `each` returns false. A line past [`MAX_LINE`] is skipped to its end
/// (memory stays bounded whatever comes in) and handed on as
/// [`Line::Unusable`]; so is one that is not UTF-8.
pub fn read_lines<R: BufRead>(mut input: R, mut each: impl FnMut(Line) -> bool) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let mut limited = (&mut input).take(MAX_LINE as u64 + 1);
        match limited.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            // The rest of the line, read a piece at a time and dropped.
            let mut rest = Vec::with_capacity(64 * 1024);
            loop {
                rest.clear();
                match (&mut input).take(64 * 1024).read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            Line::Unusable(format!("line longer than {} MiB", MAX_LINE >> 20))
        } else {
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(text) => Line::Text(text),
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    buf = e.into_bytes();
                    Line::Unusable(format!("not UTF-8 text (an invalid byte at offset {at})"))
                }
            }
        };
        if !each(line) {
            return;
        }
    }
}

/// [`read_lines`] on a thread of its own, for a reader that waits on the
/// stream with a deadline: each line arrives on the channel, then `None`
/// at the end. The thread ends when the receiver is dropped.
pub fn spawn<R: Read + Send + 'static>(input: R, capacity: usize) -> mpsc::Receiver<Option<Line>> {
    let (tx, rx) = mpsc::sync_channel::<Option<Line>>(capacity);
    let spawned = std::thread::Builder::new()
        .name("records".into())
        .spawn(move || {
            let mut open = true;
            read_lines(std::io::BufReader::new(input), |line| {
                open = tx.send(Some(line)).is_ok();
                open
            });
            if open {
                let _ = tx.send(None);
            }
        });
    if spawned.is_err() {
        // No thread, no input: the receiver sees the end at once.
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        read_lines(input, |l| {
            out.push(l);
            true
        });
        out
    }

    #[test]
    fn lines_lose_their_ends_and_bad_ones_are_named() {
        assert_eq!(
            lines(b"{\"a\":1}\r\n\nlast"),
            vec![
                Line::Text("{\"a\":1}".into()),
                Line::Text(String::new()),
                Line::Text("last".into())
            ]
        );
        assert_eq!(
            lines(b"ok\n\xff\xfe\nafter\n"),
            vec![
                Line::Text("ok".into()),
                Line::Unusable("not UTF-8 text (an invalid byte at offset 0)".into()),
                Line::Text("after".into())
            ]
        );
    }

    #[test]
    fn a_line_past_the_limit_is_skipped_and_the_stream_goes_on() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\n");
        assert_eq!(
            lines(&input),
            vec![
                Line::Unusable("line longer than 4 MiB".into()),
                Line::Text("next".into())
            ]
        );
    }

    #[test]
    fn the_spawned_reader_ends_with_none() {
        let rx = spawn(std::io::Cursor::new(b"a\nb\n".to_vec()), 4);
        let got: Vec<Option<Line>> = rx.iter().collect();
        assert_eq!(
            got,
            vec![
                Some(Line::Text("a".into())),
                Some(Line::Text("b".into())),
                None
            ]
        );
    }
}
