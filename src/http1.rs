//! Response head (httparse) and body framing: until close, Content-Length, chunked.
