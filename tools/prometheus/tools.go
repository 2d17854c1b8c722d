//go:build tools

// Prometheus v3.3.0 (Go module version v0.303.0) for the local prometheus image: Debian's
// prometheus package is built without Kubernetes service discovery, which the city's scrape
// configuration needs.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
