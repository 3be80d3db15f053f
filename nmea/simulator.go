package nmea

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// Simulator writes realistic NMEA of a truck in town: straight segments at
// 30..90 km/h, slowing for turns, stopping at traffic lights, with positions
// that move consistently with speed and course. Each epoch is RMC, GGA, two
// GSA (GPS, GLONASS) and GSV (GP and GL) with valid checksums and GN/GP/GL
// talkers, like a u-blox M8.
//
// Output is deterministic given Seed, Start, Rate, Lat and Lon. The zero
// value is usable; set fields before the first call and do not change them
// afterwards. A Simulator is not safe for concurrent use: it keeps a cursor
// so that sequential Epoch calls cost O(1) each (going back restarts from 0).
type Simulator struct {
	Rate     float64   // epochs per second; 0 means 1
	Start    time.Time // time of epoch 0; zero means now, truncated to the epoch period (Run always uses now)
	Lat, Lon float64   // start position; both 0 means Hamburg, Speicherstadt
	Seed     int64     // route and satellite sky; same seed, same drive

	// Baud, when set and Run writes to a terminal (a pty master), is the
	// receiver's line rate: before each epoch Run reads the rate the reader
	// set on the line, and if it differs writes as many garbage bytes
	// instead, as a reader at the wrong rate would see. 0: always NMEA.
	Baud int

	ready  bool
	start  time.Time
	period time.Duration
	cur    simState
	sky    []simSat
}

const (
	earthRadius = 6371008.8 // m, mean radius: plenty for a few km of town
	accel       = 1.2       // m/s², a loaded truck
	decel       = 2.0       // m/s², comfortable braking
	turnSpeed   = 18 / 3.6  // m/s through a junction
	defaultLat  = 53.54390
	defaultLon  = 9.99090
)

type simPhase uint8

const (
	phaseCruise simPhase = iota // towards target speed, remain = metres to the segment end
	phaseStop                   // braking to a red light
	phaseWait                   // standing, remain = seconds
	phaseTurn                   // remain = degrees still to turn (signed)
)

type simState struct {
	i        int
	lat, lon float64 // degrees
	speed    float64 // m/s
	heading  float64 // degrees true
	target   float64 // m/s
	phase    simPhase
	remain   float64
	next     simPhase // what ends the current segment: phaseStop or phaseTurn
	turn     float64  // degrees of that turn, signed
	rng      *rand.Rand
}

type simSat struct {
	prn        int
	glonass    bool
	elev0, az0 float64
	elevW, azW float64 // slow drift per second
	snrBias    float64
	phase      float64
}

func (s *Simulator) setup() {
	if s.ready {
		return
	}
	rate := s.Rate
	if rate <= 0 || math.IsNaN(rate) {
		rate = 1
	}
	s.period = time.Duration(float64(time.Second) / rate)
	s.start = s.Start
	if s.start.IsZero() {
		s.start = time.Now().UTC().Truncate(s.period)
	}
	s.start = s.start.UTC()
	rng := rand.New(rand.NewPCG(uint64(s.Seed), 0x5eed))
	s.sky = s.sky[:0]
	for k := 0; k < 20; k++ {
		sat := simSat{prn: 1 + k*3%32 + k/11, glonass: k >= 12}
		if sat.glonass {
			sat.prn = 65 + (k-12)*3
		}
		sat.elev0 = 5 + rng.Float64()*80
		sat.az0 = rng.Float64() * 360
		sat.elevW = (rng.Float64() - 0.5) * 0.004
		sat.azW = (rng.Float64() - 0.5) * 0.008
		sat.snrBias = rng.Float64()*8 - 4
		sat.phase = rng.Float64() * 2 * math.Pi
		s.sky = append(s.sky, sat)
	}
	s.cur = s.initial()
	s.ready = true
}

func (s *Simulator) initial() simState {
	st := simState{lat: s.Lat, lon: s.Lon, rng: rand.New(rand.NewPCG(uint64(s.Seed), 0x7a11))}
	if st.lat == 0 && st.lon == 0 {
		st.lat, st.lon = defaultLat, defaultLon
	}
	st.heading = math.Round(st.rng.Float64()*36) * 10
	st.newSegment()
	return st
}

// newSegment starts a straight stretch with a new speed limit.
func (st *simState) newSegment() {
	limits := []float64{30, 50, 50, 50, 70, 90}
	st.target = (limits[st.rng.IntN(len(limits))] - st.rng.Float64()*5) / 3.6
	st.phase = phaseCruise
	st.remain = 150 + st.rng.Float64()*1200
	switch r := st.rng.Float64(); {
	case r < 0.35:
		st.next, st.turn = phaseStop, 0
	case r < 0.85:
		st.next = phaseTurn
		st.turn = (60 + st.rng.Float64()*50) * float64(1-2*st.rng.IntN(2))
	default:
		st.next = phaseTurn // a bend: small angle, no slowing
		st.turn = (5 + st.rng.Float64()*20) * float64(1-2*st.rng.IntN(2))
	}
}

// step advances the truck by dt seconds.
func (st *simState) step(dt float64) {
	switch st.phase {
	case phaseCruise:
		switch {
		case st.speed < st.target:
			st.speed = math.Min(st.target, st.speed+accel*dt)
		case st.speed > st.target:
			st.speed = math.Max(st.target, st.speed-decel*dt)
		}
		// Brake so as to arrive at the light stopped, or at the junction
		// at turning speed.
		brake := st.speed * st.speed / (2 * decel)
		if st.next == phaseTurn && math.Abs(st.turn) > 30 {
			brake = (st.speed*st.speed - turnSpeed*turnSpeed) / (2 * decel)
		}
		if st.remain <= brake || st.remain <= 0 {
			st.phase, st.remain = st.next, st.turn
		}
	case phaseStop:
		st.speed = math.Max(0, st.speed-decel*dt)
		if st.speed == 0 {
			st.phase = phaseWait
			st.remain = 10 + st.rng.Float64()*40
		}
	case phaseWait:
		st.remain -= dt
		if st.remain <= 0 {
			st.newSegment()
		}
		return
	case phaseTurn:
		if math.Abs(st.remain) > 30 && st.speed > turnSpeed {
			st.speed = math.Max(turnSpeed, st.speed-decel*dt) // slow before a real turn
			break
		}
		rate := 12 * dt // degrees per step
		if math.Abs(st.remain) <= rate {
			st.heading += st.remain
			st.newSegment()
		} else {
			st.heading += math.Copysign(rate, st.remain)
			st.remain -= math.Copysign(rate, st.remain)
		}
		st.heading = math.Mod(st.heading+360, 360)
	}
	d := st.speed * dt
	if st.phase == phaseCruise {
		st.remain -= d
	}
	h := st.heading * math.Pi / 180
	lat := st.lat * math.Pi / 180
	st.lat += d * math.Cos(h) / earthRadius * 180 / math.Pi
	st.lon += d * math.Sin(h) / (earthRadius * math.Cos(lat)) * 180 / math.Pi
}

// seek moves the cursor to epoch i.
func (s *Simulator) seek(i int) *simState {
	s.setup()
	if i < s.cur.i {
		s.cur = s.initial()
	}
	dt := s.period.Seconds()
	for s.cur.i < i {
		s.cur.step(dt)
		s.cur.i++
	}
	return &s.cur
}

// Fix returns the simulated truth of epoch i: what a perfect decoder makes of
// Epoch(i), up to the NMEA text's rounding (1e-5 minutes of arc, 1e-3 knots,
// 0.01 degree of course).
func (s *Simulator) Fix(i int) Fix {
	st := s.seek(i)
	f := Fix{
		Time:      s.start.Add(time.Duration(i) * s.period),
		Lat:       st.lat,
		Lon:       st.lon,
		SpeedKmh:  st.speed * 3.6,
		CourseDeg: st.heading,
		AltM:      s.alt(i),
		Quality:   1,
	}
	used, hdop := s.usedSats(f.Time)
	f.Sats, f.HDOP = len(used), hdop
	if st.speed*3.6 < 0.5 {
		f.CourseDeg = math.NaN() // a standing receiver has no course
	}
	return f
}

func (s *Simulator) alt(i int) float64 {
	return 12 + 3*math.Sin(float64(i)*s.period.Seconds()/90)
}

type satView struct {
	sat      simSat
	elev, az int
	snr      int
}

func (s *Simulator) view(t time.Time) []satView {
	sec := float64(t.Unix() % 86400)
	var out []satView
	for _, sat := range s.sky {
		e := sat.elev0 + sat.elevW*sec + 15*math.Sin(sec/7200+sat.phase)
		e = math.Mod(math.Abs(e), 180)
		if e > 90 {
			e = 180 - e
		}
		if e < 3 {
			continue
		}
		az := math.Mod(sat.az0+sat.azW*sec+360*4, 360)
		snr := 22 + e/4 + sat.snrBias
		out = append(out, satView{sat, int(e), int(az), int(snr)})
	}
	return out
}

func (s *Simulator) usedSats(t time.Time) ([]satView, float64) {
	var used []satView
	for _, v := range s.view(t) {
		if v.elev >= 10 && len(used) < 24 {
			used = append(used, v)
		}
	}
	hdop := math.Round((0.6+6/float64(len(used)+1))*100) / 100
	return used, hdop
}

// Epoch returns the NMEA bytes (CRLF lines) of epoch i, without pacing.
func (s *Simulator) Epoch(i int) []byte {
	f := s.Fix(i)
	var b strings.Builder
	tod := f.Time.Format("150405") + fmt.Sprintf(".%02d", f.Time.Nanosecond()/1e7)
	lat, ns := nmeaDeg(f.Lat, 2, "N", "S")
	lon, ew := nmeaDeg(f.Lon, 3, "E", "W")
	course := ""
	if !math.IsNaN(f.CourseDeg) {
		course = fmt.Sprintf("%.2f", f.CourseDeg)
	}
	knots := f.SpeedKmh / 1.852
	sentence(&b, "GNRMC,%s,A,%s,%s,%s,%s,%.3f,%s,%s,,,A", tod, lat, ns, lon, ew, knots, course, f.Time.Format("020106"))
	sentence(&b, "GNGGA,%s,%s,%s,%s,%s,1,%02d,%.2f,%.1f,M,41.2,M,,", tod, lat, ns, lon, ew, f.Sats, f.HDOP, f.AltM)
	used, _ := s.usedSats(f.Time)
	for _, glo := range []bool{false, true} {
		fields := make([]string, 0, 12)
		for _, v := range used {
			if v.sat.glonass == glo && len(fields) < 12 {
				fields = append(fields, fmt.Sprintf("%02d", v.sat.prn))
			}
		}
		for len(fields) < 12 {
			fields = append(fields, "")
		}
		sentence(&b, "GNGSA,A,3,%s,%.2f,%.2f,%.2f", strings.Join(fields, ","), f.HDOP*1.6, f.HDOP, f.HDOP*1.3)
	}
	view := s.view(f.Time)
	for _, glo := range []bool{false, true} {
		talker := "GP"
		if glo {
			talker = "GL"
		}
		var sats []satView
		for _, v := range view {
			if v.sat.glonass == glo {
				sats = append(sats, v)
			}
		}
		msgs := max(1, (len(sats)+3)/4)
		for m := 0; m < msgs; m++ {
			line := fmt.Sprintf("%sGSV,%d,%d,%02d", talker, msgs, m+1, len(sats))
			for _, v := range sats[m*4 : min(len(sats), m*4+4)] {
				line += fmt.Sprintf(",%02d,%02d,%03d,%02d", v.sat.prn, v.elev, v.az, v.snr)
			}
			sentence(&b, "%s", line)
		}
	}
	return []byte(b.String())
}

// sentence appends '$', the formatted body, its checksum and CRLF.
func sentence(b *strings.Builder, format string, args ...any) {
	body := fmt.Sprintf(format, args...)
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	fmt.Fprintf(b, "$%s*%02X\r\n", body, sum)
}

// nmeaDeg formats decimal degrees as NMEA (d)ddmm.mmmmm and a hemisphere.
func nmeaDeg(v float64, degDigits int, pos, neg string) (string, string) {
	h := pos
	if v < 0 {
		h, v = neg, -v
	}
	deg := math.Floor(v)
	min := math.Round((v-deg)*60*1e5) / 1e5
	if min >= 60 {
		deg, min = deg+1, 0
	}
	return fmt.Sprintf("%0*d%08.5f", degDigits, int(deg), min), h
}

// Run writes epochs to w paced at Rate in real time, stamped with the
// current time, until ctx ends; it returns ctx.Err(), or the error of w.
// If w has SetWriteDeadline (a pty master does) an epoch nobody reads within
// its period is dropped, as a receiver would; otherwise a blocked write
// blocks Run until w is closed.
func (s *Simulator) Run(ctx context.Context, w io.Writer) error {
	sim := &Simulator{Rate: s.Rate, Lat: s.Lat, Lon: s.Lon, Seed: s.Seed}
	sim.setup()
	type deadliner interface{ SetWriteDeadline(time.Time) error }
	dl, _ := w.(deadliner)
	tty, _ := w.(*os.File)
	noise := rand.New(rand.NewPCG(uint64(s.Seed), 0xbad))
	for i := 0; ; i++ {
		at := sim.start.Add(time.Duration(i) * sim.period)
		if wait := time.Until(at); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		if dl != nil && dl.SetWriteDeadline(at.Add(sim.period)) != nil {
			dl = nil // not pollable: plain blocking writes
		}
		out := sim.Epoch(i)
		if s.Baud > 0 && tty != nil {
			if rate, err := ttySpeed(tty); err == nil && rate != s.Baud {
				for k := range out {
					out[k] = byte(noise.Uint32())
				}
			}
		}
		if _, err := w.Write(out); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("simulate: write epoch %d: %w", i, err)
		}
	}
}
