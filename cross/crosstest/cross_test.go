package crosstest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCross builds every target once and checks the binaries, their reproducibility, the armv6 decoder against
// the amd64 one, and the packages made from them.
func TestCross(t *testing.T) {
	needSlow(t)
	dist := build(t, allArches...)

	t.Run("static stripped ELF", func(t *testing.T) {
		cases := []struct {
			arch    string
			machine elf.Machine
			class   elf.Class
		}{
			{"armv6", elf.EM_ARM, elf.ELFCLASS32},
			{"armv7", elf.EM_ARM, elf.ELFCLASS32},
			{"arm64", elf.EM_AARCH64, elf.ELFCLASS64},
			{"amd64", elf.EM_X86_64, elf.ELFCLASS64},
			{"mipsle", elf.EM_MIPS, elf.ELFCLASS32},
		}
		for _, c := range cases {
			t.Run(c.arch, func(t *testing.T) {
				checkELF(t, binary(dist, c.arch), c.machine, c.class)
			})
		}
	})

	t.Run("version embedded", func(t *testing.T) {
		want := "gps-agent " + testVersion + " (commit " + testCommit + ")\n"
		for _, arch := range allArches {
			b, err := os.ReadFile(binary(dist, arch))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(testVersion)) || !bytes.Contains(b, []byte(testCommit)) {
				t.Errorf("%s: version %q or commit %q not in the binary", arch, testVersion, testCommit)
			}
		}
		if runtime.GOARCH == "amd64" {
			if got := string(run(t, time.Minute, "", nil, binary(dist, "amd64"), "version")); got != want {
				t.Errorf("amd64 version = %q, want %q", got, want)
			}
		}
		qemu := needQemu(t)
		if got := string(run(t, time.Minute, "", nil, qemu, binary(dist, "armv6"), "version")); got != want {
			t.Errorf("armv6 version under qemu = %q, want %q", got, want)
		}
	})

	t.Run("mtime is SOURCE_DATE_EPOCH", func(t *testing.T) {
		for _, arch := range allArches {
			st, err := os.Stat(binary(dist, arch))
			if err != nil {
				t.Fatal(err)
			}
			if got := st.ModTime().Unix(); got != 1700000000 {
				t.Errorf("%s: mtime %d, want %s", arch, got, testEpoch)
			}
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		// A second build into another directory. With GPS_AGENT_REPRO_FRESH_GOCACHE=1 it also recompiles every
		// package from scratch in an empty build cache (minutes), which checks the compiler's output too.
		var again string
		if os.Getenv("GPS_AGENT_REPRO_FRESH_GOCACHE") == "1" {
			t.Setenv("GOCACHE", t.TempDir())
		}
		again = build(t, allArches...)
		for _, arch := range allArches {
			a, b := sha256File(t, binary(dist, arch)), sha256File(t, binary(again, arch))
			if a != b {
				t.Errorf("%s: two builds differ: sha256 %s and %s", arch, a, b)
			}
		}
		// Packages of the same binaries, made twice, must match too (file mtimes, order, owners, compression).
		pkg(t, dist, "amd64", "armv6")
		pkg(t, again, "amd64", "armv6")
		outs, err := filepath.Glob(filepath.Join(dist, "gps-agent_*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 6 {
			t.Fatalf("packages: %d files, want 6 (.deb, .ipk, .tar.gz for 2 arches): %v", len(outs), outs)
		}
		for _, p := range outs {
			q := filepath.Join(again, filepath.Base(p))
			if a, b := sha256File(t, p), sha256File(t, q); a != b {
				t.Errorf("%s: two packagings differ: sha256 %s and %s", filepath.Base(p), a, b)
			}
		}
	})

	t.Run("armv6 decodes like amd64", func(t *testing.T) {
		if runtime.GOARCH != "amd64" {
			t.Skip("compares with the native amd64 binary")
		}
		qemu := needQemu(t)
		logs, err := filepath.Glob(filepath.Join(repoRoot(t), "nmea", "testdata", "*.log"))
		if err != nil || len(logs) == 0 {
			t.Fatalf("no receiver logs in nmea/testdata: %v", err)
		}
		records := 0 // over all logs: one log may have no fix at all (GPSmap-76S.log: a Garmin in simulator mode)
		for _, log := range logs {
			t.Run(filepath.Base(log), func(t *testing.T) {
				native, nativeErr, err := tryRun(t, time.Minute, "", nil, nil, binary(dist, "amd64"), "decode", log)
				if err != nil {
					t.Fatalf("amd64 decode: %v\n%s", err, nativeErr)
				}
				arm, armErr, err := tryRun(t, 2*time.Minute, "", nil, nil, qemu, binary(dist, "armv6"), "decode", log)
				if err != nil {
					t.Fatalf("armv6 decode: %v\n%s", err, armErr)
				}
				records += bytes.Count(native, []byte("\n"))
				if !bytes.Equal(native, arm) {
					t.Errorf("records differ: amd64 %d bytes, armv6 %d bytes; first difference at line %d",
						len(native), len(arm), firstDiffLine(native, arm))
				}
				if !bytes.Equal(nativeErr, armErr) {
					t.Errorf("summary differs:\namd64: %s\narmv6: %s", nativeErr, armErr)
				}
			})
		}
		if records == 0 {
			t.Fatalf("amd64 decode printed no records for any of %d logs", len(logs))
		}
	})

	t.Run("package contents", func(t *testing.T) {
		pkg(t, dist, "amd64")
		base := filepath.Join(dist, "gps-agent_"+pkgVersion(t)+"_")

		deb := readAr(t, base+"amd64.deb")
		data := tarNames(t, deb["data.tar.gz"])
		for _, want := range []string{
			"./usr/bin/gps-agent", "./lib/systemd/system/gps-agent.service", "./lib/udev/rules.d/99-gps-agent.rules",
			"./etc/gps-agent/config.toml", "./usr/share/doc/gps-agent/copyright", "./usr/share/doc/gps-agent/changelog.gz",
		} {
			if !slices.Contains(data, want) {
				t.Errorf(".deb lacks %s; has %v", want, data)
			}
		}
		control := tarFiles(t, deb["control.tar.gz"])
		if got := strings.TrimSpace(control["./conffiles"]); got != "/etc/gps-agent/config.toml" {
			t.Errorf(".deb conffiles = %q, want /etc/gps-agent/config.toml", got)
		}
		for _, want := range []string{"Package: gps-agent\n", "Architecture: amd64\n", "Depends: adduser\n", "Version: " + pkgVersion(t) + "\n"} {
			if !strings.Contains(control["./control"], want) {
				t.Errorf(".deb control lacks %q:\n%s", want, control["./control"])
			}
		}
		for _, s := range []string{"./postinst", "./prerm", "./postrm"} {
			if control[s] == "" {
				t.Errorf(".deb has no %s", s)
			}
		}

		ipk := tarFiles(t, readFile(t, base+"amd64.ipk"))
		ipkData := tarNames(t, []byte(ipk["./data.tar.gz"]))
		for _, want := range []string{"./usr/bin/gps-agent", "./etc/init.d/gps-agent", "./etc/gps-agent/config.toml"} {
			if !slices.Contains(ipkData, want) {
				t.Errorf(".ipk lacks %s; has %v", want, ipkData)
			}
		}
		ipkControl := tarFiles(t, []byte(ipk["./control.tar.gz"]))
		if !strings.Contains(ipkControl["./control"], "Require-User: gps-agent:gps-agent:dialout") {
			t.Errorf(".ipk control does not ask for the gps-agent user:\n%s", ipkControl["./control"])
		}

		tgz := tarNames(t, readFile(t, filepath.Join(dist, "gps-agent_"+pkgVersion(t)+"_linux_amd64.tar.gz")))
		if len(tgz) < 5 || !strings.HasSuffix(tgz[1], "/gps-agent") {
			t.Errorf(".tar.gz lists %v", tgz)
		}

		// lintian: in CI (installed there when missing), else only when present.
		if _, err := exec.LookPath("lintian"); err != nil && os.Getenv("CI") == "" {
			t.Log("lintian not installed and not in CI: not run")
			return
		}
		out, errOut, err := tryRun(t, 5*time.Minute, repoRoot(t), nil, nil, "bash", "cross/lintian.sh", base+"amd64.deb")
		t.Logf("lintian:\n%s%s", out, errOut)
		if err != nil {
			t.Errorf("lintian found errors: %v", err)
		}
	})
}

// checkELF fails t unless path is a static (no interpreter, no dynamic section), stripped ELF for machine.
func checkELF(t *testing.T, path string, machine elf.Machine, class elf.Class) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != class {
		t.Errorf("machine %v %v, want %v %v", f.Machine, f.Class, machine, class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("dynamically linked: has %v", p.Type)
		}
	}
	if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
		t.Errorf("not stripped: symbol table present (%v)", err)
	}
	if s := f.Section(".note.go.buildid"); s != nil {
		b, _ := s.Data()
		// The note is the 16-byte header and "Go\x00\x00"; an empty build ID leaves nothing after it.
		if len(b) > 16 && len(bytes.Trim(b[16:], "\x00")) > 0 {
			t.Errorf("build ID present (%q): want -buildid=", b[16:])
		}
	}
}

// needQemu returns qemu-arm-static's path or fails: make deps installs it.
func needQemu(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-arm-static")
	if err != nil {
		t.Fatal("qemu-arm-static not installed (make deps installs qemu-user-static)")
	}
	return p
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAr returns the members of a .deb (an ar archive) by name.
func readAr(t *testing.T, path string) map[string][]byte {
	t.Helper()
	b := readFile(t, path)
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		t.Fatalf("%s: not an ar archive", path)
	}
	out := map[string][]byte{}
	for b = b[8:]; len(b) >= 60; {
		hdr := b[:60]
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		var size int
		for _, c := range strings.TrimSpace(string(hdr[48:58])) {
			size = size*10 + int(c-'0')
		}
		b = b[60:]
		if size > len(b) {
			t.Fatalf("%s: member %s truncated", path, name)
		}
		out[name] = b[:size]
		b = b[size+size%2:]
	}
	return out
}

// tarEntries walks a gzip-compressed tar.
func tarEntries(t *testing.T, tgz []byte, fn func(h *tar.Header, r io.Reader)) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		fn(h, tr)
	}
}

func tarNames(t *testing.T, tgz []byte) []string {
	t.Helper()
	var names []string
	tarEntries(t, tgz, func(h *tar.Header, _ io.Reader) { names = append(names, h.Name) })
	return names
}

func tarFiles(t *testing.T, tgz []byte) map[string]string {
	t.Helper()
	files := map[string]string{}
	tarEntries(t, tgz, func(h *tar.Header, r io.Reader) {
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(r)
			files[h.Name] = string(b)
		}
	})
	return files
}
