//! The FPU part of a signal frame, as Linux lays it out on x86-64: the
//! whole XSAVE image (legacy area, header, AVX, AVX-512, ... components),
//! marked by `_fpx_sw_bytes` in the legacy area's software-reserved bytes
//! and a trailing magic word, so that `rt_sigreturn` gives the interrupted
//! code back *every* register it had. A frame that only kept the 512-byte
//! FXSAVE area would hand back YMM/ZMM registers zeroed by the handler's
//! fresh state: glibc's `memmove` keeps the first 64 bytes of a copy in
//! `zmm16` across a `rep movsb`, so a signal landing there lost them.

use abi::Errno;
use platform::{FpState, FXSAVE_SIZE};

use crate::task::TaskCtx;

/// `FP_XSTATE_MAGIC1`, in `_fpx_sw_bytes.magic1` (offset 464).
const MAGIC1: u32 = 0x4650_5853;
/// `FP_XSTATE_MAGIC2`, the word right after the XSAVE image.
const MAGIC2: u32 = 0x4650_5845;
const MAGIC2_SIZE: usize = 4;
/// Where `_fpx_sw_bytes` lives in the legacy area, and its size.
const SW_BYTES: usize = 464;
const SW_BYTES_END: usize = FXSAVE_SIZE;
/// The XSAVE header: XSTATE_BV, XCOMP_BV, then reserved bytes.
const HEADER: usize = FXSAVE_SIZE;
const HEADER_SIZE: usize = 64;

/// `uc_flags` bit: the frame's FPU state is an XSAVE image.
pub const UC_FP_XSTATE: u64 = 1;

/// The bytes `setup_frame` writes at the (64-byte aligned) FPU state
/// address: a legacy image, or an XSAVE image with its markers.
pub fn encode(fp: &FpState) -> Vec<u8> {
    let mut out = fp.bytes.clone();
    if !fp.is_xsave() {
        out.resize(FXSAVE_SIZE, 0);
        out[SW_BYTES..SW_BYTES_END].fill(0);
        return out;
    }
    let size = out.len();
    let mut sw = Vec::with_capacity(SW_BYTES_END - SW_BYTES);
    sw.extend_from_slice(&MAGIC1.to_le_bytes());
    sw.extend_from_slice(&((size + MAGIC2_SIZE) as u32).to_le_bytes()); // extended_size
    sw.extend_from_slice(&fp.xfeatures().to_le_bytes());
    sw.extend_from_slice(&(size as u32).to_le_bytes()); // xstate_size
    sw.resize(SW_BYTES_END - SW_BYTES, 0); // padding
    out[SW_BYTES..SW_BYTES_END].copy_from_slice(&sw);
    out.extend_from_slice(&MAGIC2.to_le_bytes());
    out
}

/// The FPU state `rt_sigreturn` restores from the frame at `addr`. `live` is
/// the task's current state, which gives the image size the platform uses.
/// Like Linux, a frame without valid XSAVE markers restores the legacy
/// area only and puts every other component in its initial state; a frame
/// with them restores each component its header marks as present and
/// initialises the others. Never takes anything from `live`'s registers.
pub fn decode(t: &TaskCtx, addr: u64, live: &FpState) -> Result<FpState, Errno> {
    let legacy = t.copy_in(addr, FXSAVE_SIZE)?;
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let full = live.bytes.len().max(FXSAVE_SIZE);
    let size = word(&legacy, SW_BYTES + 16) as usize;
    let marked = live.is_xsave()
        && word(&legacy, SW_BYTES) == MAGIC1
        && (FXSAVE_SIZE + HEADER_SIZE..=full).contains(&size)
        && word(&legacy, SW_BYTES + 4) as usize == size + MAGIC2_SIZE
        && t.copy_in(addr + size as u64, MAGIC2_SIZE).is_ok_and(|m| word(&m, 0) == MAGIC2);
    let mut bytes = if marked { t.copy_in(addr, size)? } else { legacy };
    // MXCSR reserved bits must be zero or the restore faults.
    let mxcsr = word(&bytes, 24) & 0xffff;
    bytes[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    if !live.is_xsave() {
        return Ok(FpState { bytes });
    }
    let allowed = live.xfeatures();
    let present = if marked {
        let frame_features = u64::from_le_bytes(bytes[SW_BYTES + 8..SW_BYTES + 16].try_into().unwrap());
        u64::from_le_bytes(bytes[HEADER..HEADER + 8].try_into().unwrap()) & frame_features & allowed
    } else {
        3 // x87 and SSE
    };
    bytes.resize(full, 0);
    bytes[HEADER..HEADER + HEADER_SIZE].fill(0);
    bytes[HEADER..HEADER + 8].copy_from_slice(&present.to_le_bytes());
    Ok(FpState { bytes })
}

/// Bytes the FPU state takes in a frame (before 64-byte alignment).
pub fn frame_size(fp: &FpState) -> u64 {
    if fp.is_xsave() {
        (fp.bytes.len() + MAGIC2_SIZE) as u64
    } else {
        FXSAVE_SIZE as u64
    }
}
