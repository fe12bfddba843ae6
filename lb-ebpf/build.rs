//! Rebuilds the XDP objects when bpf-linker changes.

use which::which;

fn main() {
    // A new bpf-linker can change the object; cargo does not track it.
    if let Ok(linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
