//go:build tools

// The MinIO server of the pinned image quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z, for the
// data lake's local image: the module proxy serves no RELEASE.* tag, so go.mod requires the tag's
// commit 0d7408fc9969 as a pseudo-version. go.mod was seeded with upstream's require block before
// `go mod tidy`: otherwise the test-only imports of nats-streaming-server resolve to their latest
// versions, which raise golang.org/x/* above upstream's.
package tools

import (
	_ "github.com/minio/minio"
)
