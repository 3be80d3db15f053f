//go:build !linux

package nmea

import (
	"errors"
	"os"
)

// OpenPTY is only implemented on Linux, where the agent runs.
func OpenPTY(link string) (master *os.File, path string, closeFn func() error, err error) {
	return nil, "", nil, errors.New("open pty: not supported on this system")
}

func ttySpeed(f *os.File) (int, error) {
	return 0, errors.New("get line speed: not supported on this system")
}
