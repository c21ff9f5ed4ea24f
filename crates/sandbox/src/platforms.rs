//! Choosing and building the platform the sentry runs applications on, from
//! the platform registry.
//!
//! `auto` (the default) is the first registry entry that works here
//! (systrap, then kvm, then ptrace);
//! `--debug` logs which and why. Naming a platform that cannot work here is
//! an error that says why (`veil-sandbox platform NAME` asks that question
//! alone, for the CLI to fail early with one line; `veil-sandbox platforms`
//! lists the names).

use memfile::MemoryFile;
use platform::registry::{self, Entry};
use platform::{Platform, PlatformError};
use std::sync::Arc;

/// A built platform, its registry entry, and how `auto` chose it.
pub struct Chosen {
    pub platform: Arc<dyn Platform>,
    pub entry: &'static Entry,
    /// How `auto` chose, for `--debug`.
    pub note: Option<String>,
}

fn unusable(entry: &Entry, e: PlatformError) -> String {
    let why = e.to_string();
    let prefix = format!("{}: ", entry.name);
    format!("{} platform unusable: {}", entry.name, why.strip_prefix(&prefix).unwrap_or(&why))
}

fn build(entry: &'static Entry, memfile: &Arc<MemoryFile>) -> Result<Chosen, String> {
    let platform = (entry.build)(memfile).map_err(|e| unusable(entry, e))?;
    Ok(Chosen { platform, entry, note: None })
}

/// The names `--platform` accepts, comma-separated.
pub fn names() -> String {
    registry::names().collect::<Vec<_>>().join(", ")
}

pub fn create(name: &str, memfile: &Arc<MemoryFile>) -> Result<Chosen, String> {
    if name != "auto" {
        let entry = registry::find(name).ok_or_else(|| format!("unknown platform {name:?} (valid: {})", names()))?;
        return build(entry, memfile);
    }
    let mut why_not = Vec::new();
    for entry in registry::PLATFORMS {
        match build(entry, memfile) {
            Ok(mut c) => {
                let why = if why_not.is_empty() { "the first platform that works here".into() } else { why_not.join("; ") };
                c.note = Some(format!("auto chose {}: {why}", entry.name));
                return Ok(c);
            }
            Err(why) => why_not.push(why),
        }
    }
    Err(format!("no platform works here: {}", why_not.join("; ")))
}

/// Builds platform `name` over a small memory file and drops it: the name
/// `boot --platform NAME` would run on, then how `auto` chose if it did.
pub fn probe(name: &str) -> Result<String, String> {
    let memfile = Arc::new(MemoryFile::new(64 << 20).map_err(|e| format!("memory file: {e}"))?);
    let c = create(name, &memfile)?;
    Ok(match c.note {
        Some(note) => format!("{}\n{note}", c.entry.name),
        None => c.entry.name.to_string(),
    })
}
