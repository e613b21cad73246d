//! Handoff payload, SCM_RIGHTS message and client socket pair (TCP or AF_UNIX).
