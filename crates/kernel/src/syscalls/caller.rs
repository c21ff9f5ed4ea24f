//! The caller's identity: who the file system sees acting, and changing
//! the task's credentials all-or-nothing.

use crate::creds::Creds;
use crate::fs::node::Caller;
use crate::task::TaskCtx;
use crate::SysResult;

/// The calling task as permission checks and new inodes see it.
pub(crate) fn caller(t: &TaskCtx) -> Caller<'_> {
    Caller::new(t.kernel(), t.tgid(), t.tid())
}

/// Changes the task's credentials with `f` (all-or-nothing).
pub(crate) fn change_creds(t: &TaskCtx, f: impl FnOnce(&mut Creds) -> SysResult<()>) -> SysResult<u64> {
    let mut c = t.task.creds.lock().unwrap();
    let mut new = c.clone();
    f(&mut new)?;
    *c = new;
    Ok(0)
}
