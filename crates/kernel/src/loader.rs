//! Loading an ELF executable (and its interpreter) into a fresh memory map
//! and building the initial stack, as Linux's binfmt_elf does. Scripts
//! starting with `#!` are run through their interpreter.

use crate::fs::{self, FsContext, OpenFile};
use crate::mm::{page_down, page_up, FileBacking, MemoryManager, Vma, STACK_SIZE};
use crate::Kernel;
use abi::Errno;
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self as ph, ProgramHeader};
use platform::{CpuState, Perms, Regs};
use std::sync::Arc;

/// Where position-independent executables are loaded (Linux's ELF_ET_DYN_BASE
/// for 47-bit address spaces).
const PIE_BASE: u64 = 0x5555_5555_4000;
const MAX_SCRIPT_DEPTH: usize = 4;

#[derive(Debug)]
pub enum LoadError {
    Open(Errno),
    NotExecutable(&'static str),
    Memory(String),
}

impl LoadError {
    /// A one-line description naming the command.
    pub fn describe(&self, cmd: &str) -> String {
        match self {
            LoadError::Open(e) => format!("exec {cmd:?}: {}", crate::kernel::errno_text(*e)),
            LoadError::NotExecutable(why) => format!("exec {cmd:?}: exec format error: {why}"),
            LoadError::Memory(m) => format!("exec {cmd:?}: {m}"),
        }
    }
    pub fn errno(&self) -> Errno {
        match self {
            LoadError::Open(e) => *e,
            LoadError::NotExecutable(_) => Errno::ENOEXEC,
            LoadError::Memory(_) => Errno::ENOMEM,
        }
    }
}

impl From<Errno> for LoadError {
    fn from(e: Errno) -> Self {
        LoadError::Open(e)
    }
}

/// What a successful exec produces.
pub struct Image {
    pub cpu: CpuState,
    /// Name for /proc/PID/comm (the file name, at most 15 bytes).
    pub comm: Vec<u8>,
    /// argv joined with NULs, for /proc/PID/cmdline.
    pub cmdline: Vec<u8>,
    /// Absolute path of the executable.
    pub exe: Vec<u8>,
}

fn read_fully(file: &OpenFile, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        match file.ops.read_at(None, &mut buf[done..], off + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Loads `path` with `argv`/`envp` into `mm` (which must be empty).
pub fn load(kernel: &Arc<Kernel>, mm: &Arc<MemoryManager>, fsctx: &FsContext, caller: i32, path: &[u8], argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<Image, LoadError> {
    let mut path = path.to_vec();
    let mut argv = argv.to_vec();
    for _ in 0..=MAX_SCRIPT_DEPTH {
        let (file, abs) = fs::vfs::open_exec(kernel, fsctx, caller, &path)?;
        let mut head = vec![0u8; 4096];
        let n = read_fully(&file, &mut head, 0)?;
        head.truncate(n);
        if head.starts_with(b"#!") {
            let (interp, arg) = parse_shebang(&head).ok_or(LoadError::NotExecutable("malformed #! line"))?;
            let mut nargv = vec![interp.clone()];
            nargv.extend(arg);
            nargv.push(path.clone());
            nargv.extend(argv.iter().skip(1).cloned());
            argv = nargv;
            path = interp;
            continue;
        }
        return load_elf(kernel, mm, fsctx, caller, file, &abs, &head, &argv, envp);
    }
    Err(LoadError::Open(Errno::ELOOP))
}

fn parse_shebang(head: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let line = &head[2..head.iter().position(|&b| b == b'\n').unwrap_or(head.len())];
    let line: &[u8] = trim(line);
    if line.is_empty() {
        return None;
    }
    let split = line.iter().position(|&b| b == b' ' || b == b'\t');
    Some(match split {
        None => (line.to_vec(), None),
        Some(i) => {
            let rest = trim(&line[i..]);
            (line[..i].to_vec(), (!rest.is_empty()).then(|| rest.to_vec()))
        }
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let b = s.iter().rposition(|b| !b.is_ascii_whitespace()).map(|i| i + 1).unwrap_or(a);
    &s[a..b]
}

struct Loaded {
    entry: u64,
    bias: u64,
    phdr: u64,
    phnum: u64,
    end: u64,
    interp: Option<Vec<u8>>,
}

fn parse_headers(file: &OpenFile, head: &[u8]) -> Result<(Header, Vec<ProgramHeader>), LoadError> {
    if head.len() < 64 || &head[..4] != b"\x7fELF" {
        return Err(LoadError::NotExecutable("not an ELF file"));
    }
    let h = goblin::elf::Elf::parse_header(head).map_err(|_| LoadError::NotExecutable("malformed ELF header"))?;
    if h.e_ident[header::EI_CLASS] != header::ELFCLASS64 || h.e_machine != header::EM_X86_64 {
        return Err(LoadError::NotExecutable("not an x86-64 ELF executable"));
    }
    if h.e_type != header::ET_EXEC && h.e_type != header::ET_DYN {
        return Err(LoadError::NotExecutable("ELF file is neither an executable nor a shared object"));
    }
    if h.e_phentsize as usize != std::mem::size_of::<goblin::elf64::program_header::ProgramHeader>() || h.e_phnum == 0 || h.e_phnum > 256 {
        return Err(LoadError::NotExecutable("bad ELF program headers"));
    }
    let need = h.e_phoff as usize + h.e_phnum as usize * h.e_phentsize as usize;
    let mut buf = head.to_vec();
    if need > buf.len() {
        buf.resize(need, 0);
        let n = read_fully(file, &mut buf, 0)?;
        if n < need {
            return Err(LoadError::NotExecutable("truncated ELF program headers"));
        }
    }
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phs = ProgramHeader::parse(&buf, h.e_phoff as usize, h.e_phnum as usize, ctx).map_err(|_| LoadError::NotExecutable("bad ELF program headers"))?;
    Ok((h, phs))
}

fn perms_of(flags: u32) -> Perms {
    let mut p = Perms::empty();
    if flags & ph::PF_R != 0 {
        p |= Perms::READ;
    }
    if flags & ph::PF_W != 0 {
        p |= Perms::WRITE;
    }
    if flags & ph::PF_X != 0 {
        p |= Perms::EXEC;
    }
    p
}

/// Maps the PT_LOAD segments of one ELF object.
fn map_object(mm: &Arc<MemoryManager>, file: &Arc<OpenFile>, path: &[u8], h: &Header, phs: &[ProgramHeader], bias_hint: Option<u64>) -> Result<Loaded, LoadError> {
    let loads: Vec<&ProgramHeader> = phs.iter().filter(|p| p.p_type == ph::PT_LOAD).collect();
    if loads.is_empty() {
        return Err(LoadError::NotExecutable("ELF file has no loadable segments"));
    }
    let lo = page_down(loads.iter().map(|p| p.p_vaddr).min().unwrap());
    let hi = loads.iter().map(|p| p.p_vaddr.saturating_add(p.p_memsz)).max().unwrap();
    let hi = page_up(hi).ok_or(LoadError::NotExecutable("segment out of range"))?;
    let bias = if h.e_type == header::ET_DYN {
        match bias_hint {
            Some(b) => b,
            None => mm.find_free(hi - lo).ok_or_else(|| LoadError::Memory("no room for the interpreter".into()))? - lo,
        }
    } else {
        0
    };
    if bias.checked_add(hi).is_none_or(|e| e > mm.mmap_base) {
        return Err(LoadError::NotExecutable("segment out of range"));
    }
    for p in &loads {
        if p.p_filesz > p.p_memsz || p.p_offset % memfile::PAGE_SIZE != p.p_vaddr % memfile::PAGE_SIZE {
            return Err(LoadError::NotExecutable("misaligned ELF segment"));
        }
        let perms = perms_of(p.p_flags);
        let vaddr = bias + p.p_vaddr;
        let start = page_down(vaddr);
        let file_part_end = page_up(vaddr + p.p_filesz).unwrap();
        let mem_end = page_up(vaddr + p.p_memsz).unwrap();
        if p.p_filesz > 0 {
            let mut v = mm.anon_vma(start, file_part_end, perms, false, "");
            v.file = Some(FileBacking { file: file.clone(), offset: p.p_offset - (vaddr - start), file_end: p.p_offset + p.p_filesz, path: path.to_vec() });
            mm.insert(v).map_err(|e| LoadError::Memory(e.to_string()))?;
        }
        let anon_start = if p.p_filesz > 0 { file_part_end } else { start };
        if mem_end > anon_start {
            let v: Vma = mm.anon_vma(anon_start, mem_end, perms, false, "");
            mm.insert(v).map_err(|e| LoadError::Memory(e.to_string()))?;
        }
    }
    let phdr = match phs.iter().find(|p| p.p_type == ph::PT_PHDR) {
        Some(p) => bias + p.p_vaddr,
        None => loads.iter().find(|p| p.p_offset == 0).map(|p| bias + p.p_vaddr + h.e_phoff).unwrap_or(0),
    };
    Ok(Loaded { entry: bias + h.e_entry, bias, phdr, phnum: phs.len() as u64, end: bias + hi, interp: None })
}

#[allow(clippy::too_many_arguments)]
fn load_elf(kernel: &Arc<Kernel>, mm: &Arc<MemoryManager>, fsctx: &FsContext, caller: i32, file: Arc<OpenFile>, abs: &[u8], head: &[u8], argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<Image, LoadError> {
    let (h, phs) = parse_headers(&file, head)?;
    let mut interp_path = None;
    if let Some(ip) = phs.iter().find(|p| p.p_type == ph::PT_INTERP) {
        if ip.p_filesz == 0 || ip.p_filesz > 4096 {
            return Err(LoadError::NotExecutable("bad PT_INTERP"));
        }
        let mut b = vec![0u8; ip.p_filesz as usize];
        read_fully(&file, &mut b, ip.p_offset)?;
        if let Some(z) = b.iter().position(|&c| c == 0) {
            b.truncate(z);
        }
        interp_path = Some(b);
    }
    let mut exe = map_object(mm, &file, abs, &h, &phs, if h.e_type == header::ET_DYN { Some(PIE_BASE) } else { None })?;
    exe.interp = interp_path;
    mm.set_brk_start(exe.end);

    let mut base = 0;
    let mut entry = exe.entry;
    if let Some(ip) = &exe.interp {
        let (ifile, iabs) = fs::vfs::open_exec(kernel, fsctx, caller, ip)?;
        let mut ihead = vec![0u8; 4096];
        let n = read_fully(&ifile, &mut ihead, 0)?;
        ihead.truncate(n);
        let (ih, iphs) = parse_headers(&ifile, &ihead)?;
        let li = map_object(mm, &ifile, &iabs, &ih, &iphs, None)?;
        base = li.bias;
        entry = li.entry;
    }

    let stack = mm.anon_vma(mm.stack_top - STACK_SIZE, mm.stack_top, Perms::READ | Perms::WRITE, false, "[stack]");
    mm.insert(stack).map_err(|e| LoadError::Memory(e.to_string()))?;
    let auxv_base = [
        (libc::AT_PHDR, exe.phdr),
        (libc::AT_PHENT, 56),
        (libc::AT_PHNUM, exe.phnum),
        (libc::AT_PAGESZ, memfile::PAGE_SIZE),
        (libc::AT_BASE, base),
        (libc::AT_FLAGS, 0),
        (libc::AT_ENTRY, exe.entry),
        (libc::AT_UID, 0),
        (libc::AT_EUID, 0),
        (libc::AT_GID, 0),
        (libc::AT_EGID, 0),
        (libc::AT_SECURE, 0),
        (libc::AT_CLKTCK, 100),
        (libc::AT_HWCAP, hwcap()),
        (51 /* AT_MINSIGSTKSZ */, 2048),
    ];
    let rsp = build_stack(mm, argv, envp, abs, &auxv_base).map_err(|e| LoadError::Memory(format!("building the stack: {e}")))?;

    let regs = Regs { rip: entry, rsp, cs: 0x33, ss: 0x2b, eflags: 0x202, ..Default::default() };
    let name = abs.rsplit(|&b| b == b'/').next().unwrap_or(abs);
    Ok(Image {
        cpu: CpuState::new(regs),
        comm: name[..name.len().min(15)].to_vec(),
        cmdline: argv.iter().flat_map(|a| a.iter().copied().chain(std::iter::once(0))).collect(),
        exe: abs.to_vec(),
    })
}

fn hwcap() -> u64 {
    std::arch::x86_64::__cpuid(1).edx as u64
}

/// Lays out argc, argv, envp, auxv and the strings they point to at the top
/// of the stack; returns the initial stack pointer (16-byte aligned, at argc).
fn build_stack(mm: &MemoryManager, argv: &[Vec<u8>], envp: &[Vec<u8>], execfn: &[u8], auxv: &[(u64, u64)]) -> Result<u64, Errno> {
    let mut sp = mm.stack_top;
    let push_bytes = |sp: &mut u64, b: &[u8]| -> Result<u64, Errno> {
        *sp -= b.len() as u64;
        mm.copy_out(*sp, b)?;
        Ok(*sp)
    };
    let cstr = |s: &[u8]| {
        let mut v = s.to_vec();
        v.push(0);
        v
    };
    let execfn_p = push_bytes(&mut sp, &cstr(execfn))?;
    let mut envp_p = Vec::with_capacity(envp.len());
    for e in envp.iter().rev() {
        envp_p.push(push_bytes(&mut sp, &cstr(e))?);
    }
    envp_p.reverse();
    let mut argv_p = Vec::with_capacity(argv.len());
    for a in argv.iter().rev() {
        argv_p.push(push_bytes(&mut sp, &cstr(a))?);
    }
    argv_p.reverse();
    let platform_p = push_bytes(&mut sp, b"x86_64\0")?;
    let mut random = [0u8; 16];
    getrandom(&mut random);
    let random_p = push_bytes(&mut sp, &random)?;
    sp &= !15;

    let mut words: Vec<u64> = Vec::new();
    words.push(argv.len() as u64);
    words.extend(&argv_p);
    words.push(0);
    words.extend(&envp_p);
    words.push(0);
    for &(k, v) in auxv {
        words.extend([k, v]);
    }
    words.extend([libc::AT_RANDOM, random_p, libc::AT_PLATFORM, platform_p, libc::AT_EXECFN, execfn_p, libc::AT_NULL, 0]);
    let size = words.len() as u64 * 8;
    sp = (sp - size) & !15;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    mm.copy_out(sp, &bytes)?;
    Ok(sp)
}

/// Fills `buf` from the host's random source.
pub fn getrandom(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writes at most buf.len()-done bytes into buf[done..].
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n > 0 {
            done += n as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        assert_eq!(parse_shebang(b"#!/bin/sh\necho"), Some((b"/bin/sh".to_vec(), None)));
        assert_eq!(parse_shebang(b"#! /usr/bin/env  python3 \n"), Some((b"/usr/bin/env".to_vec(), Some(b"python3".to_vec()))));
        assert_eq!(parse_shebang(b"#!\n"), None);
    }
}
