"""Hardware facts beyond CPU, memory and filesystems: disk I/O, SMART, battery, sensors."""
