"""SMS gateways: how outbound texts leave (Twilio, or the local log behind the simulator)."""
