//! Upstream patterns (`patterns/*.json`): what the mock sends and what a correct daemon relays.
