"""Software facts: OS, reboot, packages, updates, processes, services, time sync, logs."""
