package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// statusCmd shows the daemon's state: asked through its socket while it runs, read from its database when not.
func statusCmd(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	path := configFlag(fs)
	db := dbFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON, for programs")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	st, err := fetchStatus(ctx, *path, *db, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	st.writeText(stdout)
	return nil
}

// fetchStatus asks the daemon named by the config, or reads the database when it does not answer (or db is set).
func fetchStatus(ctx context.Context, cfgPath, db string, stderr io.Writer) (fieldStatus, error) {
	if db != "" {
		return stoppedStatus(db, "", nil)
	}
	cfg, err := fieldConfig(cfgPath)
	if err != nil {
		return fieldStatus{}, err
	}
	st, err := daemonStatus(ctx, cfg.StatusSocket)
	if err == nil {
		return st, nil
	}
	st, dberr := stoppedStatus(filepath.Join(cfg.Buffer.Dir, bufferFile), cfg.StatusSocket, err)
	var held *daemonHoldsError
	switch {
	case errors.As(dberr, &held):
		return st, dberr // it names the socket's error
	case dberr != nil:
		return st, fmt.Errorf("%w; and the database: %w", err, dberr)
	case !errors.Is(err, errNoDaemon):
		fmt.Fprintf(stderr, "gps-agent status: %v; read the database instead: no daemon holds it\n", err)
	}
	return st, nil
}

// ago formats how long before now t was: "3m12s ago", "never" for a zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roundAge(-d).String()
	}
	return roundAge(d).String() + " ago"
}

// roundAge keeps an age readable: tenths of a second under 10 s, seconds under an hour, minutes beyond.
func roundAge(d time.Duration) time.Duration {
	switch {
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d < time.Hour:
		return d.Round(time.Second)
	default:
		return d.Round(time.Minute)
	}
}

// bytesIEC formats a byte count: "3.0 KiB".
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// nonZero lists "name=n" for the counters that are not zero, in the order given.
func nonZero(each func(fn func(string, uint64))) string {
	var parts []string
	each(func(name string, n uint64) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", name, n))
		}
	})
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func sortedCounts(m map[string]uint64) func(fn func(string, uint64)) {
	return func(fn func(string, uint64)) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fn(k, m[k])
		}
	}
}

// writeText prints the status for a technician: one section per part, aligned.
func (st fieldStatus) writeText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	now := st.Now
	line := func(section, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", section, fmt.Sprintf(format, args...))
	}
	a := st.Agent
	if a != nil {
		line("agent", "gps-agent %s, running since %s (up %s)", a.Version, a.Started.Local().Format("2006-01-02 15:04:05"),
			roundAge(now.Sub(a.Started)))
	} else {
		line("agent", "daemon %s; read from %s", st.Daemon, st.Source)
	}
	if a != nil {
		rx := a.Receiver
		baud := "baud not found yet"
		if rx.Baud > 0 {
			baud = fmt.Sprintf("%d baud", rx.Baud)
		}
		if rx.Link != nil && rx.Link.Source == "gpsd" {
			baud = "through gpsd"
			if g := rx.Link.Gpsd; g != nil && len(g.Devices) > 0 {
				baud = fmt.Sprintf("through gpsd %s reading %s", g.Release, strings.Join(g.Devices, ", "))
			} else if g != nil && g.Release != "" {
				baud = fmt.Sprintf("through gpsd %s, which reads no receiver", g.Release)
			}
			line("receiver", "%s, last sentence %s", baud, ago(now, rx.Counters.LastSentence))
		} else {
			line("receiver", "%s at %s, last sentence %s", rx.Device, baud, ago(now, rx.Counters.LastSentence))
		}
		writeLink(line, now, rx)
		if f := rx.LastFix; f != nil {
			line("", "last fix %s (%s): %.6f,%.6f quality %d, %s satellites, hdop %s", f.Time.Local().Format("15:04:05"),
				ago(now, f.Time), f.Lat, f.Lon, f.Quality, optSats(f.Sats), optHDOP(f.HDOP))
		} else {
			line("", "no fix from the receiver yet")
		}
		line("", "counters: %s", nonZero(func(fn func(string, uint64)) { rx.Counters.Each(fn) }))
		line("", "filtered out: %s", nonZero(sortedCounts(a.Filter)))
	}
	if n := st.Newest; n != nil {
		line("newest fix", "%s (%s): %.6f,%.6f quality %d, %s satellites", n.TS.Local().Format("15:04:05"), ago(now, n.TS),
			n.Lat, n.Lon, n.Fix, optInt(n.Sats))
	}
	if a != nil {
		off := time.Duration(a.Clock.OffsetMs) * time.Millisecond
		verdict := "ok"
		if off > maxClockOffset || off < -maxClockOffset {
			verdict = "OFF: check NTP (records keep GNSS time in ts)"
		}
		line("clock", "gateway - GNSS = %+.3fs (%s), %d fixes received while off", off.Seconds(), verdict, a.Clock.SkewedFixes)
	}
	b := st.Buffer
	line("buffer", "%d fixes pending (%s), next seq %d", b.Pending, bytesIEC(b.PendingBytes), b.NextSeq)
	if o := st.OldestUnsent; o != nil {
		line("", "oldest unsent: seq %d, fix time %s (%s)", o.Seq, o.TS.Local().Format("2006-01-02 15:04:05"),
			ago(now, o.TS))
	}
	if a != nil {
		line("", "dropped: max_bytes=%d max_age=%d invalid=%d; commits %d, commit errors %d", b.DroppedMaxBytes,
			b.DroppedMaxAge, b.DroppedInvalid, b.Commits, b.CommitErrors)
		if b.LastCommitErr != "" {
			line("", "last commit error: %s", b.LastCommitErr)
		}
		u := a.Uplink
		line("uplink", "last success %s; %d fixes acked in %d calls, %d retries, %d throttles", ago(now, u.LastSuccess),
			u.RecordsAcked, u.Calls, u.Retries, u.Throttles)
		if u.LastError != "" {
			line("", "last error %s: %s", ago(now, u.LastErrorTime), u.LastError)
		}
		if errs := nonZero(sortedCounts(u.CallErrors)); errs != "none" {
			line("", "call errors: %s", errs)
		}
		if fails := nonZero(sortedCounts(u.FailedRecords)); fails != "none" {
			line("", "failed records: %s", fails)
		}
		line("", "drain: %.1f fixes/s stored, backlog %+.1f/s (backfill pace %.0f/s)", st.DrainRate, st.BacklogRate, u.BackfillRate)
		line("", "traffic: %s sent, %s received; last minute: %.0f B per fix, %.1f MB/day at this rate (%.0f MB/30 days)",
			bytesIEC(int64(u.BytesSent)), bytesIEC(int64(u.BytesReceived)), st.BytesPerFix, st.MBPerDay, 30*st.MBPerDay)
		if h := a.Health; h != nil {
			line("health", "%d rows sent (last %s), %d failed, %d replaced unsent", h.Sent, ago(now, h.LastSent), h.Failed,
				h.Replaced)
			if h.LastError != "" {
				line("", "last error: %s", h.LastError)
			}
		}
	}
}

// writeLink prints the receiver's link when it is not simply open, and the modem's last commands.
func writeLink(line func(section, format string, args ...any), now time.Time, rx ReceiverStatus) {
	l := rx.Link
	if l == nil {
		return
	}
	what := rx.Device
	if l.Source == "gpsd" {
		what = "gpsd at " + l.Address
	}
	switch {
	case l.State == nmea.LinkUnavailable:
		line("", "%s UNAVAILABLE since %s, retrying: %s", what, ago(now, l.Since), l.LastError)
	case l.State == nmea.LinkOpen && l.LastError != "":
		line("", "%s open since %s (earlier: %s)", what, ago(now, l.Since), l.LastError)
	case l.State == nmea.LinkStarting:
		line("", "%s not opened yet", what)
	}
	if a := l.AT; a != nil {
		if a.Sent.IsZero() {
			line("modem", "AT port %s: no command sent yet", a.Device)
			return
		}
		line("modem", "AT port %s: %s (sent %s, on %s; %d rounds)", a.Device, atAnswers(a), ago(now, a.Sent), a.Why, a.Rounds)
	}
}

// atAnswers is a round of modem commands in a line: "AT+QGPS=1 -> +CME ERROR: 504".
func atAnswers(a *nmea.ATState) string {
	var parts []string
	for _, r := range a.Results {
		answer := r.Final
		if r.Error != "" {
			answer = r.Error
		}
		parts = append(parts, r.Command+" -> "+answer)
	}
	if a.Error != "" {
		parts = append(parts, a.Error)
	}
	return strings.Join(parts, ", ")
}

func optInt(p *int) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprint(*p)
}

func optSats(n int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

func optHDOP(h float64) string {
	if h == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f", h)
}
