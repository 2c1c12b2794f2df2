// Package meta is the module of meta, the operator log for Co-op Cloud:
// every deploy, upgrade, rollback and other operator action kept as an
// immutable event in git, folded into each app's head, shared through any
// git remote and announced to followers over NATS and webhooks.
//
// The commands are in cmd/meta and cmd/meta-seal; docs/ARCHITECTURE.md
// names every package, the path of an append and of a sync through them,
// and where each rule lives. This package holds no code: its test checks
// that packages import only downward.
package meta
