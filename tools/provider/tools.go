//go:build tools

// The provider's main package embeds files its Makefile generates, so citykit builds a copy of
// cmd/pulumi-resource-kubernetes (see citykit/toolchain.py); these imports keep go.sum complete
// for that copy and for its generate.go.
package tools

import (
	_ "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	_ "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
	_ "github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)
