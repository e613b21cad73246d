//! The mock OpenAI streaming API: HTTP/1.1 and HTTP/2, cleartext and TLS, scriptable.
