//! What one recorded stream contains and what it means: content, `[DONE]`, timings.
