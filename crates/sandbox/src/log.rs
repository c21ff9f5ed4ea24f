//! The sandbox's own log: strace lines, the system calls it does not
//! implement, debug lines. It goes where the CLI's log goes (the `--log`
//! file, or the CLI's stderr with `--debug`/`--strace`), as text lines or,
//! in the CLI's formats: `time="…" level=debug msg="…"` lines, or with
//! `--log-format json` the `{"level","msg","time"}` objects runc writes,
//! so an engine parsing the file still can. Without a log descriptor
//! nothing is written: the application's stderr is its own.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::time::SystemTime;

/// The kernel's log writer: lines to `fd` (as JSON objects with `json`),
/// or a sink.
pub fn writer(fd: Option<OwnedFd>, json: bool) -> Box<dyn Write + Send> {
    match fd {
        None => Box::new(io::sink()),
        Some(fd) => Box::new(LogLines { out: std::fs::File::from(fd), json, line: Vec::new() }),
    }
}

/// Turns each line written into one log record at debug level.
struct LogLines<W: Write> {
    out: W,
    json: bool,
    line: Vec<u8>,
}

impl<W: Write> LogLines<W> {
    fn record(&self, msg: &str) -> io::Result<Vec<u8>> {
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut rec = if self.json {
            serde_json::to_vec(&serde_json::json!({ "level": "debug", "msg": msg, "time": time }))?
        } else {
            format!("time=\"{time}\" level=debug msg={}", serde_json::to_string(msg)?).into_bytes()
        };
        rec.push(b'\n');
        Ok(rec)
    }
}

impl<W: Write> Write for LogLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            if b == b'\n' {
                let rec = self.record(&String::from_utf8_lossy(&self.line))?;
                self.line.clear();
                self.out.write_all(&rec)?;
            } else {
                self.line.push(b);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_becomes_one_json_object() {
        let mut w = LogLines { out: Vec::new(), json: true, line: Vec::new() };
        write!(w, "veil: unsupported syscall rseq (334)\nstrace \"quoted\"").unwrap();
        writeln!(w, " line").unwrap();
        let text = String::from_utf8(w.out).unwrap();
        let objs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["msg"], "veil: unsupported syscall rseq (334)");
        assert_eq!(objs[1]["msg"], "strace \"quoted\" line");
        assert_eq!(objs[0]["level"], "debug");
        assert!(objs[0]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn text_lines_quote_the_message() {
        let mut w = LogLines { out: Vec::new(), json: false, line: Vec::new() };
        writeln!(w, "veil: unsupported syscall rseq (334)").unwrap();
        let text = String::from_utf8(w.out).unwrap();
        assert!(text.starts_with("time=\""), "{text}");
        assert!(text.ends_with(" level=debug msg=\"veil: unsupported syscall rseq (334)\"\n"), "{text}");
    }
}
