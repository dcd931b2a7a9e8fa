"""Security facts: firewall, antivirus, disk encryption, TLS certificate expiry."""
