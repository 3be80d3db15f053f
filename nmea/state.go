package nmea

import (
	"slices"
	"time"
)

// Link states of a Receiver's source, as [Receiver.Link] reports them.
const (
	LinkStarting    = "starting"    // Run has not tried to open the source yet
	LinkOpen        = "open"        // the device is open, or gpsd connected
	LinkUnavailable = "unavailable" // the last open or session failed; Run retries with backoff
)

// LinkState is what a Receiver's source looks like from outside: the serial
// device or the gpsd connection, and the modem commands last sent.
type LinkState struct {
	Source    string    `json:"source"`               // "serial" or "gpsd"
	Address   string    `json:"address"`              // the device path, or gpsd's HOST:PORT
	State     string    `json:"state"`                // LinkStarting, LinkOpen or LinkUnavailable
	Since     time.Time `json:"since,omitzero"`       // when State was entered
	LastError string    `json:"last_error,omitempty"` // why the last open or session failed
	Gpsd      *GpsdInfo `json:"gpsd,omitempty"`       // what gpsd said, with a gpsd source
	AT        *ATState  `json:"at,omitempty"`         // the modem's AT port, when commands are configured
}

// ATState is the outcome of the last time the modem's commands were sent.
type ATState struct {
	Device  string     `json:"device"`
	Sent    time.Time  `json:"sent,omitzero"`   // when they were last sent
	Why     string     `json:"why,omitempty"`   // "open" (the receiver opened) or "silent" (no sentence for SilenceAfter)
	Rounds  uint64     `json:"rounds"`          // times the commands were sent since Run started
	Results []ATResult `json:"results"`         // one per command of the last round
	Error   string     `json:"error,omitempty"` // the AT port could not be opened
}

// Link returns the source's state. Safe to call while Run runs.
func (r *Receiver) Link() LinkState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	if st.State == "" {
		st = r.initialState()
	}
	if st.Gpsd != nil {
		g := *st.Gpsd
		g.Devices = slices.Clone(g.Devices)
		st.Gpsd = &g
	}
	if st.AT != nil {
		a := *st.AT
		a.Results = slices.Clone(a.Results)
		st.AT = &a
	}
	return st
}

func (r *Receiver) initialState() LinkState {
	st := LinkState{Source: "serial", Address: r.Device, State: LinkStarting}
	if r.Gpsd != "" {
		st.Source, st.Address, st.Gpsd = "gpsd", r.Gpsd, &GpsdInfo{}
	}
	if r.AT != nil {
		st.AT = &ATState{Device: r.AT.Device}
	}
	return st
}

// update changes the state under the lock.
func (r *Receiver) update(fn func(st *LinkState)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.State == "" {
		r.state = r.initialState()
	}
	fn(&r.state)
}

// setState records a change of the link's state; the same state again keeps
// its Since.
func (r *Receiver) setState(state string, err error) {
	r.update(func(st *LinkState) {
		if st.State != state {
			st.State, st.Since = state, time.Now()
		}
		if err != nil {
			st.LastError = err.Error()
		}
	})
}
