//go:build !linux

package engine

func newPlatform(cfg Config) (Engine, error) {
	return newGoEngine(cfg), nil
}
