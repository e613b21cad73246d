//! The io_uring driver: one thread, many handoffs, nanosecond timestamps, deadlines.
