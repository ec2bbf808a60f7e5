//! Integration tests of sigprop-theory's public API: the pieces agree with each other.

mod consistency;
mod density;
