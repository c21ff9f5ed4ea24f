//! Choosing and building the platform the sentry runs applications on.
//!
//! `auto` (the default) is ptrace for now: the KVM platform works but is
//! opt-in (`--platform kvm`) until a memory-coherence race seen under load
//! on nested (PVM) hosts is found, and it is slower than ptrace there.
//! Naming a platform that cannot work here is an error that says why.

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
    let p = platform::kvm::KvmPlatform::new(memfile.clone()).map_err(|e| format!("kvm platform unusable: {e}"))?;
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
        "auto" => {
            let mut c = ptrace(memfile)?;
            c.note = Some("auto chooses ptrace; kvm is opt-in with --platform kvm".into());
            Ok(c)
        }
        other => Err(format!("unknown platform {other:?} (valid: {NAMES})")),
    }
}
