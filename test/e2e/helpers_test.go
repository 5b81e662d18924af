package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/krustlet"
)

// joinNode joins a krustlet node named name to cp and stops it when the
// test ends. Its data dir and log live in the test's temp dir.
func joinNode(t *testing.T, cp *controlplane.ControlPlane, name string, extra ...string) *krustlet.Node {
	t.Helper()
	return joinNodeWith(t, cp, krustlet.Options{Name: name, Extra: extra})
}

// joinNodeWith is joinNode with more options; the data and log dirs are
// set here.
func joinNodeWith(t *testing.T, cp *controlplane.ControlPlane, o krustlet.Options) *krustlet.Node {
	t.Helper()
	dir := t.TempDir()
	o.DataDir, o.LogDir = filepath.Join(dir, "data"), filepath.Join(dir, "logs")
	n, err := krustlet.Join(krustletBin, cp, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Cleanup(); err != nil {
			t.Errorf("stopping node %s: %v", o.Name, err)
		}
		if t.Failed() {
			t.Logf("log of node %s:\n%s", o.Name, readTail(n.LogPath(), 60))
		}
	})
	return n
}

// waitForNodeReady waits until the node's Ready condition has status.
func waitForNodeReady(ctx context.Context, t *testing.T, client kubernetes.Interface, name string, status v1.ConditionStatus, timeout time.Duration) *v1.Node {
	t.Helper()
	node, err := krustlet.WaitForReady(ctx, client, name, status, timeout)
	if err != nil {
		t.Fatalf("%v (last: %+v)", err, conditions(node))
	}
	return node
}

func conditions(n *v1.Node) []v1.NodeCondition {
	if n == nil {
		return nil
	}
	return n.Status.Conditions
}

// auditEvent is the part of an audit event the tests read.
type auditEvent struct {
	Verb  string `json:"verb"`
	Stage string `json:"stage"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// writesBy returns the writes user made in [from, to), from the audit log.
func writesBy(t *testing.T, cp *controlplane.ControlPlane, user string, from, to time.Time) []auditEvent {
	t.Helper()
	f, err := os.Open(cp.AuditLogPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditEvent
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<24)
	for s.Scan() {
		var e auditEvent
		if json.Unmarshal(s.Bytes(), &e) != nil || e.User.Username != user || e.Stage != "ResponseComplete" {
			continue
		}
		if !e.StageTimestamp.Before(from) && e.StageTimestamp.Before(to) {
			out = append(out, e)
		}
	}
	return out
}

func readTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	start := len(data)
	for n := 0; start > 0 && n <= lines; start-- {
		if data[start-1] == '\n' {
			n++
		}
	}
	return string(data[start:])
}
