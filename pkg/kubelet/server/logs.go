package server

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
)

// logOptions is a parsed /containerLogs query: what to read of a log, and
// previous, which picks the run whose file the handler reads.
type logOptions struct {
	logs.ReadOptions
	previous bool
}

// parseLogOptions parses and checks the query; a bad one is a 400.
func parseLogOptions(r *http.Request, now time.Time) (logOptions, error) {
	o, err := logs.ParseReadOptions(r.URL.Query(), now)
	return logOptions{ReadOptions: o, previous: o.Previous}, err
}

// serveLog writes the log at path to w and, with follow, what the run
// appends until it ends or the client goes; see logs.Read.
func serveLog(ctx context.Context, w io.Writer, flush func(), path string, running func() bool, o logOptions) error {
	return logs.Read(ctx, w, flush, path, running, o.ReadOptions)
}
