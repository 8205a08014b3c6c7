"""The sans-IO core of ManageSieve (RFC 5804): bytes in, typed commands out, replies to bytes."""
