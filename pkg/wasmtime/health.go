package wasmtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Healthy reports whether the provider can run pods: its engine's epoch
// ticker runs (without it no guest could be stopped), and the directories
// of the compiled-module cache and of the runs' scratch files take a new
// file. It is cheap enough for every node status update.
func (p *Provider) Healthy(context.Context) error {
	select {
	case <-p.tickerDone:
		return errors.New("the wasmtime engine is closed")
	default:
	}
	for _, d := range []struct{ what, dir string }{
		{"compiled-module cache", filepath.Join(p.opts.DataDir, compiledDir)},
		{"run scratch directory", filepath.Join(p.opts.DataDir, runsDir)},
	} {
		f, err := os.CreateTemp(d.dir, ".health-*")
		if err != nil {
			return fmt.Errorf("%s %s is not usable: %w", d.what, d.dir, err)
		}
		name := f.Name()
		f.Close()
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("%s %s is not usable: %w", d.what, d.dir, err)
		}
	}
	return nil
}
