//! The line discipline (Linux's N_TTY) of one terminal, as pure data: bytes
//! typed at the terminal go in through [`LineDiscipline::receive`] (input
//! mapping, signal characters, canonical line editing, echo), bytes the
//! program writes through [`LineDiscipline::write`] (output processing).
//! Who reads what, who blocks and who gets signalled is the terminal's
//! business (`terminal.rs`); nothing here sleeps, so all of it is tested
//! by feeding bytes.
//!
//! Followed closely where programs can tell: which characters are special
//! in which mode (a disabled `c_cc` is 0), what each echoes (`^C`, `\b \b`),
//! canonical reads returning at most one line, EOF as an empty line, the
//! 4096-byte input limit (excess characters of an unfinished line are
//! dropped, as N_TTY does, so erase still works on a full line).

use super::termios::*;
use abi::signal::{SIGINT, SIGQUIT, SIGTSTP};
use std::collections::VecDeque;

/// N_TTY's input buffer (complete lines plus the line being edited).
pub const INPUT_CAP: usize = 4096;
/// What a program may write before the reader of the other side drains
/// it (Linux limits a pty's buffer to 8 KiB).
pub const OUTPUT_CAP: usize = 8192;
/// Echoes go out even when the output is full (they cannot block the
/// typist), up to this much more; beyond it they are dropped.
const ECHO_SLACK: usize = 4096;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// How many input bytes were taken (fewer than offered when the input
    /// buffer is full: the writer waits for the reader).
    pub consumed: usize,
    /// Signals for the terminal's foreground process group (ISIG).
    pub signals: Vec<i32>,
}

pub struct LineDiscipline {
    termios: Termios,
    /// What a reader may take: in canonical mode only complete lines.
    read_buf: VecDeque<u8>,
    /// Canonical mode: the lengths of the complete lines in `read_buf`,
    /// oldest first; 0 is an end-of-file mark (^D on an empty line).
    lines: VecDeque<usize>,
    /// Canonical mode: the line being edited.
    edit: Vec<u8>,
    /// Bytes for the other side (program output and echoes).
    out: VecDeque<u8>,
    /// ^V seen: the next character is taken literally.
    lnext: bool,
    /// Output suspended (^S with IXON, or TCOOFF).
    pub stopped: bool,
    /// The output column, for tabs, ONOCR and erasing tabs.
    column: usize,
    /// The column where the line being edited started.
    canon_column: usize,
}

fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

fn is_continuation(c: u8) -> bool {
    c & 0xc0 == 0x80
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Erase {
    Char,
    Word,
    Line,
}

impl LineDiscipline {
    pub fn new(termios: Termios) -> LineDiscipline {
        LineDiscipline {
            termios,
            read_buf: VecDeque::new(),
            lines: VecDeque::new(),
            edit: Vec::new(),
            out: VecDeque::new(),
            lnext: false,
            stopped: false,
            column: 0,
            canon_column: 0,
        }
    }

    pub fn termios(&self) -> &Termios {
        &self.termios
    }

    pub fn canonical(&self) -> bool {
        self.termios.l(ICANON)
    }

    /// New attributes. Switching canonical mode off makes the unfinished
    /// line readable; switching it on makes what is unread one line (as
    /// Linux's n_tty_set_termios does).
    pub fn set_termios(&mut self, new: Termios) {
        let was_canon = self.canonical();
        let had_ixon = self.termios.i(IXON);
        self.termios = new;
        if was_canon != self.canonical() {
            if self.canonical() {
                self.lines.clear();
                if !self.read_buf.is_empty() {
                    self.lines.push_back(self.read_buf.len());
                }
            } else {
                self.read_buf.extend(self.edit.drain(..));
                self.lines.clear();
            }
            self.lnext = false;
        }
        if had_ixon && !self.termios.i(IXON) {
            self.stopped = false;
        }
    }

    // ---- the input side: typed bytes in, readers take ----

    /// Whether `receive` would take at least one more byte.
    pub fn input_room(&self) -> bool {
        let total = self.read_buf.len() + self.edit.len();
        if self.canonical() {
            // Without a complete line the typist must be able to erase or
            // finish the line, so input is always taken (and excess
            // characters dropped).
            self.lines.is_empty() || total < INPUT_CAP - 1
        } else {
            total < INPUT_CAP
        }
    }

    /// Processes typed bytes until the input buffer is full.
    pub fn receive(&mut self, data: &[u8]) -> Received {
        let mut r = Received::default();
        for &byte in data {
            if !self.input_room() {
                break;
            }
            r.consumed += 1;
            self.receive_one(byte, &mut r.signals);
        }
        r
    }

    fn receive_one(&mut self, byte: u8, signals: &mut Vec<i32>) {
        let t = self.termios;
        let mut c = byte;
        if t.i(ISTRIP) {
            c &= 0x7f;
        }
        if self.lnext {
            self.lnext = false;
            self.take_char(c, false);
            return;
        }
        if t.i(IXON) {
            if t.is(VSTOP, c) {
                self.stopped = true;
                return;
            }
            if t.is(VSTART, c) {
                self.stopped = false;
                return;
            }
            if self.stopped && t.i(IXANY) {
                self.stopped = false;
            }
        }
        if t.l(ISIG) {
            let sig = if t.is(VINTR, c) {
                Some(SIGINT)
            } else if t.is(VQUIT, c) {
                Some(SIGQUIT)
            } else if t.is(VSUSP, c) {
                Some(SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                signals.push(sig);
                if !t.l(NOFLSH) {
                    self.flush_input();
                    self.out.clear();
                }
                if t.i(IXON) {
                    self.stopped = false;
                }
                if t.l(ECHO) {
                    self.echo_char(c);
                }
                return;
            }
        }
        // A CR or NL that input mapping looked at is echoed as a newline;
        // one that passed untouched in raw mode is echoed like any
        // control character (N_TTY's char_map distinction).
        let mapped = (c == b'\r' && t.i(IGNCR | ICRNL)) || (c == b'\n' && t.i(INLCR));
        if c == b'\r' {
            if t.i(IGNCR) {
                return;
            }
            if t.i(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(INLCR) {
            c = b'\r';
        }
        if !self.canonical() {
            self.take_char(c, mapped);
            return;
        }
        let iexten = t.l(IEXTEN);
        if t.is(VERASE, c) {
            return self.erase(Erase::Char);
        }
        if t.is(VKILL, c) {
            return self.erase(Erase::Line);
        }
        if iexten && t.is(VWERASE, c) {
            return self.erase(Erase::Word);
        }
        if iexten && t.is(VLNEXT, c) {
            self.lnext = true;
            if t.l(ECHO) && t.l(ECHOCTL) {
                // Shows "^" until the literal character replaces it.
                self.put_echo(b"^\x08");
            }
            return;
        }
        if iexten && t.l(ECHO) && t.is(VREPRINT, c) {
            self.echo_char(c);
            self.echo_newline();
            self.canon_column = self.column;
            for b in self.edit.clone() {
                self.echo_char(b);
            }
            return;
        }
        if c == b'\n' {
            if t.l(ECHO) || t.l(ECHONL) {
                self.echo_newline();
            }
            self.edit.push(c);
            self.finish_line();
            return;
        }
        if t.is(VEOF, c) {
            // The line ends without the EOF character; an empty one
            // reads as end of file.
            self.finish_line();
            return;
        }
        if t.is(VEOL, c) || (iexten && t.is(VEOL2, c)) {
            if t.l(ECHO) {
                self.echo_char(c);
            }
            self.edit.push(c);
            self.finish_line();
            return;
        }
        self.take_char(c, false);
    }

    /// An ordinary character: into the line being edited (canonical) or
    /// straight to the reader, echoed.
    fn take_char(&mut self, c: u8, mapped_newline: bool) {
        if self.canonical() {
            if self.read_buf.len() + self.edit.len() >= INPUT_CAP - 1 {
                // Full: only a line end is taken (N_TTY beeps here).
                return;
            }
            if self.termios.l(ECHO) {
                if self.edit.is_empty() {
                    self.canon_column = self.column;
                }
                self.echo_char(c);
            }
            self.edit.push(c);
        } else {
            if self.termios.l(ECHO) {
                if c == b'\n' && mapped_newline {
                    self.echo_newline();
                } else {
                    self.echo_char(c);
                }
            }
            self.read_buf.push_back(c);
        }
    }

    fn finish_line(&mut self) {
        self.lines.push_back(self.edit.len());
        self.read_buf.extend(self.edit.drain(..));
    }

    /// Erases the last character, word or the whole line being edited.
    fn erase(&mut self, kind: Erase) {
        let t = self.termios;
        if self.edit.is_empty() {
            return;
        }
        if !t.l(ECHO) {
            match kind {
                Erase::Line => self.edit.clear(),
                _ => self.pop_edit(kind),
            }
            return;
        }
        if kind == Erase::Line && !(t.l(ECHOK) && t.l(ECHOKE) && t.l(ECHOE)) {
            self.edit.clear();
            self.echo_char(t.cc[VKILL]);
            if t.l(ECHOK) {
                self.echo_newline();
            }
            return;
        }
        if kind == Erase::Char && !t.l(ECHOE) {
            self.pop_edit(kind);
            self.echo_char(t.cc[VERASE]);
            return;
        }
        // Visual erase: back over every removed character's columns.
        let mut seen_alnum = false;
        while let Some(&last) = self.edit.last() {
            if kind == Erase::Word {
                if last.is_ascii_alphanumeric() || last == b'_' {
                    seen_alnum = true;
                } else if seen_alnum {
                    break;
                }
            }
            let removed = self.pop_char();
            let width = self.width_of_last(&removed);
            for _ in 0..width {
                self.put_echo(b"\x08 \x08");
            }
            if kind == Erase::Char {
                break;
            }
        }
    }

    /// Removes one character (a whole UTF-8 sequence with IUTF8) and
    /// returns its bytes.
    fn pop_char(&mut self) -> Vec<u8> {
        let mut n = 1;
        if self.termios.i(IUTF8) {
            while n < self.edit.len() && is_continuation(self.edit[self.edit.len() - n]) {
                n += 1;
            }
        }
        self.edit.split_off(self.edit.len() - n)
    }

    fn pop_edit(&mut self, kind: Erase) {
        let mut seen_alnum = false;
        while let Some(&last) = self.edit.last() {
            if kind == Erase::Word {
                if last.is_ascii_alphanumeric() || last == b'_' {
                    seen_alnum = true;
                } else if seen_alnum {
                    break;
                }
            }
            self.pop_char();
            if kind == Erase::Char {
                break;
            }
        }
    }

    /// Columns the just-removed character took when it was echoed.
    fn width_of_last(&self, removed: &[u8]) -> usize {
        let c = removed[0];
        if c == b'\t' {
            // Replay the line from where it started to find the tab's start.
            let mut col = self.canon_column;
            for &b in &self.edit {
                col = match b {
                    b'\t' => (col | 7) + 1,
                    _ if is_cntrl(b) => col + if self.termios.l(ECHOCTL) { 2 } else { 0 },
                    _ if is_continuation(b) && self.termios.i(IUTF8) => col,
                    _ => col + 1,
                };
            }
            return ((col | 7) + 1 - col).min(8);
        }
        if is_cntrl(c) {
            return if self.termios.l(ECHOCTL) { 2 } else { 0 };
        }
        1
    }

    /// Bytes a read could return now (FIONREAD): complete lines in
    /// canonical mode.
    pub fn available(&self) -> usize {
        self.read_buf.len()
    }

    /// Whether a read would return now: a complete line (or EOF mark) in
    /// canonical mode, at least `min` bytes otherwise.
    pub fn readable(&self, min: usize) -> bool {
        if self.canonical() {
            !self.lines.is_empty()
        } else {
            self.read_buf.len() >= min.max(1)
        }
    }

    /// Takes what a read returns: in canonical mode at most one line (a
    /// `Some(0)` is end of file), otherwise what is there. None when
    /// there is nothing (the reader waits).
    pub fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.canonical() {
            let len = *self.lines.front()?;
            let n = len.min(buf.len());
            for (i, b) in self.read_buf.drain(..n).enumerate() {
                buf[i] = b;
            }
            if n == len {
                self.lines.pop_front();
            } else {
                self.lines[0] -= n;
            }
            return Some(n);
        }
        if self.read_buf.is_empty() {
            return None;
        }
        let n = buf.len().min(self.read_buf.len());
        for (i, b) in self.read_buf.drain(..n).enumerate() {
            buf[i] = b;
        }
        Some(n)
    }

    pub fn flush_input(&mut self) {
        self.read_buf.clear();
        self.lines.clear();
        self.edit.clear();
        self.lnext = false;
    }

    // ---- the output side: program output in, the other side takes ----

    /// Processes program output until the output buffer is full or output
    /// is stopped; returns how many bytes were taken.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let mut n = 0;
        for &c in data {
            // Room for the widest expansion (a tab to 8 spaces).
            if self.stopped || self.out.len() + 8 > OUTPUT_CAP {
                break;
            }
            self.output_char(c);
            n += 1;
        }
        n
    }

    /// Whether `write` would take at least one byte.
    pub fn output_room(&self) -> bool {
        !self.stopped && self.out.len() + 8 <= OUTPUT_CAP
    }

    /// Bytes waiting for the other side (TIOCOUTQ, FIONREAD on a master).
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    pub fn take_output(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.out.len());
        for (i, b) in self.out.drain(..n).enumerate() {
            buf[i] = b;
        }
        n
    }

    pub fn flush_output(&mut self) {
        self.out.clear();
    }

    /// Queues bytes as they are, for the other side (TCIOFF/TCION send
    /// the STOP/START characters this way).
    pub fn send_raw(&mut self, data: &[u8]) {
        self.out.extend(data);
    }

    /// One byte of output with OPOST processing.
    fn output_char(&mut self, c: u8) {
        let t = self.termios;
        if !t.o(OPOST) {
            self.out.push_back(c);
            return;
        }
        match c {
            b'\n' => {
                if t.o(ONLRET) {
                    self.column = 0;
                }
                if t.o(ONLCR) {
                    self.column = 0;
                    self.out.extend(b"\r\n");
                    return;
                }
                self.out.push_back(c);
            }
            b'\r' => {
                if t.o(ONOCR) && self.column == 0 {
                    return;
                }
                if t.o(OCRNL) {
                    if t.o(ONLRET) {
                        self.column = 0;
                    }
                    self.out.push_back(b'\n');
                    return;
                }
                self.column = 0;
                self.out.push_back(c);
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                self.column += spaces;
                if t.oflag & TABDLY == XTABS {
                    self.out.extend(std::iter::repeat_n(b' ', spaces));
                } else {
                    self.out.push_back(c);
                }
            }
            0x08 => {
                self.column = self.column.saturating_sub(1);
                self.out.push_back(c);
            }
            _ => {
                if !(is_cntrl(c) || (t.i(IUTF8) && is_continuation(c))) {
                    self.column += 1;
                }
                self.out.push_back(c);
            }
        }
    }

    fn echo_room(&self) -> bool {
        self.out.len() < OUTPUT_CAP + ECHO_SLACK
    }

    /// Echoes `c`: a control character other than tab as `^X` with
    /// ECHOCTL, anything else through output processing.
    fn echo_char(&mut self, c: u8) {
        if !self.echo_room() {
            return;
        }
        if self.termios.l(ECHOCTL) && is_cntrl(c) && c != b'\t' {
            self.out.extend([b'^', c ^ 0x40]);
            self.column += 2;
        } else {
            self.output_char(c);
        }
    }

    fn echo_newline(&mut self) {
        if self.echo_room() {
            self.output_char(b'\n');
        }
    }

    /// Echo bytes that bypass output processing ("\b \b").
    fn put_echo(&mut self, bytes: &[u8]) {
        if !self.echo_room() {
            return;
        }
        for &b in bytes {
            match b {
                0x08 => self.column = self.column.saturating_sub(1),
                _ => self.column += 1,
            }
            self.out.push_back(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cooked() -> LineDiscipline {
        LineDiscipline::new(Termios::default_slave())
    }

    fn echoed(ld: &mut LineDiscipline) -> Vec<u8> {
        let mut b = vec![0u8; 65536];
        let n = ld.take_output(&mut b);
        b.truncate(n);
        b
    }

    fn read_all(ld: &mut LineDiscipline) -> Option<Vec<u8>> {
        let mut b = vec![0u8; 65536];
        ld.read(&mut b).map(|n| b[..n].to_vec())
    }

    #[test]
    fn canonical_line_with_icrnl_echo_and_onlcr() {
        let mut ld = cooked();
        let r = ld.receive(b"hi");
        assert_eq!(r, Received { consumed: 2, signals: vec![] });
        // No complete line yet: nothing to read.
        assert!(!ld.readable(1));
        assert_eq!(read_all(&mut ld), None);
        ld.receive(b"\r");
        assert_eq!(echoed(&mut ld), b"hi\r\n");
        assert_eq!(ld.available(), 3);
        assert_eq!(read_all(&mut ld).unwrap(), b"hi\n");
        assert_eq!(read_all(&mut ld), None);
    }

    #[test]
    fn a_canonical_read_returns_one_line_and_may_split_it() {
        let mut ld = cooked();
        ld.receive(b"one\ntwo\n");
        let mut small = [0u8; 2];
        assert_eq!(ld.read(&mut small), Some(2));
        assert_eq!(&small, b"on");
        assert_eq!(read_all(&mut ld).unwrap(), b"e\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"two\n");
    }

    #[test]
    fn erase_and_kill_edit_the_line_and_echo_backspaces() {
        let mut ld = cooked();
        ld.receive(b"abc\x7f\x7fd\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"ad\n");
        assert_eq!(echoed(&mut ld), b"abc\x08 \x08\x08 \x08d\r\n");
        ld.receive(b"xyz\x15q\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"q\n");
        assert_eq!(echoed(&mut ld), b"xyz\x08 \x08\x08 \x08\x08 \x08q\r\n");
        // Erase on an empty line does nothing.
        ld.receive(b"\x7f\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"\n");
        assert_eq!(echoed(&mut ld), b"\r\n");
    }

    #[test]
    fn werase_and_control_characters_echo_as_caret_pairs() {
        let mut ld = cooked();
        ld.receive(b"foo bar\x17x\x01");
        assert_eq!(echoed(&mut ld), b"foo bar\x08 \x08\x08 \x08\x08 \x08x^A");
        // Erasing ^A backs over both columns.
        ld.receive(b"\x7f\n");
        assert_eq!(echoed(&mut ld), b"\x08 \x08\x08 \x08\r\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"foo x\n");
    }

    #[test]
    fn kill_without_echoke_echoes_the_character_and_a_newline() {
        let mut ld = cooked();
        let mut t = *ld.termios();
        t.lflag &= !ECHOKE;
        ld.set_termios(t);
        ld.receive(b"ab\x15");
        assert_eq!(echoed(&mut ld), b"ab^U\r\n");
        assert!(!ld.readable(1));
    }

    #[test]
    fn eof_ends_a_line_without_itself_and_alone_reads_as_end_of_file() {
        let mut ld = cooked();
        ld.receive(b"ab\x04");
        assert_eq!(read_all(&mut ld).unwrap(), b"ab");
        ld.receive(b"\x04");
        assert!(ld.readable(1));
        assert_eq!(read_all(&mut ld).unwrap(), b"");
        assert_eq!(read_all(&mut ld), None);
        // EOF is not echoed.
        assert_eq!(echoed(&mut ld), b"ab");
    }

    #[test]
    fn signal_characters_flush_echo_and_report() {
        let mut ld = cooked();
        ld.receive(b"partial");
        echoed(&mut ld);
        let r = ld.receive(b"\x03");
        assert_eq!(r.signals, vec![SIGINT]);
        assert_eq!(echoed(&mut ld), b"^C");
        ld.receive(b"\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"\n");
        assert_eq!(ld.receive(b"\x1c\x1a").signals, vec![SIGQUIT, SIGTSTP]);
        // Without ISIG they are ordinary bytes.
        let mut t = *ld.termios();
        t.lflag &= !ISIG;
        ld.set_termios(t);
        assert_eq!(ld.receive(b"\x03\n").signals, Vec::<i32>::new());
        assert_eq!(read_all(&mut ld).unwrap(), b"\x03\n");
    }

    #[test]
    fn input_mapping_igncr_inlcr() {
        let mut ld = cooked();
        let mut t = *ld.termios();
        t.iflag = IGNCR;
        ld.set_termios(t);
        ld.receive(b"a\rb\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"ab\n");
        t.iflag = INLCR;
        t.lflag &= !ICANON;
        ld.set_termios(t);
        ld.receive(b"x\ny");
        assert_eq!(read_all(&mut ld).unwrap(), b"x\ry");
    }

    #[test]
    fn raw_mode_passes_bytes_and_echoes_them() {
        let mut ld = cooked();
        let mut t = *ld.termios();
        t.lflag &= !(ICANON | ECHO);
        ld.set_termios(t);
        ld.receive(b"x\ry\x7f\x15");
        assert_eq!(read_all(&mut ld).unwrap(), b"x\ny\x7f\x15");
        assert_eq!(echoed(&mut ld), b"");
        t.lflag |= ECHO;
        ld.set_termios(t);
        ld.receive(b"a\r\x01");
        // A mapped CR echoes as a newline, a control character as ^A.
        assert_eq!(echoed(&mut ld), b"a\r\n^A");
        // VMIN-style thresholds.
        assert!(ld.readable(3));
        assert!(!ld.readable(4));
    }

    #[test]
    fn switching_modes_moves_the_unfinished_line() {
        let mut ld = cooked();
        ld.receive(b"abc");
        let mut t = *ld.termios();
        t.lflag &= !ICANON;
        ld.set_termios(t);
        assert_eq!(read_all(&mut ld).unwrap(), b"abc");
        ld.receive(b"de");
        t.lflag |= ICANON;
        ld.set_termios(t);
        // Unread raw input becomes one line.
        assert_eq!(read_all(&mut ld).unwrap(), b"de");
    }

    #[test]
    fn lnext_takes_the_next_character_literally() {
        let mut ld = cooked();
        ld.receive(b"\x16\x03\x16\x7f\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"\x03\x7f\n");
        assert_eq!(echoed(&mut ld), b"^\x08^C^\x08^?\r\n");
    }

    #[test]
    fn output_processing() {
        let mut ld = cooked();
        assert_eq!(ld.write(b"a\nb\r\n"), 5);
        assert_eq!(echoed(&mut ld), b"a\r\nb\r\r\n");
        let mut t = *ld.termios();
        t.oflag = OPOST | ONLCR | XTABS;
        ld.set_termios(t);
        ld.write(b"ab\tc");
        assert_eq!(echoed(&mut ld), b"ab      c");
        t.oflag = 0;
        ld.set_termios(t);
        ld.write(b"x\n");
        assert_eq!(echoed(&mut ld), b"x\n");
        t.oflag = OPOST | OCRNL;
        ld.set_termios(t);
        ld.write(b"\r");
        assert_eq!(echoed(&mut ld), b"\n");
    }

    #[test]
    fn ixon_stops_and_starts_output() {
        let mut ld = cooked();
        ld.receive(b"\x13");
        assert!(ld.stopped);
        assert_eq!(ld.write(b"x"), 0);
        assert!(!ld.output_room());
        ld.receive(b"\x11");
        assert_eq!(ld.write(b"x"), 1);
        // Neither character reaches the reader.
        ld.receive(b"\n");
        assert_eq!(read_all(&mut ld).unwrap(), b"\n");
    }

    #[test]
    fn buffers_are_bounded() {
        let mut ld = cooked();
        let mut t = *ld.termios();
        t.lflag &= !(ICANON | ECHO);
        ld.set_termios(t);
        let big = vec![b'x'; INPUT_CAP + 10];
        assert_eq!(ld.receive(&big).consumed, INPUT_CAP);
        assert!(!ld.input_room());
        // Canonical: an endless line is taken but truncated, and can
        // still be ended.
        let mut ld = cooked();
        let mut t = *ld.termios();
        t.lflag &= !ECHO;
        ld.set_termios(t);
        assert_eq!(ld.receive(&big).consumed, big.len());
        ld.receive(b"\n");
        assert_eq!(read_all(&mut ld).unwrap().len(), INPUT_CAP);
        // Output stops at its cap.
        let out = vec![b'y'; OUTPUT_CAP];
        let n = ld.write(&out);
        assert!(n > 0 && n < OUTPUT_CAP);
        assert!(!ld.output_room());
    }

    #[test]
    fn utf8_erase_removes_a_whole_character() {
        let mut ld = cooked();
        let mut t = *ld.termios();
        t.iflag |= IUTF8;
        ld.set_termios(t);
        ld.receive("aé\x7f\n".as_bytes());
        assert_eq!(read_all(&mut ld).unwrap(), b"a\n");
    }
}
