//! Fuzz targets for Strata: the bodies in [`entry`], and the stack
//! description the `lower` target derives with `arbitrary` in [`stack_desc`].

pub mod entry;
pub mod stack_desc;
