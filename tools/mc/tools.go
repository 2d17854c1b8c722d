//go:build tools

// The MinIO client of the pinned backup image quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z: the
// module proxy serves no RELEASE.* tag, so go.mod requires the tag's commit b00526b153a3 as a
// pseudo-version.
package tools

import (
	_ "github.com/minio/mc"
)
