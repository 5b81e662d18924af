package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
)

// auditEvent is the part of an API server audit event the bench reads: one
// write (the control plane's audit policy records every create, update,
// patch and delete with its user, and nothing else).
type auditEvent struct {
	User        string
	Verb        string
	Resource    string
	Subresource string
	At          time.Time
}

// kind names what a write touched: "patch pods/status".
func (a auditEvent) kind() string {
	r := a.Resource
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	return a.Verb + " " + r
}

// auditLog follows the API server's audit log file, reading only what was
// appended since the last refresh. It must be safe for concurrent use.
type auditLog struct {
	mu      sync.Mutex
	f       *os.File
	partial []byte
	events  []auditEvent
}

func openAuditLog(path string) (*auditLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return &auditLog{f: f}, nil
}

func (a *auditLog) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.f.Close()
}

type rawAuditEvent struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// refresh reads the events appended since the last call.
func (a *auditLog) refresh() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	data, err := io.ReadAll(a.f)
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	data = append(a.partial, data...)
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		a.partial = data
		return nil
	}
	a.partial = append([]byte(nil), data[end+1:]...)
	for line := range bytes.Lines(data[:end+1]) {
		var e rawAuditEvent
		if json.Unmarshal(line, &e) != nil || e.Stage != "ResponseComplete" {
			continue
		}
		a.events = append(a.events, auditEvent{
			User: e.User.Username, Verb: e.Verb,
			Resource: e.ObjectRef.Resource, Subresource: e.ObjectRef.Subresource,
			At: e.StageTimestamp,
		})
	}
	return nil
}

// writes returns the writes of user within [from, to).
func (a *auditLog) writes(user string, from, to time.Time) ([]auditEvent, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []auditEvent
	for _, e := range a.events {
		if e.User == user && !e.At.Before(from) && e.At.Before(to) {
			out = append(out, e)
		}
	}
	return out, nil
}

// lastWrite returns the time of the last write of any of users other
// than a lease renewal (zero if none).
func (a *auditLog) lastWrite(users ...string) (time.Time, error) {
	if err := a.refresh(); err != nil {
		return time.Time{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.events) - 1; i >= 0; i-- {
		if e := a.events[i]; e.Resource != "leases" && slices.Contains(users, e.User) {
			return e.At, nil
		}
	}
	return time.Time{}, nil
}

// quiesce waits until user has written nothing but lease renewals for
// quiet, so that what it was still sending (events, statuses) is not
// counted in what comes next. It gives up after timeout with a log line:
// a node that never goes quiet is itself a finding, not an error.
func (a *auditLog) quiesce(ctx context.Context, user string, quiet, timeout time.Duration) error {
	return a.quiesceAll(ctx, quiet, timeout, user)
}

// quiesceAll is quiesce for several users at once.
func (a *auditLog) quiesceAll(ctx context.Context, quiet, timeout time.Duration, users ...string) error {
	start := time.Now()
	for {
		last, err := a.lastWrite(users...)
		if err != nil {
			return err
		}
		now := time.Now()
		if now.Sub(start) >= quiet && now.Sub(last) >= quiet {
			return nil
		}
		if now.Sub(start) > timeout {
			logf("%d node(s) (%s…) still writing after %v (last write %v ago); going on", len(users), users[0], timeout, now.Sub(last).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// writesAll returns the writes of any of users within [from, to).
func (a *auditLog) writesAll(from, to time.Time, users ...string) ([]auditEvent, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []auditEvent
	for _, e := range a.events {
		if !e.At.Before(from) && e.At.Before(to) && slices.Contains(users, e.User) {
			out = append(out, e)
		}
	}
	return out, nil
}

// APIWrites counts the writes of one user within a window.
type APIWrites struct {
	User      string         `json:"user"`
	Writes    int            `json:"writes"`
	PerMinute float64        `json:"perMinute"`
	ByKind    map[string]int `json:"byKind"`
}

func countWrites(user string, events []auditEvent, window time.Duration) APIWrites {
	w := APIWrites{User: user, Writes: len(events), ByKind: map[string]int{}}
	for _, e := range events {
		w.ByKind[e.kind()]++
	}
	if window > 0 {
		w.PerMinute = float64(len(events)) / window.Minutes()
	}
	return w
}

// topKinds lists the kinds of writes, most frequent first.
func (w APIWrites) topKinds() []string {
	kinds := make([]string, 0, len(w.ByKind))
	for k := range w.ByKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if w.ByKind[kinds[i]] != w.ByKind[kinds[j]] {
			return w.ByKind[kinds[i]] > w.ByKind[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	return kinds
}
