//! Keeping a test on one CPU, for tests that spend a per-CPU budget.

/// Keeps this test's thread on the first CPU it may use, so every run
/// draws on one CPU's per-CPU budget (the SYN guard's, a tenant's).
pub fn pin_to_one_cpu() {
    // SAFETY: `cpu_set_t` is plain data; the calls only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, size_of_val(&set), &mut set), 0);
        let cpu = (0..libc::CPU_SETSIZE as usize)
            .find(|&cpu| libc::CPU_ISSET(cpu, &set))
            .expect("some CPU allowed");
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, size_of_val(&set), &set), 0);
    }
}
