//! Use cases: one struct each, holding its ports, with one public async method.

pub mod authenticate;
pub mod generate;
pub mod read;
pub mod sign;
pub mod validate;

#[cfg(test)]
mod fixtures;
