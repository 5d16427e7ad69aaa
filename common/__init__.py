"""Code shared by every Strongroom daemon and tool: configuration, logging, TLS, networking, runtime."""
