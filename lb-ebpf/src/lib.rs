//! Code shared by xlb's XDP programs.
#![no_std]
