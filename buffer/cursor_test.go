package buffer

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A bucket of several pages whose keys are all deleted in one transaction:
// bbolt 1.5.0's Cursor.Last never returns there (a drain that acked the
// whole backlog of groups hung in the same commit's eviction); last does,
// with nothing, and still finds the last key of a bucket partly emptied.
func TestLastOnBucketEmptiedInTx(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 1000 // sub-buckets, as groups: several leaf pages
	name := []byte("g")
	if err := db.Update(func(tx *bolt.Tx) error {
		gs, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		for i := range n {
			if _, err := gs.CreateBucket(seqKey(uint64(i + 1))); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []int{10, 0} {
		err := db.Update(func(tx *bolt.Tx) error {
			gs := tx.Bucket(name)
			for i := keep; i < n; i++ {
				if err := gs.DeleteBucket(seqKey(uint64(i + 1))); err != nil {
					return err
				}
			}
			got := make(chan []byte, 1)
			go func() { k, _ := last(gs.Cursor()); got <- k }()
			select {
			case k := <-got:
				want := []byte(nil)
				if keep > 0 {
					want = seqKey(uint64(keep))
				}
				if string(k) != string(want) {
					t.Errorf("%d of %d kept: last is %x, want %x", keep, n, k, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d kept: last did not return in 10 s", keep, n)
			}
			return errRollback
		})
		if err != errRollback {
			t.Fatal(err)
		}
	}
}

var errRollback = errorString("roll back")

type errorString string

func (e errorString) Error() string { return string(e) }
