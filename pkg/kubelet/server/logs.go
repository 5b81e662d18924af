package server

import (
	"errors"
	"net/http"
	"strings"

	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/kubelet/pods"
)

// containerLogs serves /containerLogs/{namespace}/{pod}/{container}.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		http.Error(w, "expected /containerLogs/{namespace}/{pod}/{container}", http.StatusBadRequest)
		return
	}
	o, err := logs.ParseReadOptions(r.URL.Query(), s.o.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	path, running, err := s.o.Pods.LogFile(parts[0], parts[1], parts[2], o.Previous)
	switch {
	case errors.Is(err, pods.ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Transfer-Encoding", "chunked")
	flush := func() {}
	if f, ok := w.(http.Flusher); ok {
		flush = f.Flush
	}
	if err := logs.Read(r.Context(), w, flush, path, running, o); err != nil {
		klog.FromContext(r.Context()).Error(err, "Serving container log failed", "path", path)
	}
}
