package nmea

import (
	"bytes"
	"testing"
)

// FuzzGpsdFilter: whatever gpsd sends, in whatever pieces, the filter keeps
// exactly the lines that do not start with '{' (the NMEA) and hands each
// JSON line to the handler, bounded; nothing panics.
func FuzzGpsdFilter(f *testing.F) {
	f.Add([]byte("{\"class\":\"VERSION\",\"release\":\"3.22\"}\r\n$GPGGA,1*00\r\n{\"class\":\"DEVICES\",\"devices\":[]}\n"), uint8(7))
	f.Add([]byte("$GNRMC,,V*00\r\n{half"), uint8(1))
	f.Add([]byte("{\n{\n\n$X*00"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		var info GpsdInfo
		g := &gpsdConn{lineStart: true, onJSON: func(line []byte) {
			if len(line) > maxGpsdJSON {
				t.Fatalf("JSON line of %d bytes handed on", len(line))
			}
			info.apply(line)
		}}
		var got []byte
		step := int(cut)%17 + 1
		for i := 0; i < len(data); i += step {
			p := bytes.Clone(data[i:min(len(data), i+step)])
			got = append(got, p[:g.filter(p)]...)
		}
		var want []byte
		for _, l := range bytes.SplitAfter(data, []byte("\n")) {
			if len(l) > 0 && l[0] != '{' {
				want = append(want, l...)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("kept %q, want %q", got, want)
		}
	})
}

// FuzzATLines: a modem's output, in whatever pieces, splits into bounded
// printable lines; nothing panics.
func FuzzATLines(f *testing.F) {
	f.Add([]byte("AT+QGPS=1\r\r\n\r\n+CME ERROR: 504\r\n"), uint8(3))
	f.Add([]byte("\r\nRDY\r\n\x00\xff+QIND: SMS DONE\r\n"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		a := &atSession{}
		step := int(cut)%13 + 1
		for i := 0; i < len(data); i += step {
			a.lines(data[i:min(len(data), i+step)])
		}
		for _, l := range a.done {
			if l == "" || len(l) > maxATLine {
				t.Fatalf("line %q", l)
			}
			for _, c := range []byte(l) {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("unprintable byte in %q", l)
				}
			}
			_ = isFinal(l)
		}
	})
}
