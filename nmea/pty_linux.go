package nmea

import (
	"errors"
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// OpenPTY creates a pseudo-terminal in raw mode (no echo, no line editing,
// no CR/LF translation) and returns its master, to write NMEA into, and the
// path of its slave device, which the agent opens like a serial port.
//
// If link is not empty, a symlink at link points to the slave (a stale link
// or file there is replaced, a directory is not), like a udev rule's stable
// name. closeFn closes the master and the slave and removes the link; after
// it, a reader of the slave gets an error, as if the receiver were unplugged.
//
// The slave stays open on our side until closeFn, so writes to the master
// are buffered by the kernel (about 4 KiB) until a reader attaches, then block:
// a reader that attaches late first reads up to 4 KiB of older sentences.
func OpenPTY(link string) (master *os.File, path string, closeFn func() error, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, "", nil, fmt.Errorf("open pty: %w", err)
	}
	fail := func(err error) (*os.File, string, func() error, error) {
		m.Close()
		s.Close()
		return nil, "", nil, err
	}
	if err := makeRaw(int(s.Fd())); err != nil {
		return fail(fmt.Errorf("open pty %s: raw mode: %w", s.Name(), err))
	}
	path = s.Name()
	if link != "" {
		if fi, err := os.Lstat(link); err == nil {
			if fi.IsDir() {
				return fail(fmt.Errorf("open pty: link %s: is a directory", link))
			}
			if err := os.Remove(link); err != nil {
				return fail(fmt.Errorf("open pty: remove stale link: %w", err))
			}
		}
		if err := os.Symlink(path, link); err != nil {
			return fail(fmt.Errorf("open pty: %w", err))
		}
	}
	closeFn = func() error {
		var errs []error
		if link != "" {
			// Remove the link only if it still points to our slave: a newer
			// pty may already own the name.
			if dst, err := os.Readlink(link); err == nil && dst == path {
				if err := os.Remove(link); err != nil {
					errs = append(errs, fmt.Errorf("close pty: %w", err))
				}
			}
		}
		if err := m.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("close pty master: %w", err))
		}
		if err := s.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("close pty slave: %w", err))
		}
		return errors.Join(errs...)
	}
	return m, path, closeFn, nil
}

// makeRaw is cfmakeraw(3) on fd.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// ttySpeed returns the output baud rate set on the terminal f. On a pty
// master it is the rate the reader set on the slave: Linux keeps one
// termios per pty pair, so the simulator can tell what the reader expects.
func ttySpeed(f *os.File) (int, error) {
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return 0, fmt.Errorf("get line speed: %w", err)
	}
	code := t.Cflag & (unix.CBAUD | unix.CBAUDEX)
	for rate, c := range speedCodes {
		if c == code {
			return rate, nil
		}
	}
	return 0, fmt.Errorf("get line speed: unknown speed code %#o", code)
}

var speedCodes = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600, 19200: unix.B19200,
	38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400,
	460800: unix.B460800, 921600: unix.B921600,
}
