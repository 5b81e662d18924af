package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/krustlet/krustlet-go/pkg/kubelet/pods"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
)

// fakeLogs is a PodSource with one container log.
type fakeLogs struct {
	path     string
	err      error
	previous []bool
}

func (f *fakeLogs) Pods() []*v1.Pod                            { return nil }
func (f *fakeLogs) RunningContainers() []pods.RunningContainer { return nil }
func (f *fakeLogs) Route(types.UID) (runtimeclass.Route, bool) { return runtimeclass.Route{}, false }
func (f *fakeLogs) LogFile(namespace, name, container string, previous bool) (string, func() bool, error) {
	f.previous = append(f.previous, previous)
	if f.err != nil {
		return "", nil, f.err
	}
	if namespace != "default" || name != "web" || container != "app" {
		return "", nil, fmt.Errorf("%w: no such container", pods.ErrNotFound)
	}
	return f.path, func() bool { return false }, nil
}

func TestContainerLogs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	log := "2026-11-25T10:00:01Z stdout F one\n2026-11-25T10:00:02Z stderr P tw\n2026-11-25T10:00:02Z stderr F o\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 10, 0, 3, 0, time.UTC)
	for _, tc := range []struct {
		name         string
		url          string
		err          error
		wantCode     int
		wantBody     string
		wantPrevious bool
	}{
		{name: "all", url: "/containerLogs/default/web/app", wantCode: http.StatusOK, wantBody: "one\ntwo\n"},
		{name: "options", url: "/containerLogs/default/web/app?tailLines=1&timestamps=true", wantCode: http.StatusOK, wantBody: "2026-11-25T10:00:02Z two\n"},
		{name: "sinceSeconds from now", url: "/containerLogs/default/web/app?sinceSeconds=1", wantCode: http.StatusOK, wantBody: "two\n"},
		{name: "previous", url: "/containerLogs/default/web/app?previous=true&limitBytes=2", wantCode: http.StatusOK, wantBody: "on", wantPrevious: true},
		{name: "bad path", url: "/containerLogs/default/web", wantCode: http.StatusBadRequest, wantBody: "expected /containerLogs/{namespace}/{pod}/{container}\n"},
		{name: "bad query", url: "/containerLogs/default/web/app?limitBytes=0", wantCode: http.StatusBadRequest,
			wantBody: "invalid limitBytes=\"0\": must be a non-negative integer (positive for limitBytes)\n"},
		{name: "unknown container", url: "/containerLogs/default/web/db", wantCode: http.StatusNotFound, wantBody: "not found: no such container\n"},
		{name: "no previous run", url: "/containerLogs/default/web/app?previous=1", err: fmt.Errorf("%w: no previous run", pods.ErrBadRequest),
			wantCode: http.StatusBadRequest, wantBody: "bad request: no previous run\n", wantPrevious: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeLogs{path: path, err: tc.err}
			s := &Server{o: Options{Pods: src, Now: func() time.Time { return now }}}
			rec := httptest.NewRecorder()
			s.containerLogs(rec, httptest.NewRequest(http.MethodGet, tc.url, nil))
			if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody {
				t.Errorf("%d %q, want %d %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			if len(src.previous) > 0 && src.previous[0] != tc.wantPrevious {
				t.Errorf("LogFile asked with previous=%v", src.previous[0])
			}
			if tc.wantCode == http.StatusOK && !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}
