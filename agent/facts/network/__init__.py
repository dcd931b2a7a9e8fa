"""Network facts beyond reachability: DNS servers, Wi-Fi signal, listening ports."""
