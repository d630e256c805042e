//go:build tools

// Package tools pins the kcp binaries built by the dev stack: the shard
// server and the front-proxy that routes each workspace's requests to the
// shard holding it.
package tools

import (
	_ "github.com/kcp-dev/kcp/cmd/kcp"
	_ "github.com/kcp-dev/kcp/cmd/kcp-front-proxy"
)
