//! Terminal attributes as the Linux x86-64 ABI lays them out (`struct
//! termios` of TCGETS, not glibc's larger one), their defaults, and the
//! terminal ioctl numbers.

use abi::types::Pod;

/// The kernel's `struct termios` (36 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

/// `struct termios2` (TCGETS2/TCSETS2): termios plus the two speeds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Termios2 {
    pub t: Termios,
    pub ispeed: u32,
    pub ospeed: u32,
}

// SAFETY: repr(C), integers and a byte array only; 16 + 1 + 19 = 36 bytes,
// a multiple of the 4-byte alignment, so there is no padding.
unsafe impl Pod for Termios {}
// SAFETY: repr(C), a padding-free Termios (36 bytes) then two u32s.
unsafe impl Pod for Termios2 {}

pub const NCCS: usize = 19;

// c_cc indices.
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

// c_iflag.
pub const IGNBRK: u32 = 0o1;
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IUTF8: u32 = 0o40000;

// c_oflag.
pub const OPOST: u32 = 0o1;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;
pub const TABDLY: u32 = 0o14000;
pub const XTABS: u32 = 0o14000;

// c_cflag.
pub const B38400: u32 = 0o17;
pub const CS8: u32 = 0o60;
pub const CREAD: u32 = 0o200;
pub const HUPCL: u32 = 0o2000;

// c_lflag.
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;

/// The speed B38400 stands for (termios2's ispeed/ospeed).
pub const BAUD_38400: u32 = 38400;

impl Termios {
    /// Linux's `tty_std_termios`, which a pty's slave starts with.
    pub fn default_slave() -> Termios {
        let mut cc = [0u8; NCCS];
        // INIT_C_CC: ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1, then ^Q ^S ^Z,
        // VEOL off, ^R ^O ^W ^V, VEOL2 off.
        cc[..17].copy_from_slice(&[3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0]);
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD | HUPCL,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
        }
    }

    /// What Linux's pty master starts with: no processing at all.
    pub fn default_master() -> Termios {
        Termios { iflag: 0, oflag: 0, cflag: B38400 | CS8 | CREAD, lflag: 0, ..Termios::default_slave() }
    }

    pub fn i(&self, f: u32) -> bool {
        self.iflag & f != 0
    }
    pub fn o(&self, f: u32) -> bool {
        self.oflag & f != 0
    }
    pub fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }
    /// True when `c` is the (enabled) special character `idx`; a c_cc of
    /// 0 (_POSIX_VDISABLE) disables it.
    pub fn is(&self, idx: usize, c: u8) -> bool {
        self.cc[idx] != 0 && self.cc[idx] == c
    }
}

/// Terminal ioctl numbers (x86-64).
pub mod ioctl {
    pub const TCGETS: u64 = 0x5401;
    pub const TCSETS: u64 = 0x5402;
    pub const TCSETSW: u64 = 0x5403;
    pub const TCSETSF: u64 = 0x5404;
    pub const TCSBRK: u64 = 0x5409;
    pub const TCXONC: u64 = 0x540A;
    pub const TCFLSH: u64 = 0x540B;
    pub const TIOCEXCL: u64 = 0x540C;
    pub const TIOCNXCL: u64 = 0x540D;
    pub const TIOCSCTTY: u64 = 0x540E;
    pub const TIOCGPGRP: u64 = 0x540F;
    pub const TIOCSPGRP: u64 = 0x5410;
    pub const TIOCOUTQ: u64 = 0x5411;
    pub const TIOCGWINSZ: u64 = 0x5413;
    pub const TIOCSWINSZ: u64 = 0x5414;
    pub const FIONREAD: u64 = 0x541B;
    pub const TIOCPKT: u64 = 0x5420;
    pub const TIOCNOTTY: u64 = 0x5422;
    pub const TIOCSETD: u64 = 0x5423;
    pub const TIOCGETD: u64 = 0x5424;
    pub const TCSBRKP: u64 = 0x5425;
    pub const TIOCSBRK: u64 = 0x5427;
    pub const TIOCCBRK: u64 = 0x5428;
    pub const TIOCGSID: u64 = 0x5429;
    pub const TCGETS2: u64 = 0x802C_542A;
    pub const TCSETS2: u64 = 0x402C_542B;
    pub const TCSETSW2: u64 = 0x402C_542C;
    pub const TCSETSF2: u64 = 0x402C_542D;
    pub const TIOCGPTN: u64 = 0x8004_5430;
    pub const TIOCSPTLCK: u64 = 0x4004_5431;
    pub const TIOCGPKT: u64 = 0x8004_5438;
    pub const TIOCGPTLCK: u64 = 0x8004_5439;
    pub const TIOCGEXCL: u64 = 0x8004_5440;
    pub const TIOCGPTPEER: u64 = 0x5441;

    // TCXONC arguments.
    pub const TCOOFF: u64 = 0;
    pub const TCOON: u64 = 1;
    pub const TCIOFF: u64 = 2;
    pub const TCION: u64 = 3;
    // TCFLSH arguments.
    pub const TCIFLUSH: u64 = 0;
    pub const TCOFLUSH: u64 = 1;
    pub const TCIOFLUSH: u64 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<Termios>(), 36);
        assert_eq!(std::mem::size_of::<Termios2>(), 44);
        assert_eq!(libc::TCGETS, ioctl::TCGETS);
        assert_eq!(libc::TIOCGPTN, ioctl::TIOCGPTN);
        assert_eq!(libc::TIOCGPTPEER, ioctl::TIOCGPTPEER);
        assert_eq!(libc::TCGETS2, ioctl::TCGETS2);
        assert_eq!(libc::ECHOCTL, ECHOCTL);
        assert_eq!(libc::IUTF8, IUTF8);
        assert_eq!(libc::IEXTEN, IEXTEN);
        assert_eq!(libc::XTABS, XTABS);
        assert_eq!(libc::VEOL2, VEOL2);
    }
}
