//go:build tools

// Package tools pins Gitea, the git forge the dev stack serves to tenants
// (repositories for the git and http resolvers, webhooks for Triggers and
// Pipelines as Code).
package tools

import _ "code.gitea.io/gitea"
