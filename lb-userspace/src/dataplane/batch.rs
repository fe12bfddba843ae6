//! Reading and writing BPF arrays many elements per system call.
//!
//! aya 0.14 reads and writes maps one element per `bpf(2)` call;
//! `BACKENDS` may have 131 072 entries, and reading it that way on every
//! `xlbctl` call or adoption would take 131 072 calls; a node of 1000 VIPs
//! writes 1000 Maglev tables of up to 65 537 slots when it starts.
//! `BPF_MAP_LOOKUP_BATCH` and `BPF_MAP_UPDATE_BATCH` (Linux 5.6, arrays
//! included) copy many elements per call.

use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::Pod;
use aya::maps::{Array, IterableMap, MapData, MapError};
use aya::sys::SyscallError;

/// `BPF_MAP_LOOKUP_BATCH` from `enum bpf_cmd` (linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// `BPF_MAP_UPDATE_BATCH` from `enum bpf_cmd` (linux/bpf.h).
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

/// Elements asked for per call: 64 KiB of `Backend` values at most.
const CHUNK: u32 = 2048;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Every element of `array`, in index order.
///
/// # Errors
///
/// When the kernel refuses the batch lookup.
pub fn read_array<V: Pod + Default>(array: &Array<MapData, V>) -> Result<Vec<V>, MapError> {
    let len = array.len();
    let fd = IterableMap::map(array).fd().as_fd().as_raw_fd() as u32;
    let mut out = Vec::with_capacity(len as usize);
    let mut keys = vec![0u32; CHUNK as usize];
    let mut values = vec![V::default(); CHUNK as usize];
    // For arrays the batch token is the next index, a u32.
    let (mut token, mut next_token) = (0u32, 0u32);
    let mut first = true;
    while (out.len() as u32) < len {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &raw const token as u64 },
            out_batch: &raw mut next_token as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK,
            map_fd: fd,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at buffers of `CHUNK` keys and values of
        // the map's key and value types (u32 and `V`, checked by aya when
        // it typed the map), and at two u32 tokens, all alive for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &raw mut attr,
                size_of::<BatchAttr>(),
            )
        };
        let done = rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT);
        if rc < 0 && !done {
            return Err(MapError::SyscallError(SyscallError {
                call: "bpf_map_lookup_batch",
                io_error: io::Error::last_os_error(),
            }));
        }
        out.extend_from_slice(&values[..attr.count as usize]);
        if done || attr.count == 0 {
            break;
        }
        token = next_token;
        first = false;
    }
    Ok(out)
}

/// Writes `values` into `array` from index `first` on, in order.
///
/// # Errors
///
/// When the kernel refuses the batch update (an index past the end
/// included); the elements before the failing one are written.
pub fn write_array<V: Pod>(
    array: &mut Array<MapData, V>,
    first: u32,
    values: &[V],
) -> Result<(), MapError> {
    let fd = IterableMap::map(array).fd().as_fd().as_raw_fd() as u32;
    let mut at = first;
    for chunk in values.chunks(CHUNK as usize) {
        let keys: Vec<u32> = (at..).take(chunk.len()).collect();
        let mut attr = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: chunk.as_ptr() as u64,
            count: chunk.len() as u32,
            map_fd: fd,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at `count` u32 keys and `count` values of
        // the map's value type (checked by aya when it typed the map), both
        // alive for the call; the kernel only reads them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_BATCH,
                &raw mut attr,
                size_of::<BatchAttr>(),
            )
        };
        if rc < 0 {
            return Err(MapError::SyscallError(SyscallError {
                call: "bpf_map_update_batch",
                io_error: io::Error::last_os_error(),
            }));
        }
        at += chunk.len() as u32;
    }
    Ok(())
}
