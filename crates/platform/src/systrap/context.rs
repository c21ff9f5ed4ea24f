//! A systrap context: a task's CPU state run by a stub thread of its own in
//! the address space it is switched into. Any host thread may switch it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::address_space::{Stub, SystrapAddressSpace};
use super::frame::{self, Frame};
use super::mailbox::Waited;
use super::stub::{self, PAGE, SLOT_SIZE};
use super::INTERRUPT_SIGNAL;
use crate::{AddressSpace, Context, CpuState, Exit, PlatformError, Result};

/// The stub thread a context runs in.
struct Binding {
    stub: Arc<Stub>,
    slot: u64,
    /// Does the slot's signal frame hold this task's FPU state (it does
    /// after the first exit; a new thread's frame holds the stub's)?
    fp_in_frame: bool,
}

impl Binding {
    /// The signal frame the thread waits on, validated.
    fn frame(&self) -> Result<Frame> {
        let mb = self.stub.mailbox(self.slot);
        let stack = mb.ptr.wrapping_add(PAGE as usize);
        let va = self.stub.slot_va(self.slot);
        Frame::locate(stack, va + PAGE, va + SLOT_SIZE, mb.get(stub::UCONTEXT), mb.get(stub::INFO)).ok_or_else(|| {
            // Only the application can have put the frame elsewhere.
            self.stub.kill();
            PlatformError::ContextLost("a stub thread's signal frame left its stack".into())
        })
    }
}

pub struct SystrapContext {
    binding: Mutex<Option<Binding>>,
    interrupted: AtomicBool,
    /// Set while a switch may be running application code.
    running: AtomicBool,
    /// pid << 32 | tid of the stub thread, for interrupts.
    target: AtomicU64,
}

impl SystrapContext {
    pub(crate) fn new() -> Self {
        SystrapContext { binding: Mutex::new(None), interrupted: AtomicBool::new(false), running: AtomicBool::new(false), target: AtomicU64::new(0) }
    }

    /// The tid of the stub thread this context runs in, once it has one.
    pub fn stub_tid(&self) -> Option<i32> {
        let t = self.target.load(Ordering::Relaxed);
        (t != 0).then_some(t as u32 as i32)
    }

    fn bind(&self, b: &mut Option<Binding>, cpu: &mut CpuState, stub: &Arc<Stub>) -> Result<()> {
        if b.as_ref().is_some_and(|b| Arc::ptr_eq(&b.stub, stub)) {
            return Ok(());
        }
        if let Some(old) = b.take() {
            if !cpu.fp_loaded && old.fp_in_frame {
                cpu.fp = old.frame()?.fp();
                cpu.fp_loaded = true;
            }
            old.stub.release_thread(old.slot);
        }
        let (slot, tid) = stub.new_thread()?;
        self.target.store((stub.pid as u64) << 32 | tid as u32 as u64, Ordering::Relaxed);
        *b = Some(Binding { stub: stub.clone(), slot, fp_in_frame: false });
        Ok(())
    }
}

impl Drop for SystrapContext {
    fn drop(&mut self) {
        if let Some(b) = self.binding.get_mut().unwrap().take() {
            b.stub.release_thread(b.slot);
        }
    }
}

impl Context for SystrapContext {
    fn switch(&self, cpu: &mut CpuState, address_space: &Arc<dyn AddressSpace>) -> Result<Exit> {
        let stub = address_space
            .as_any()
            .and_then(|a| a.downcast_ref::<SystrapAddressSpace>())
            .ok_or_else(|| PlatformError::Unusable("systrap context switched into a foreign address space".into()))?
            .inner
            .clone();
        let mut guard = self.binding.lock().unwrap();
        self.bind(&mut guard, cpu, &stub)?;
        let b = guard.as_mut().unwrap();
        let mb = b.stub.mailbox(b.slot);
        self.running.store(true, Ordering::SeqCst);
        if self.interrupted.load(Ordering::SeqCst) {
            self.running.store(false, Ordering::SeqCst);
            return Ok(Exit::Interrupted);
        }
        let frame = b.frame()?;
        frame::install(&frame, cpu, b.fp_in_frame);
        mb.set(stub::FS_BASE, cpu.regs.fs_base);
        mb.set(stub::GS_BASE, cpu.regs.gs_base);
        mb.post(stub::CMD_RUN);
        let waited = mb.wait(|| b.stub.alive());
        self.running.store(false, Ordering::SeqCst);
        if let Waited::Dead = waited {
            return Err(PlatformError::ContextLost("the stub process died".into()));
        }
        let frame = b.frame()?;
        frame.regs(&mut cpu.regs);
        cpu.regs.fs_base = mb.get(stub::FS_BASE);
        cpu.regs.gs_base = mb.get(stub::GS_BASE);
        cpu.fp_loaded = false;
        b.fp_in_frame = true;
        Ok(frame.exit(mb.get(stub::SIGNO) as i32, &mut cpu.regs))
    }

    fn load_fp(&self, cpu: &mut CpuState) -> Result<()> {
        if cpu.fp_loaded {
            return Ok(());
        }
        let guard = self.binding.lock().unwrap();
        let b = guard.as_ref().ok_or_else(|| PlatformError::Unusable("load_fp before the first switch".into()))?;
        cpu.fp = b.frame()?.fp();
        cpu.fp_loaded = true;
        Ok(())
    }

    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        if self.running.load(Ordering::SeqCst) {
            let t = self.target.load(Ordering::Relaxed);
            // SAFETY: a signal to the stub thread; if it is gone the call
            // fails harmlessly (ESRCH).
            unsafe { libc::syscall(libc::SYS_tgkill, (t >> 32) as i32, t as u32 as i32, INTERRUPT_SIGNAL) };
        }
    }

    fn clear_interrupt(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }
}
