package crosstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fixed inputs, so that what the tests build is comparable across runs.
const (
	testVersion = "v1.2.3-4-gabcdef0"
	testCommit  = "abcdef0"
	testEpoch   = "1700000000" // 2023-11-14T22:13:20Z
)

// allArches are the targets cross/build.sh knows.
var allArches = []string{"armv6", "armv7", "arm64", "amd64", "mipsle"}

// repoRoot is the repository root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cross", "build.sh")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// needSlow skips t under -short: these tests cross-compile the agent.
func needSlow(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("cross-compiles the agent: skipped with -short")
	}
}

// run runs name args in dir with extra environment, bounded by timeout, and returns stdout; it fails t with
// stderr when the command fails.
func run(t testing.TB, timeout time.Duration, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, errOut, err := tryRun(t, timeout, dir, env, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errOut)
	}
	return out
}

// tryRun is run that returns the error and stderr instead of failing.
func tryRun(t testing.TB, timeout time.Duration, dir string, env []string, stdin io.Reader, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// buildEnv is the environment cross/build.sh and cross/package.sh read.
func buildEnv(extra ...string) []string {
	return append([]string{
		"VERSION=" + testVersion, "COMMIT=" + testCommit, "SOURCE_DATE_EPOCH=" + testEpoch,
		// Whatever the caller's test run targets, these builds pick their own.
		"GOOS=", "GOARCH=", "GOARM=", "GOMIPS=", "GOAMD64=", "CGO_ENABLED=", "GOFLAGS=",
	}, extra...)
}

// build runs cross/build.sh for arches into a new directory and returns it.
func build(t testing.TB, arches ...string) string {
	t.Helper()
	root := repoRoot(t)
	dist := t.TempDir()
	args := append([]string{filepath.Join(root, "cross", "build.sh"), dist}, arches...)
	run(t, 10*time.Minute, root, buildEnv(), "bash", args...)
	return dist
}

// binary is the path build put arch's binary at.
func binary(dist, arch string) string { return filepath.Join(dist, "linux_"+arch, "gps-agent") }

// sha256File is the hex SHA-256 of a file.
func sha256File(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// nfpm returns the nfpm binary, building bin/nfpm from cross/tools when it is missing or older than the pin,
// exactly as cross.mk does.
func nfpm(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	bin := filepath.Join(root, "bin", "nfpm")
	fresh := false
	if st, err := os.Stat(bin); err == nil {
		fresh = true
		for _, pin := range []string{"go.mod", "go.sum"} {
			pst, err := os.Stat(filepath.Join(root, "cross", "tools", pin))
			if err != nil {
				t.Fatal(err)
			}
			if pst.ModTime().After(st.ModTime()) {
				fresh = false
			}
		}
	}
	if !fresh {
		run(t, 10*time.Minute, filepath.Join(root, "cross", "tools"), []string{"CGO_ENABLED=0", "GOOS=", "GOARCH=", "GOFLAGS="},
			"go", "build", "-trimpath", "-o", bin, "github.com/goreleaser/nfpm/v2/cmd/nfpm")
	}
	return bin
}

// pkgVersion is the package version cross/pkgversion.sh makes of testVersion.
func pkgVersion(t testing.TB) string {
	t.Helper()
	return strings.TrimSpace(string(run(t, time.Minute, repoRoot(t), nil, "sh", "cross/pkgversion.sh", testVersion)))
}

// pkg runs cross/package.sh on dist (already holding the arches' binaries).
func pkg(t testing.TB, dist string, arches ...string) {
	t.Helper()
	root := repoRoot(t)
	args := append([]string{filepath.Join(root, "cross", "package.sh"), dist}, arches...)
	run(t, 5*time.Minute, root, buildEnv("NFPM="+nfpm(t)), "bash", args...)
}
