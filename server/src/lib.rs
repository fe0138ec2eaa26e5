//! sandboxd: a self-hostable server speaking E2B's REST API that runs every sandbox as a QEMU
//! microVM restored from a memory + disk image.

pub mod template;
pub mod vm;
