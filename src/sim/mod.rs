//! The simulator and the staffing maths, on the pure routing core.

pub mod erlang;
