"""SMS providers behind one interface (``provider.SmsProvider``); OVHcloud is the one adapter."""
