package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The emulator runs as a process would: it says where it listens, obeys
// commands on stdin and SIGUSR1, and stops with its context.
func TestLinkemu(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--upstream", up.URL, "--profile", "lte"}, inR, outW); outW.Close() }()
	t.Cleanup(func() {
		cancel()
		inW.Close()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case l := <-lines:
			if !strings.Contains(l, want) {
				t.Fatalf("linkemu said %q, want %q in it", l, want)
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatalf("linkemu said nothing, want %q", want)
		}
		return ""
	}
	url := strings.Fields(strings.TrimPrefix(next("listening on http://"), "linkemu: listening on "))[0]
	url = strings.TrimSuffix(url, ",")
	client := &http.Client{Timeout: 700 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() error {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("through the link: %v", err)
	}
	io.WriteString(inW, "refuse\n")
	next("link refused")
	if err := get(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("while refused: %v, want connection refused", err)
	}
	io.WriteString(inW, "up\n")
	next("link up")
	if err := get(); err != nil {
		t.Errorf("back up: %v", err)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	next("link black hole")
	if err := get(); err == nil {
		t.Errorf("in the black hole a request was answered")
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
	next("link up")
	io.WriteString(inW, "meter\n")
	next("connections opened")
}
