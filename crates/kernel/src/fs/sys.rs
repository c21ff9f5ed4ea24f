//! sysfs, the little of it programs read at start-up: the CPU lists glibc's
//! get_nprocs and sysconf read (from the sandbox's CPU count, not the
//! host's) and an empty /sys/fs/cgroup. Everything else is absent (ENOENT),
//! as on a kernel without those drivers.

use super::node::{synthetic_stat, BytesFile, Caller, Node, S_IFDIR, S_IFREG};
use super::vfs::DEV_SYS;
use super::{DirEntry, FileOps};
use crate::SysResult;
use abi::types::Stat;
use abi::Errno;
use std::sync::Arc;

/// Directories and files by path below /sys.
const TREE: &[(&str, bool)] = &[
    ("", true),
    ("block", true),
    ("bus", true),
    ("class", true),
    ("dev", true),
    ("devices", true),
    ("devices/system", true),
    ("devices/system/cpu", true),
    ("devices/system/cpu/online", false),
    ("devices/system/cpu/possible", false),
    ("devices/system/cpu/present", false),
    ("firmware", true),
    ("fs", true),
    ("fs/cgroup", true),
    ("kernel", true),
    ("module", true),
];

const CPU_DIR: &str = "devices/system/cpu";

pub fn root() -> Arc<dyn Node> {
    Arc::new(SysNode::Path(""))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SysNode {
    Path(&'static str),
    /// devices/system/cpu/cpuN
    Cpu(u32),
}

fn cpus(c: &Caller) -> u32 {
    c.kernel.map(|k| k.config.cpus).unwrap_or(1).max(1)
}

fn parent_of(p: &str) -> &str {
    p.rfind('/').map(|i| &p[..i]).unwrap_or("")
}

fn ino_of(p: &str) -> u64 {
    TREE.iter().position(|(q, _)| *q == p).map(|i| i as u64 + 1).unwrap_or(0)
}

impl Node for SysNode {
    fn kind(&self) -> u32 {
        match self {
            SysNode::Path(p) if !TREE.iter().any(|(q, d)| q == p && *d) => S_IFREG,
            _ => S_IFDIR,
        }
    }
    fn stat(&self, _c: &Caller) -> SysResult<Stat> {
        Ok(match self {
            SysNode::Path(p) if self.kind() == S_IFREG => synthetic_stat(DEV_SYS, ino_of(p), S_IFREG | 0o444, 1, 4096, 0),
            SysNode::Path(p) => synthetic_stat(DEV_SYS, ino_of(p), S_IFDIR | 0o755, 2, 0, 0),
            SysNode::Cpu(i) => synthetic_stat(DEV_SYS, 1000 + *i as u64, S_IFDIR | 0o755, 2, 0, 0),
        })
    }
    fn lookup(&self, c: &Caller, name: &[u8]) -> SysResult<Arc<dyn Node>> {
        let SysNode::Path(p) = *self else { return Err(Errno::ENOENT) };
        if self.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let name = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        if p == CPU_DIR {
            if let Some(i) = name.strip_prefix("cpu").and_then(|n| n.parse::<u32>().ok()) {
                if i < cpus(c) && name == format!("cpu{i}") {
                    return Ok(Arc::new(SysNode::Cpu(i)));
                }
            }
        }
        let full = if p.is_empty() { name.to_string() } else { format!("{p}/{name}") };
        TREE.iter().find(|(q, _)| *q == full).map(|(q, _)| Arc::new(SysNode::Path(q)) as Arc<dyn Node>).ok_or(Errno::ENOENT)
    }
    fn readdir(&self, c: &Caller) -> SysResult<Vec<DirEntry>> {
        let SysNode::Path(p) = *self else { return Ok(Vec::new()) };
        let mut out: Vec<DirEntry> = TREE
            .iter()
            .filter(|(q, _)| !q.is_empty() && parent_of(q) == p)
            .map(|(q, d)| DirEntry { ino: ino_of(q), kind: if *d { libc::DT_DIR } else { libc::DT_REG }, name: q.rsplit('/').next().unwrap_or(q).as_bytes().to_vec() })
            .collect();
        if p == CPU_DIR {
            for i in 0..cpus(c) {
                out.push(DirEntry { ino: 1000 + i as u64, kind: libc::DT_DIR, name: format!("cpu{i}").into_bytes() });
            }
        }
        Ok(out)
    }
    fn open(&self, c: &Caller, flags: u32) -> SysResult<Box<dyn FileOps>> {
        if flags as i32 & libc::O_ACCMODE != libc::O_RDONLY {
            return Err(Errno::EACCES);
        }
        let data = match self {
            SysNode::Path(p) if p.starts_with(CPU_DIR) => {
                let n = cpus(c);
                if n == 1 { "0\n".to_string() } else { format!("0-{}\n", n - 1) }
            }
            _ => return Err(Errno::EISDIR),
        };
        Ok(Box::new(BytesFile { data: data.into_bytes(), stat: self.stat(c)? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_tree() {
        let c = Caller { kernel: None, tgid: 1, tid: 1 };
        let r = root();
        let cpu = r.lookup(&c, b"devices").unwrap().lookup(&c, b"system").unwrap().lookup(&c, b"cpu").unwrap();
        let f = cpu.lookup(&c, b"online").unwrap().open(&c, 0).unwrap();
        let mut b = [0u8; 16];
        let n = f.read_at(None, &mut b, 0).unwrap();
        assert_eq!(&b[..n], b"0\n");
        let names: Vec<Vec<u8>> = cpu.readdir(&c).unwrap().into_iter().map(|e| e.name).collect();
        assert!(names.contains(&b"cpu0".to_vec()) && names.contains(&b"possible".to_vec()));
        assert!(r.lookup(&c, b"fs").unwrap().lookup(&c, b"cgroup").unwrap().readdir(&c).unwrap().is_empty());
        assert_eq!(r.lookup(&c, b"nope").err(), Some(Errno::ENOENT));
    }
}
