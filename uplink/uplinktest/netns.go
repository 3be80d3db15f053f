package uplinktest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// NetNS is a network namespace made for one link, so that a black hole can
// drop SYNs: a userspace emulator cannot keep the kernel from completing a
// connect, a DROP rule can. It holds a veth pair on a private /30 (picked
// from 10.213.0.0/16, free on this machine) and nothing else; the Wire
// listens inside it, and clients reach it at its address from this
// namespace.
//
// Making one needs root, `ip` (iproute2) and `nft` (nftables); it does not
// work under qemu-user. Close removes the namespace (its veth pair and
// rules go with it). A test process killed outright leaves it behind:
// `ip netns list | grep gpslink` shows such leftovers, each named for the
// pid that made it.
type NetNS struct {
	// Name is the namespace's name, gpslink-<pid>-<random>.
	Name string
	// Addr is the address inside the namespace; HostAddr its peer here.
	Addr, HostAddr netip.Addr
	hostIf         string
}

// nsPool is where link namespaces take their /30s from: private, and
// unlikely to be routed on a test machine; each pick is checked against
// this machine's addresses and routes.
var nsPool = netip.MustParsePrefix("10.213.0.0/16")

// NetNSUnavailable says why NewNetNS cannot work here, or "" if it may.
func NetNSUnavailable() string {
	if os.Geteuid() != 0 {
		return "network namespaces need root"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not in PATH (make deps installs iproute2 and nftables)"
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return "no network namespaces (qemu-user or an old kernel)"
	}
	return ""
}

// NewNetNS makes a namespace with a veth pair on a free /30 and an empty
// nftables table for Hole. The caller must Close it.
func NewNetNS() (*NetNS, error) {
	if why := NetNSUnavailable(); why != "" {
		return nil, fmt.Errorf("new netns: %s", why)
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	tag := hex.EncodeToString(r[:])
	ns := &NetNS{Name: fmt.Sprintf("gpslink-%d-%s", os.Getpid(), tag), hostIf: "gl" + tag + "h"}
	nsIf := "gl" + tag + "n"
	if err := run(nil, "ip", "netns", "add", ns.Name); err != nil {
		return nil, fmt.Errorf("new netns: %w", err)
	}
	err := ns.setup(nsIf)
	if err != nil {
		err = errors.Join(err, ns.Close())
		return nil, fmt.Errorf("new netns %s: %w", ns.Name, err)
	}
	return ns, nil
}

func (ns *NetNS) setup(nsIf string) error {
	if err := run(nil, "ip", "link", "add", ns.hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns.Name); err != nil {
		return err
	}
	// Another test process may be picking a /30 right now: hold a lock
	// from the check until the address is taken.
	unlock, err := lockFile(filepath.Join(os.TempDir(), "gps-agent-netns.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	pfx, err := freeSlash30()
	if err != nil {
		return err
	}
	ns.HostAddr = pfx.Addr().Next()
	ns.Addr = ns.HostAddr.Next()
	const table = `table inet gpslink {
	chain in { type filter hook input priority 0; policy accept; }
	chain out { type filter hook output priority 0; policy accept; }
}
`
	steps := [][]string{
		{"ip", "addr", "add", ns.HostAddr.String() + "/30", "dev", ns.hostIf},
		{"ip", "link", "set", ns.hostIf, "up"},
		{"ip", "-n", ns.Name, "addr", "add", ns.Addr.String() + "/30", "dev", nsIf},
		{"ip", "-n", ns.Name, "link", "set", nsIf, "up"},
		{"ip", "-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(nil, s[0], s[1:]...); err != nil {
			return err
		}
	}
	return run([]byte(table), "ip", "netns", "exec", ns.Name, "nft", "-f", "-")
}

// Hole drops every packet in and out of the namespace while on: SYNs
// vanish (connects hang), open connections go silent, nothing is reset.
func (ns *NetNS) Hole(on bool) error {
	script := "flush chain inet gpslink in\nflush chain inet gpslink out\n"
	if on {
		script += "add rule inet gpslink in iifname != \"lo\" drop\nadd rule inet gpslink out oifname != \"lo\" drop\n"
	}
	if err := run([]byte(script), "ip", "netns", "exec", ns.Name, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("netns hole %v: %w", on, err)
	}
	return nil
}

// Listen listens on addr inside the namespace (ns.Addr, any port, if addr
// is ""). The socket stays in the namespace; the thread that made it is
// thrown away, so no other goroutine runs in the namespace.
func (ns *NetNS) Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = net.JoinHostPort(ns.Addr.String(), "0")
	}
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the goroutine's end ends the thread, still in
		// the namespace.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", ns.Name))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("listen in netns %s: %w", ns.Name, r.err)
	}
	return r.ln, nil
}

// Close removes the namespace; its veth pair and rules go with it.
func (ns *NetNS) Close() error {
	err := run(nil, "ip", "netns", "delete", ns.Name)
	// The host end goes with its peer; this only catches a pair whose
	// peer never made it into the namespace.
	if _, statErr := os.Stat("/sys/class/net/" + ns.hostIf); statErr == nil {
		err = errors.Join(err, run(nil, "ip", "link", "delete", ns.hostIf))
	}
	if err != nil {
		return fmt.Errorf("close netns %s: %w", ns.Name, err)
	}
	return nil
}

// freeSlash30 picks a /30 from nsPool that no address or route here
// overlaps.
func freeSlash30() (netip.Prefix, error) {
	var used []netip.Prefix
	for _, args := range [][]string{{"-4", "-o", "addr", "show"}, {"-4", "route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
		}
		for _, f := range strings.Fields(string(out)) {
			if p, err := netip.ParsePrefix(f); err == nil {
				used = append(used, p.Masked())
			} else if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
				used = append(used, netip.PrefixFrom(a, 32))
			}
		}
	}
	var r [2]byte
	for range 64 {
		_, _ = rand.Read(r[:])
		b := nsPool.Addr().As4()
		b[2], b[3] = r[0], r[1]&^3
		cand := netip.PrefixFrom(netip.AddrFrom4(b), 30)
		clash := false
		for _, u := range used {
			if u.Bits() > 0 && u.Overlaps(cand) {
				clash = true
				break
			}
		}
		if !clash {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("pick a /30 in %v: all tried are in use", nsPool)
}

// lockFile takes an exclusive lock on path, for other processes too.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// run runs a command with stdin, its output in the error if it fails.
func run(stdin []byte, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
