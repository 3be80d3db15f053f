//go:build linux && (amd64 || arm64)

package cutfs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Config is what cmd/cutfs serves.
type Config struct {
	Backing string // the disk: a directory whose contents are all durable
	Mount   string // where the filesystem appears
	Control string // unix socket for the commands (see Serve)
	// ReadRate, if not zero, throttles reads to this many bytes/s, like
	// gateway flash (20 to 40 MB/s): page faults of an mmap included.
	ReadRate int64
}

type server struct {
	m        *model
	throttle throttle
}

// Serve mounts the filesystem and serves it until a cut, a stop, or ctx ends
// (a stop). It prints "ready" on ready once mounted. Commands on the control
// socket, one line each, one line of reply:
//
//	cut SEED PAGES DIRS TORN  the power goes (see CutPlan); replies with the
//	                          CutReport as JSON, then unmounts and returns
//	cutat N SEED PAGES DIRS TORN  arm a cut at the N-th write or sync from now,
//	                          inside it; replies with the CutReport when it fired
//	                          (or, after 3 s without them, when it cut anyway)
//	stop                      everything becomes durable (a clean shutdown), then as cut
//	stats                     Stats as JSON
//	rate BYTES_PER_S          set the read throttle (0: none)
func Serve(ctx context.Context, cfg Config, ready func()) error {
	m, err := load(cfg.Backing)
	if err != nil {
		return err
	}
	s := &server{m: m}
	s.throttle.rate = cfg.ReadRate
	zero := time.Duration(0)
	root := &fsNode{s: s, id: m.root.id}
	srv, err := fs.Mount(cfg.Mount, root, &fs.Options{
		MountOptions: fuse.MountOptions{DirectMountStrict: true, FsName: "cutfs", Name: "cutfs"},
		EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
	})
	if err != nil {
		return fmt.Errorf("mount %s: %w", cfg.Mount, err)
	}
	_ = os.Remove(cfg.Control)
	ln, err := net.Listen("unix", cfg.Control)
	if err != nil {
		_ = syscall.Unmount(cfg.Mount, syscall.MNT_DETACH)
		return fmt.Errorf("control socket: %w", err)
	}
	defer ln.Close()
	ready()

	done := make(chan error, 1)
	var once sync.Once
	finish := func(err error) { once.Do(func() { done <- err }) }
	go func() {
		<-ctx.Done()
		finish(s.stop())
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.control(c, finish)
		}
	}()
	err = <-done
	// Detach: a process still holding a file (a killed agent being reaped)
	// gets errors, as after a power cut; the connection ends when we exit.
	if uerr := syscall.Unmount(cfg.Mount, syscall.MNT_DETACH); uerr != nil {
		err = errors.Join(err, fmt.Errorf("unmount %s: %w", cfg.Mount, uerr))
	}
	_ = srv // the kernel ends the connection when the process exits
	return err
}

// control serves one connection's commands. A cut or stop calls finish after
// replying.
func (s *server) control(c net.Conn, finish func(error)) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var reply any
		var err error
		end := false
		switch {
		case f[0] == "cut" && len(f) == 5:
			var plan CutPlan
			plan, err = parsePlan(f[1:])
			if err == nil {
				s.m.mu.Lock()
				reply, err = s.m.cutLocked(plan)
				s.m.mu.Unlock()
				end = true
			}
		case f[0] == "cutat" && len(f) == 6:
			reply, err = s.cutAt(f[1:])
			end = err == nil
		case f[0] == "stop":
			err, end = s.stop(), true
			reply = "stopped"
		case f[0] == "stats":
			s.m.mu.Lock()
			reply = s.m.stats()
			s.m.mu.Unlock()
		case f[0] == "rate" && len(f) == 2:
			var r int64
			if r, err = strconv.ParseInt(f[1], 10, 64); err == nil {
				s.throttle.set(r)
				reply = "ok"
			}
		default:
			err = fmt.Errorf("unknown command %q", sc.Text())
		}
		if err != nil {
			fmt.Fprintf(c, "error %v\n", err)
		} else {
			b, _ := json.Marshal(reply)
			fmt.Fprintf(c, "ok %s\n", b)
		}
		if end {
			finish(err)
			return
		}
	}
}

// cutAt arms a cut and waits for it to fire.
func (s *server) cutAt(f []string) (CutReport, error) {
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 {
		return CutReport{}, fmt.Errorf("cutat: bad count %q", f[0])
	}
	plan, err := parsePlan(f[1:])
	if err != nil {
		return CutReport{}, err
	}
	fired := make(chan armedCut, 1)
	s.m.mu.Lock()
	if s.m.cut || s.m.armed != nil {
		s.m.mu.Unlock()
		return CutReport{}, fmt.Errorf("cutat: already cut or armed")
	}
	s.m.armed, s.m.armedIn, s.m.fired = &plan, n, fired
	s.m.mu.Unlock()
	select {
	case c := <-fired:
		c.rep.Fired = true
		return c.rep, c.err
	case <-time.After(armedMax):
	}
	// A program that writes nothing for that long (an uplink that keeps up writes nothing) is cut where it is.
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.armed == nil { // it fired just now
		c := <-fired
		c.rep.Fired = true
		return c.rep, c.err
	}
	s.m.armed = nil
	return s.m.cutLocked(plan)
}

// armedMax bounds the wait of an armed cut: then it cuts where the program is.
const armedMax = 3 * time.Second

func (s *server) stop() error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.cut {
		return nil
	}
	return s.m.syncAllLocked()
}

func parsePlan(f []string) (CutPlan, error) {
	var p CutPlan
	var err error
	if p.Seed, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return p, fmt.Errorf("cut seed: %w", err)
	}
	if p.Pages, err = strconv.ParseFloat(f[1], 64); err != nil {
		return p, fmt.Errorf("cut pages: %w", err)
	}
	if p.Dirs, err = strconv.ParseFloat(f[2], 64); err != nil {
		return p, fmt.Errorf("cut dirs: %w", err)
	}
	if p.Torn, err = strconv.ParseBool(f[3]); err != nil {
		return p, fmt.Errorf("cut torn: %w", err)
	}
	return p, nil
}

// throttle paces reads to rate bytes/s: each read waits until the reads
// before it would have taken that long.
type throttle struct {
	mu   sync.Mutex
	rate int64
	next time.Time
}

func (t *throttle) set(rate int64) {
	t.mu.Lock()
	t.rate, t.next = rate, time.Time{}
	t.mu.Unlock()
}

func (t *throttle) wait(ctx context.Context, n int) error {
	t.mu.Lock()
	if t.rate <= 0 {
		t.mu.Unlock()
		return nil
	}
	now := time.Now()
	if t.next.Before(now) {
		t.next = now
	}
	t.next = t.next.Add(time.Duration(float64(n) / float64(t.rate) * float64(time.Second)))
	d := t.next.Sub(now)
	t.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
