package nmea

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// nmeaLines turns sentence bodies (without '$' and checksum) into CRLF lines
// with valid checksums. A body that starts with '$' or '!' is taken as is.
func nmeaLines(bodies ...string) []byte {
	var b strings.Builder
	for _, body := range bodies {
		if strings.HasPrefix(body, "$") || strings.HasPrefix(body, "!") {
			b.WriteString(body + "\r\n")
			continue
		}
		sentence(&b, "%s", body)
	}
	return []byte(b.String())
}

// decodeAll feeds data to a new decoder in one Write, flushes, and returns
// the fixes and counts.
func decodeAll(data []byte) ([]Fix, Stats) {
	var c Counters
	var fixes []Fix
	d := NewDecoder(func(f Fix) { fixes = append(fixes, f) }, &c, nil)
	d.Write(data)
	d.Flush()
	s := c.Snapshot()
	s.LastSentence = time.Time{}
	return fixes, s
}

// logRecorder is a slog.Handler that hands every record to a channel-fed
// list, so tests wait for a log line instead of sleeping.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
	changed chan struct{}
	attrs   []slog.Attr
	parent  *logRecorder
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{}, 1)} }

func (h *logRecorder) root() *logRecorder {
	if h.parent != nil {
		return h.parent
	}
	return h
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	root := h.root()
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	root.mu.Lock()
	root.records = append(root.records, r)
	root.mu.Unlock()
	select {
	case root.changed <- struct{}{}:
	default:
	}
	return nil
}
func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{parent: h.root(), attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// count returns how many records have msg.
func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Message == msg {
			n++
		}
	}
	return n
}

// find returns the attributes of the first record with msg, as text.
func (h *logRecorder) find(msg string) (map[string]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Message == msg {
			m := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
			return m, true
		}
	}
	return nil, false
}

// waitFor waits until a record with msg exists, or fails t at ctx's end.
func (h *logRecorder) waitFor(ctx context.Context, t *testing.T, msg string) map[string]string {
	t.Helper()
	for {
		if m, ok := h.find(msg); ok {
			return m
		}
		select {
		case <-h.changed:
		case <-ctx.Done():
			t.Fatalf("no log %q: %v", msg, ctx.Err())
		}
	}
}

func (h *logRecorder) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range h.records {
		fmt.Fprintf(&b, "%s %s\n", r.Level, r.Message)
	}
	return b.String()
}
