//! Zeroing without `memset`.
//!
//! On the BPF target (nightly 2026-05-19, LLVM 22) a zeroed struct, from
//! `Default`, `core::mem::zeroed` or a `[0; N]` field, compiles into a call
//! to compiler-builtins' `memset`, a BPF subprogram that stores one byte
//! per loop turn: 64 turns for a `Packet`. Volatile 8-byte stores into the
//! value's final place are neither merged back into a `memset` nor split;
//! a zeroed value that is then moved would be (LLVM sees the copy of known
//! zeroes as a `memset`), hence the in-place form.

use core::mem::MaybeUninit;

/// Zeroes `slot` with 8-byte stores and returns it, initialised.
///
/// # Safety
///
/// All-zero bytes must be a valid `T`.
#[inline(always)]
pub unsafe fn zero_in_place<T>(slot: &mut MaybeUninit<T>) -> &mut T {
    const {
        assert!(align_of::<T>() >= 8 && size_of::<T>() % 8 == 0);
    }
    let words = slot.as_mut_ptr().cast::<u64>();
    for i in 0..size_of::<T>() / 8 {
        // SAFETY: `T` is 8-aligned and a whole number of words long (checked
        // above), so each word lies inside `slot` and is aligned.
        unsafe { words.add(i).write_volatile(0) };
    }
    // SAFETY: every byte is written, and the caller vouches that zeroes
    // are a valid `T`.
    unsafe { slot.assume_init_mut() }
}
