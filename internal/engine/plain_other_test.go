//go:build !linux

package engine

// newPlainEngine is New where there is no epoll engine.
func newPlainEngine(cfg Config) (Engine, error) { return New(cfg) }
