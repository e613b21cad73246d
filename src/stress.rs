//! Load, integrity, latency histograms and daemon resources at scale.
