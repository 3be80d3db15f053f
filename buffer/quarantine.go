package buffer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	berrors "go.etcd.io/bbolt/errors"
)

// isCorruption tells a damaged file from a problem of the environment
// (permissions, lock, no space, no memory) that moving the file would not fix.
func isCorruption(err error) bool {
	if errors.Is(err, berrors.ErrTimeout) {
		return false
	}
	var pe *fs.PathError
	var errno syscall.Errno
	if errors.As(err, &pe) || errors.As(err, &errno) {
		return false
	}
	return true
}

// quarantine moves a damaged database aside as NAME.corrupt-<UTC timestamp>.
func (b *Buffer) quarantine(cause error) error {
	dst := b.path + ".corrupt-" + b.now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(b.path, dst); err != nil {
		return fmt.Errorf("move damaged database aside: %w", err)
	}
	if err := syncDir(filepath.Dir(b.path)); err != nil {
		return err
	}
	b.st.Quarantined++
	b.log.Error("damaged database moved aside; starting a new one", "moved_to", dst, "cause", cause)
	return nil
}
