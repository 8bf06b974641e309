"""Media worker of chime-dialout: takes dial jobs and holds SIP/TLS + SRTP calls into the Voice Connector."""
