package containerd

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Pod networks are 10.199.N.0/24 on bridge krctrdN, N from 1 to 254: one
// per running instance, claimed by holding a lock file, so that instances in
// parallel test processes never share a subnet or a bridge.
const (
	bridgePrefix = "krctrd"
	subnetFormat = "10.199.%d.0/24"
)

// lockDir holds the lock files of the claimed networks.
func lockDir() string { return filepath.Join(os.TempDir(), "krustlet-containerd-net") }

// network is a claimed pod network.
type network struct {
	Name   string // of the CNI network
	Bridge string
	Subnet netip.Prefix
	lock   *os.File
}

// claimNetwork claims the first free pod network: its lock is free, no link
// has its bridge's name (one left behind by a run that was killed is not
// reused) and no address or route of the host overlaps its subnet.
func claimNetwork() (*network, error) {
	if err := os.MkdirAll(lockDir(), 0o755); err != nil {
		return nil, err
	}
	unlock, err := globalLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := saveIPForward(); err != nil {
		return nil, err
	}
	hostNets, err := hostPrefixes()
	if err != nil {
		return nil, err
	}
	for n := 1; n < 255; n++ {
		subnet := netip.MustParsePrefix(fmt.Sprintf(subnetFormat, n))
		bridge := fmt.Sprintf("%s%d", bridgePrefix, n)
		if linkExists(bridge) || overlapsAny(subnet, hostNets) {
			continue
		}
		f, err := os.OpenFile(filepath.Join(lockDir(), fmt.Sprintf("%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		// The bridge may have appeared between the check and the lock.
		if linkExists(bridge) {
			f.Close()
			continue
		}
		return &network{Name: fmt.Sprintf("krustlet-ctrd-%d", n), Bridge: bridge, Subnet: subnet, lock: f}, nil
	}
	return nil, errors.New("no free pod network: every 10.199.N.0/24 is claimed, overlaps the host's networks or has a bridge left behind (ip link show | grep " + bridgePrefix + ")")
}

// release gives the network back to other instances; the last one to go
// restores IPv4 forwarding (see saveIPForward).
func (n *network) release() error {
	if n == nil || n.lock == nil {
		return nil
	}
	unlock, err := globalLock()
	n.lock.Close()
	n.lock = nil
	if err != nil {
		return err
	}
	defer unlock()
	if othersActive() {
		return nil
	}
	return restoreIPForward()
}

// globalLock serialises claims and releases of all instances.
func globalLock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(lockDir(), "global.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// othersActive reports whether another instance holds a network.
func othersActive() bool {
	locks, _ := filepath.Glob(filepath.Join(lockDir(), "[0-9]*.lock"))
	for _, l := range locks {
		f, err := os.Open(l)
		if err != nil {
			continue
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		f.Close()
		if err != nil {
			return true
		}
	}
	return false
}

// conflist is the CNI configuration of the network: a bridge that is the
// pods' gateway, without masquerading, addresses from host-local (its
// leases under ipamDir), and loopback. The pods get no default route: they
// reach their subnet (the host through the bridge, other pods) and nothing
// else.
func (n *network) conflist(ipamDir string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       n.Name,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      n.Bridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": false,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.Subnet.String()}}},
					"dataDir": ipamDir,
				},
			},
			map[string]any{"type": "loopback"},
		},
	}, "", "  ")
}

// removeBridge deletes the network's bridge if it exists (the bridge plugin
// creates it on the first sandbox and never deletes it).
func (n *network) removeBridge() error {
	if !linkExists(n.Bridge) {
		return nil
	}
	if out, err := exec.Command("ip", "link", "delete", "dev", n.Bridge).CombinedOutput(); err != nil {
		return fmt.Errorf("deleting bridge %s: %w: %s", n.Bridge, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// anyBridgeOfOurs reports whether a bridge of any instance exists.
func anyBridgeOfOurs() bool {
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		if strings.HasPrefix(l.Name(), bridgePrefix) {
			return true
		}
	}
	return false
}

// The bridge plugin turns on IPv4 forwarding for a gateway bridge, for the
// whole host. The first claim while no instance runs saves the setting in
// the lock directory, and the last release restores it, so that instances
// in parallel processes do not turn it off under each other.
const ipForward = "/proc/sys/net/ipv4/ip_forward"

func savedIPForward() string { return filepath.Join(lockDir(), "ip_forward.saved") }

// saveIPForward saves the setting unless a saved one is there already
// (from a running instance, or one killed before it could restore it).
// The caller holds the global lock.
func saveIPForward() error {
	if _, err := os.Stat(savedIPForward()); err == nil {
		return nil
	}
	b, err := os.ReadFile(ipForward)
	if err != nil {
		return nil // no IPv4 forwarding setting to look after
	}
	return os.WriteFile(savedIPForward(), b, 0o644)
}

// restoreIPForward restores the saved setting and forgets it. The caller
// holds the global lock and no instance is running.
func restoreIPForward() error {
	saved, err := os.ReadFile(savedIPForward())
	if err != nil {
		return nil
	}
	if anyBridgeOfOurs() {
		return nil // left by a killed run: keep the saved setting for later
	}
	if cur, err := os.ReadFile(ipForward); err == nil && strings.TrimSpace(string(cur)) != strings.TrimSpace(string(saved)) {
		if err := os.WriteFile(ipForward, saved, 0o644); err != nil {
			return fmt.Errorf("restoring %s: %w", ipForward, err)
		}
	}
	return os.Remove(savedIPForward())
}

// hostPrefixes returns the prefixes of the host's IPv4 addresses and routes.
func hostPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return out, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		dst, err1 := hex.DecodeString(fields[1])
		mask, err2 := hex.DecodeString(fields[7])
		if err1 != nil || err2 != nil || len(dst) != 4 || len(mask) != 4 {
			continue
		}
		// /proc/net/route prints addresses in host (little-endian) order.
		d, m := binary.LittleEndian.Uint32(dst), binary.LittleEndian.Uint32(mask)
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], d)
		bits, _ := net.IPMask(binary.BigEndian.AppendUint32(nil, m)).Size()
		if bits == 0 {
			continue // the default route overlaps everything and says nothing
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked())
	}
	return out, nil
}

func overlapsAny(p netip.Prefix, others []netip.Prefix) bool {
	for _, o := range others {
		if p.Overlaps(o) {
			return true
		}
	}
	return false
}
