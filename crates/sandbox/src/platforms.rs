//! Choosing and building the platform the sentry runs applications on.
//!
//! `auto` (the default) is kvm where `/dev/kvm` works and ptrace otherwise;
//! `--debug` logs which and why. Naming a platform that cannot work here is
//! an error that says why (`veil-sandbox platform NAME` asks that question
//! alone, for the CLI to fail early with one line).

use memfile::MemoryFile;
use platform::Platform;
use std::sync::Arc;

pub const NAMES: &str = "auto, kvm, ptrace";

/// A built platform, its name, and the most tasks it can run at once.
pub struct Chosen {
    pub platform: Arc<dyn Platform>,
    pub name: &'static str,
    pub max_tasks: Option<usize>,
    /// How `auto` chose, for `--debug`.
    pub note: Option<String>,
}

/// KVM keeps one vCPU per running task and a VM holds at most this many.
const KVM_MAX_TASKS: usize = 500;

fn kvm(memfile: &Arc<MemoryFile>) -> Result<Chosen, String> {
    let p = platform::kvm::KvmPlatform::new(memfile.clone()).map_err(|e| format!("kvm platform unusable: {}", e.to_string().trim_start_matches("kvm: ")))?;
    Ok(Chosen { platform: Arc::new(p), name: "kvm", max_tasks: Some(KVM_MAX_TASKS), note: None })
}

fn ptrace(memfile: &Arc<MemoryFile>) -> Result<Chosen, String> {
    let p = platform::ptrace::PtracePlatform::new(memfile.fd()).map_err(|e| format!("ptrace platform unusable: {e}"))?;
    Ok(Chosen { platform: Arc::new(p), name: "ptrace", max_tasks: None, note: None })
}

pub fn create(name: &str, memfile: &Arc<MemoryFile>) -> Result<Chosen, String> {
    match name {
        "kvm" => kvm(memfile),
        "ptrace" => ptrace(memfile),
        "auto" => match kvm(memfile) {
            Ok(mut c) => {
                c.note = Some("auto chose kvm: /dev/kvm works".into());
                Ok(c)
            }
            Err(why) => {
                let mut c = ptrace(memfile)?;
                c.note = Some(format!("auto chose ptrace: {why}"));
                Ok(c)
            }
        },
        other => Err(format!("unknown platform {other:?} (valid: {NAMES})")),
    }
}

/// Builds platform `name` over a small memory file and drops it: the name
/// `boot --platform NAME` would run on, then how `auto` chose if it did.
pub fn probe(name: &str) -> Result<String, String> {
    let memfile = Arc::new(MemoryFile::new(64 << 20).map_err(|e| format!("memory file: {e}"))?);
    let c = create(name, &memfile)?;
    Ok(match c.note {
        Some(note) => format!("{}\n{note}", c.name),
        None => c.name.to_string(),
    })
}
