//! The part of the OCI runtime spec (`config.json`) the sandbox reads.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Spec {
    pub process: Option<Process>,
    pub root: Option<Root>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
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
    pub fn parse(text: &[u8]) -> Result<Spec, String> {
        let s: Spec = serde_json::from_slice(text).map_err(|e| format!("spec is not valid: {e}"))?;
        let p = s.process.as_ref().ok_or("spec: process is missing")?;
        if p.args.is_empty() {
            return Err("spec: process.args is empty".into());
        }
        if !p.cwd.starts_with('/') {
            return Err(format!("spec: process.cwd {:?} is not absolute", p.cwd));
        }
        let r = s.root.as_ref().ok_or("spec: root is missing")?;
        if !r.path.starts_with('/') {
            return Err(format!("spec: root.path {:?} is not absolute", r.path));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_bad_field() {
        assert!(Spec::parse(b"not json").unwrap_err().contains("not valid"));
        assert!(Spec::parse(br#"{"root":{"path":"/"}}"#).unwrap_err().contains("process"));
        assert!(Spec::parse(br#"{"process":{"args":["x"]},"root":{"path":"rel"}}"#).unwrap_err().contains("root.path"));
        assert!(Spec::parse(br#"{"process":{"args":[]},"root":{"path":"/"}}"#).unwrap_err().contains("process.args"));
        let s = Spec::parse(br#"{"process":{"args":["sh"],"env":["A=b"]},"root":{"path":"/","readonly":true},"hostname":"h"}"#).unwrap();
        assert_eq!(s.process.unwrap().cwd, "/");
    }
}
