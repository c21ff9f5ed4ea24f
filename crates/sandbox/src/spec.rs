//! The part of the OCI runtime spec (`config.json`) the sandbox reads.

use serde::Deserialize;
use crate::error::SpecError;

#[derive(Debug, Deserialize)]
pub struct Spec {
    pub process: Option<Process>,
    pub root: Option<Root>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub linux: Linux,
}

/// The part of `linux` the sandbox applies itself.
#[derive(Debug, Default, Deserialize)]
pub struct Linux {
    #[serde(flatten)]
    pub covers: control::PathCovers,
}

/// One entry of the spec's `mounts` (what the gofer prepares).
#[derive(Debug, Clone, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub source: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Process {
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default = "slash")]
    pub cwd: String,
    #[serde(flatten)]
    pub identity: control::ProcessIdentity,
}

/// The credentials a process spec's user, capabilities and
/// noNewPrivileges give (without capabilities, what its uid starts with:
/// all for root, none for others). Errors name the bad capability.
pub fn creds_of(id: &control::ProcessIdentity) -> Result<kernel::creds::Creds, SpecError> {
    let u = &id.user;
    let mut c = kernel::creds::Creds::of(u.uid, u.gid);
    c.groups = u.additional_gids.clone();
    c.no_new_privs = id.no_new_privileges;
    if let Some(caps) = &id.capabilities {
        let set = |names: &[String], field: &'static str| kernel::creds::cap::set_of(names).map_err(|name| SpecError::UnknownCapability { field, name });
        c.caps = kernel::creds::CapSets {
            bounding: set(&caps.bounding, "bounding")?,
            effective: set(&caps.effective, "effective")?,
            inheritable: set(&caps.inheritable, "inheritable")?,
            permitted: set(&caps.permitted, "permitted")?,
            ambient: set(&caps.ambient, "ambient")?,
        };
    }
    Ok(c)
}

/// The limits of a process spec's rlimits, by resource number; errors
/// name the bad entry.
pub fn rlimits_of(id: &control::ProcessIdentity) -> Result<Vec<(u32, abi::types::Rlimit)>, SpecError> {
    id.rlimits
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let resource = kernel::rlimit::by_name(&r.kind).ok_or_else(|| SpecError::UnknownRlimit { index: i, kind: r.kind.clone() })?;
            if r.soft > r.hard {
                return Err(SpecError::RlimitOrder { index: i, soft: r.soft, hard: r.hard });
            }
            Ok((resource, abi::types::Rlimit { cur: r.soft, max: r.hard }))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct Root {
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

fn slash() -> String {
    "/".into()
}

impl Spec {
    /// Parses and checks what the sandbox needs; errors name the field.
    pub fn parse(text: &[u8]) -> Result<Spec, SpecError> {
        let s: Spec = serde_json::from_slice(text).map_err(SpecError::Json)?;
        let p = s.process.as_ref().ok_or(SpecError::NoProcess)?;
        if p.args.is_empty() {
            return Err(SpecError::NoArgs);
        }
        if !p.cwd.starts_with('/') {
            return Err(SpecError::RelativeCwd(p.cwd.clone()));
        }
        creds_of(&p.identity)?;
        rlimits_of(&p.identity)?;
        let r = s.root.as_ref().ok_or(SpecError::NoRoot)?;
        if !r.path.starts_with('/') {
            return Err(SpecError::RelativeRoot(r.path.clone()));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_bad_field() {
        assert!(Spec::parse(b"not json").unwrap_err().to_string().contains("not valid"));
        assert!(Spec::parse(br#"{"root":{"path":"/"}}"#).unwrap_err().to_string().contains("process"));
        assert!(Spec::parse(br#"{"process":{"args":["x"]},"root":{"path":"rel"}}"#).unwrap_err().to_string().contains("root.path"));
        assert!(Spec::parse(br#"{"process":{"args":[]},"root":{"path":"/"}}"#).unwrap_err().to_string().contains("process.args"));
        let s = Spec::parse(br#"{"process":{"args":["sh"],"env":["A=b"]},"root":{"path":"/","readonly":true},"hostname":"h"}"#).unwrap();
        assert_eq!(s.process.unwrap().cwd, "/");
        let bad = br#"{"process":{"args":["sh"],"capabilities":{"bounding":["CAP_FLY"]}},"root":{"path":"/"}}"#;
        assert!(Spec::parse(bad).unwrap_err().to_string().contains("process.capabilities.bounding: unknown capability \"CAP_FLY\""));
    }

    #[test]
    fn process_identity_becomes_credentials() {
        let s = Spec::parse(
            br#"{"process":{"args":["sh"],"user":{"uid":1000,"gid":100,"additionalGids":[5]},"noNewPrivileges":true,
                "capabilities":{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}},"root":{"path":"/"}}"#,
        )
        .unwrap();
        let c = creds_of(&s.process.unwrap().identity).unwrap();
        assert_eq!((c.uid.effective, c.gid.real, c.groups.clone(), c.no_new_privs), (1000, 100, vec![5], true));
        assert_eq!((c.caps.bounding, c.caps.effective, c.caps.inheritable), (0b100001, 0b100000, 0));
        let root = creds_of(&control::ProcessIdentity::default()).unwrap();
        let s = Spec::parse(br#"{"process":{"args":["sh"],"rlimits":[{"type":"RLIMIT_NOFILE","hard":20,"soft":10}]},"root":{"path":"/"}}"#).unwrap();
        assert_eq!(rlimits_of(&s.process.unwrap().identity).unwrap(), vec![(libc::RLIMIT_NOFILE, abi::types::Rlimit { cur: 10, max: 20 })]);
        let bad = br#"{"process":{"args":["sh"],"rlimits":[{"type":"RLIMIT_NOPE","hard":1,"soft":1}]},"root":{"path":"/"}}"#;
        assert!(Spec::parse(bad).unwrap_err().to_string().contains("process.rlimits[0].type"));
        assert_eq!(root.caps.effective, kernel::creds::ALL_CAPS);
    }
}
