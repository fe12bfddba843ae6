//! xlb's user side: config, Maglev tables, map access, shared by xlbd,
//! xlbctl, xtask and the tests.

pub mod objects;
