//! Code shared by xlb's XDP programs.
#![no_std]
pub mod csum;
pub mod encap;
pub mod flow;
pub mod icmp;
pub mod l2;
pub mod maps;
pub mod mem;
pub mod net;
pub mod next_hop;
pub mod parse;
pub mod policy;
pub mod syn_guard;
pub mod vip;
