"""What both sides agree on: the config schema, the wire protocol, heartbeat slots, timeouts, contracts."""
