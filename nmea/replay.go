package nmea

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"time"
)

// maxReplayGap caps the pause between two epochs of a replayed log: logs
// stitched from several recordings jump minutes or hours, and a replay
// should not stall on it.
const maxReplayGap = 2 * time.Second

// Replay writes a recorded NMEA log to w at its recorded pace, like gpsd's
// gpsfake: lines are grouped into epochs by the time of day of their timed
// sentences (RMC, GGA, GNS, GLL, ZDA), each epoch is written in one Write,
// and the next one follows after the difference of their times divided by
// speed (2: twice as fast; <= 0 means 1). Gaps over 2 s of log time (a
// stitched log) and backwards jumps (midnight) are replayed as 1 s. Lines
// starting with '#' are skipped; every other line is written as recorded
// (CRLF added). Untimed lines before the first timed one go out with it.
//
// It returns nil at the end of r, ctx.Err() if ctx ends first, or the error
// of r or w.
func Replay(ctx context.Context, r io.Reader, w io.Writer, speed float64) error {
	if speed <= 0 {
		speed = 1
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	var (
		epoch   []byte
		tod     = -1 // of epoch
		next    time.Time
		flushed int
	)
	flush := func() error {
		if len(epoch) == 0 {
			return nil
		}
		if !next.IsZero() {
			if d := time.Until(next); d > 0 {
				if err := wait(ctx, d); err != nil {
					return err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if next.IsZero() {
			next = time.Now()
		}
		if _, err := w.Write(epoch); err != nil {
			return fmt.Errorf("replay: write epoch %d: %w", flushed, err)
		}
		flushed++
		epoch = epoch[:0]
		return nil
	}
	for sc.Scan() {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if t, ok := lineTod(line); ok && t != tod {
			if tod >= 0 {
				gap := time.Duration(t-tod) * time.Millisecond
				if gap <= 0 || gap > maxReplayGap {
					gap = time.Second
				}
				if err := flush(); err != nil {
					return err
				}
				next = next.Add(time.Duration(float64(gap) / speed))
			}
			tod = t
		}
		epoch = append(append(epoch, line...), '\r', '\n')
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay: read: %w", err)
	}
	return flush()
}

// lineTod returns the time of day (ms) of a timed sentence, without
// verifying or parsing the rest of it.
func lineTod(line []byte) (int, bool) {
	if len(line) < 7 || (line[0] != '$' && line[0] != '!') {
		return 0, false
	}
	field := 1
	switch string(line[3:6]) {
	case "RMC", "GGA", "GNS", "ZDA":
	case "GLL":
		field = 5
	default:
		return 0, false
	}
	f := line
	for i := 0; i < field; i++ {
		k := bytes.IndexByte(f, ',')
		if k < 0 {
			return 0, false
		}
		f = f[k+1:]
	}
	if k := bytes.IndexAny(f, ",*"); k >= 0 {
		f = f[:k]
	}
	if len(f) < 6 {
		return 0, false
	}
	v := 0
	for _, b := range f[:6] {
		if b < '0' || b > '9' {
			return 0, false
		}
		v = v*10 + int(b-'0')
	}
	ms := 0
	if len(f) > 7 && f[6] == '.' {
		scale := 100
		for _, b := range f[7:min(len(f), 10)] {
			if b < '0' || b > '9' {
				break
			}
			ms += int(b-'0') * scale
			scale /= 10
		}
	}
	return ((v/10000*60+v/100%100)*60+v%100)*1000 + ms, true
}
