package nmea

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	gonmea "github.com/adrianmo/go-nmea"
)

// Decoder frames raw receiver bytes into sentences, verifies and parses them,
// and assembles one [Fix] per receiver epoch, which it hands to onFix.
//
// A Decoder is not safe for concurrent use. onFix is called synchronously
// from Write or Flush and must not call back into the Decoder.
type Decoder struct {
	c      *Counters
	own    Counters     // c when the caller passes none
	log    *slog.Logger // nil: nothing is logged
	parser gonmea.SentenceParser

	// framing
	state frameState
	line  [MaxSentence]byte
	n     int

	asm assembler

	valid int              // sentences with a valid checksum, for auto-baud
	now   func() time.Time // gateway clock of LastSentence
}

// NewDecoder returns a decoder that calls onFix for every fix. c may be nil
// (counts are then kept privately); log may be nil (nothing is logged).
func NewDecoder(onFix func(Fix), c *Counters, log *slog.Logger) *Decoder {
	if onFix == nil {
		onFix = func(Fix) {}
	}
	d := &Decoder{c: c, log: log, now: time.Now}
	if c == nil {
		d.c = &d.own
	}
	// The checksum is verified by the framer, which counts it apart from
	// field errors; go-nmea would only repeat the work.
	d.parser.CheckCRC = func(gonmea.BaseSentence, string) error { return nil }
	d.parser.OnBaseSentence = tolerate
	d.asm = newAssembler(onFix, d.c, log)
	return d
}

// Flush closes the pending epoch for good, delivering its fix if it has
// one: call it at end of input (the Receiver does when its device closes).
// What comes after starts afresh. Any partial sentence is kept: more bytes
// may complete it.
func (d *Decoder) Flush() {
	d.asm.flush()
}

// idle tells the decoder that the receiver has fallen silent inside an
// epoch: its fix, if it has one, is handed on now. Unlike Flush, the epoch
// stays the home of what still comes of it (see assembler).
func (d *Decoder) idle() { d.asm.idle() }

// enderKnown reports whether the receiver's cycle ender is learned, so that
// epochs close on it rather than on the idle flush.
func (d *Decoder) enderKnown() bool { return d.asm.enderKnown() }

// Decode reads r to EOF, calling onFix for each fix in order, and returns the
// counts. The error is r's, never one about the content.
func Decode(r io.Reader, onFix func(Fix)) (Stats, error) {
	d := NewDecoder(onFix, nil, nil)
	c := d.c
	// io.Copy lets an in-memory reader (bytes.Reader, strings.Reader)
	// write itself in one call, with no buffer of ours; it returns r's
	// error only, as Write never fails.
	if _, err := io.Copy(d, r); err != nil {
		d.Flush()
		return c.Snapshot(), err
	}
	// A last sentence without its line end is complete when its checksum is.
	if d.state == frameIn {
		d.Write([]byte{'\n'})
	}
	d.Flush()
	return c.Snapshot(), nil
}

// sentence handles one framed candidate sentence, '$' included, no CR/LF.
func (d *Decoder) sentence(line []byte) {
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if !checksumOK(line) {
		d.c.badChecksum.Add(1)
		return
	}
	d.valid++
	talker, typ, ok := address(line)
	switch classify(line, typ, ok) {
	case classUnknown:
		d.c.unknownType.Add(1)
		return
	case classSkip:
		d.c.sentences.Add(1)
		return
	}
	m, ok := readFast(line, talker, typ)
	if !ok {
		var err error
		if m, err = d.parseSlow(line); err != nil {
			var ns *gonmea.NotSupportedError
			if errors.As(err, &ns) {
				d.c.unknownType.Add(1)
				return
			}
			d.c.unparsable.Add(1)
			if d.debug() {
				d.log.Debug("unparsable nmea sentence", "sentence", string(line), "err", err)
			}
			return
		}
	}
	d.c.sentences.Add(1)
	d.asm.add(&m)
}

// debug reports whether debug lines are logged: their arguments cost
// allocations that a decoder without a debug log must not pay.
func (d *Decoder) debug() bool { return debugOn(d.log) }

// debugOn reports whether log takes debug lines; log may be nil.
func debugOn(log *slog.Logger) bool {
	return log != nil && log.Enabled(context.Background(), slog.LevelDebug)
}

// parseSlow parses line with go-nmea: every sentence the fast reader is
// not sure of, and in tests the reference the fast reader is held to.
func (d *Decoder) parseSlow(line []byte) (msg, error) {
	s, err := d.parser.Parse(string(line))
	if err != nil {
		return msg{}, err
	}
	return fromGoNMEA(s), nil
}
