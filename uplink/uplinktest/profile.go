package uplinktest

import (
	"fmt"
	"strings"
	"time"
)

// Profile is the shape of an emulated link: a one-way delay and a
// bottleneck rate each way, and the bottleneck's buffer.
type Profile struct {
	// Name names the profile in logs and figures.
	Name string
	// UpDelay and DownDelay are the one-way delays, truck to AWS and back;
	// their sum is the round trip a request and its reply pay on top of
	// serialisation.
	UpDelay, DownDelay time.Duration
	// UpRate and DownRate are the bottleneck rates in bits per second,
	// shared by every connection of the link; 0 means unlimited.
	UpRate, DownRate int64
	// Queue is the bottleneck's buffer per direction in bytes: once that
	// much waits to be serialised, the link stops reading and TCP's flow
	// control pushes back on the sender, as on a full radio buffer. 0 means
	// DefaultQueue.
	Queue int
}

// DefaultQueue is a bottleneck buffer of 64 KiB: 2 s at 256 kbit/s, as deep
// as the bufferbloated queues of cellular modems, and small enough that a
// sender's own socket buffer, not the emulator, holds the rest.
const DefaultQueue = 64 << 10

// RTT is the round trip the profile adds, serialisation aside.
func (p Profile) RTT() time.Duration { return p.UpDelay + p.DownDelay }

func (p Profile) String() string {
	return fmt.Sprintf("%s (rtt %v, up %s, down %s)", p.Name, p.RTT(), rate(p.UpRate), rate(p.DownRate))
}

func rate(bps int64) string {
	switch {
	case bps <= 0:
		return "unlimited"
	case bps%1_000_000 == 0:
		return fmt.Sprintf("%d Mbit/s", bps/1_000_000)
	default:
		return fmt.Sprintf("%g kbit/s", float64(bps)/1000)
	}
}

// Loopback is no shaping at all: what the tests measured before links had
// a shape.
func Loopback() Profile { return Profile{Name: "loopback"} }

// LTE is a good cellular link: 60 ms round trip, 5 Mbit/s up, 20 Mbit/s
// down.
func LTE() Profile {
	return Profile{Name: "lte", UpDelay: 30 * time.Millisecond, DownDelay: 30 * time.Millisecond,
		UpRate: 5_000_000, DownRate: 20_000_000}
}

// Poor is the edge of coverage: 300 ms round trip, 256 kbit/s up, 1 Mbit/s
// down.
func Poor() Profile {
	return Profile{Name: "poor", UpDelay: 150 * time.Millisecond, DownDelay: 150 * time.Millisecond,
		UpRate: 256_000, DownRate: 1_000_000}
}

// ParseProfile returns the profile named name: loopback, lte or poor.
func ParseProfile(name string) (Profile, error) {
	for _, p := range []Profile{Loopback(), LTE(), Poor()} {
		if strings.EqualFold(name, p.Name) {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("parse profile %q: want loopback, lte or poor", name)
}

// serialise is how long n bytes take at bps bits per second.
func serialise(n int, bps int64) time.Duration {
	if bps <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 8 * int64(time.Second) / bps)
}
