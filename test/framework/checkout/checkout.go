// Package checkout locates the krustlet-go checkout and the cache the test
// frameworks share, so that every framework finds them the same way.
package checkout

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
)

// modulePath is the module of the checkout.
const modulePath = "github.com/krustlet/krustlet-go"

// CacheDir is where built binaries and modules are kept between runs:
// $KRUSTLET_CACHE_DIR, or krustlet-go under the user's cache directory.
func CacheDir() string {
	if d := os.Getenv("KRUSTLET_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "krustlet-go")
	}
	return filepath.Join(os.TempDir(), "krustlet-go-cache")
}

// Root finds the root of the krustlet-go checkout (the directory whose
// go.mod declares the module) from the working directory upwards; go test
// runs in the package's directory.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && declares(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no " + modulePath + " checkout above the working directory")
		}
		dir = parent
	}
}

func declares(gomod []byte) bool {
	for _, line := range bytes.Split(gomod, []byte("\n")) {
		if f := bytes.Fields(line); len(f) == 2 && string(f[0]) == "module" && string(f[1]) == modulePath {
			return true
		}
	}
	return false
}
