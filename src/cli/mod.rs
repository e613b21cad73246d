//! Arguments and glue shared by several commands (bin side).

pub mod read_limits;
pub mod target;
