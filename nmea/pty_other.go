//go:build !linux

package nmea

import (
	"fmt"
	"os"
)

// OpenPTY is only implemented on Linux, where the agent runs.
func OpenPTY(link string) (master *os.File, path string, closeFn func() error, err error) {
	return nil, "", nil, fmt.Errorf("open pty: %w", errNoPTY)
}

func ttySpeed(f *os.File) (int, error) {
	return 0, fmt.Errorf("get line speed: %w", errNoPTY)
}
