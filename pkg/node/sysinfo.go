package node

import (
	"bufio"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/krustlet/krustlet-go/pkg/config"
)

// ReadSystemInfo reads the machine's identity and kernel for nodeInfo.
// Values that cannot be read (product_uuid needs root) stay empty.
func (m Machine) ReadSystemInfo(kubeletVersion string) SystemInfo {
	read := func(p string) string {
		v, _ := readTrimmed(m.path(p))
		return v
	}
	info := SystemInfo{
		MachineID:      read("/etc/machine-id"),
		SystemUUID:     strings.ToLower(read("/sys/class/dmi/id/product_uuid")),
		BootID:         read("/proc/sys/kernel/random/boot_id"),
		KernelVersion:  read("/proc/sys/kernel/osrelease"),
		OSImage:        "Linux",
		KubeletVersion: kubeletVersion,
	}
	if info.KernelVersion == "" {
		var u syscall.Utsname
		if syscall.Uname(&u) == nil {
			b := make([]byte, 0, len(u.Release))
			for _, c := range u.Release {
				if c == 0 {
					break
				}
				b = append(b, byte(c))
			}
			info.KernelVersion = string(b)
		}
	}
	if f, err := os.Open(m.path("/etc/os-release")); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
				info.OSImage = strings.Trim(v, `"`)
			}
		}
	}
	return info
}

// PressureReader reads the machine's usage at most once a second and
// evaluates it against the hard eviction thresholds, so the three pressure
// conditions of one status sync share one reading.
type PressureReader struct {
	Machine    Machine
	Thresholds []config.EvictionThreshold
	Now        func() time.Time

	mu   sync.Mutex
	at   time.Time
	last Pressure
	err  error
}

// Read returns the current pressure.
func (r *PressureReader) Read() (Pressure, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.Now(); r.at.IsZero() || now.Sub(r.at) >= time.Second {
		var u Usage
		u, r.err = r.Machine.Usage()
		r.last = EvaluatePressure(u, r.Thresholds)
		r.at = now
	}
	return r.last, r.err
}
