package buffer

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeFormat1 builds a buffer file as format 1 wrote it: meta/format 1, and records 1..n whose values are
// version byte 1 and the gateway's clock at Append (here at, one second apart), then "seq:old". The run ended
// in a crash (no clean_next) with seqs reserved up to 100.
func writeFormat1(t *testing.T, path string, n int, at time.Time) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		rec, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		for k, v := range map[string]uint64{"format": 1, "seq_reserved": 100, "seq_committed": uint64(n) + 1} {
			if err := m.Put([]byte(k), binary.BigEndian.AppendUint64(nil, v)); err != nil {
				return err
			}
		}
		for s := 1; s <= n; s++ {
			v := []byte{1}
			v = binary.BigEndian.AppendUint64(v, uint64(at.Add(time.Duration(s)*time.Second).UnixNano()))
			v = fmt.Appendf(v, "%d:old", s)
			if err := rec.Put(binary.BigEndian.AppendUint64(nil, uint64(s)), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeFromFormat1 opens a format-1 file: the backlog, its times and the seq state survive the upgrade,
// the file is format 2 afterwards, and MaxAge ages the old records by their stored times against the caller's.
func TestUpgradeFromFormat1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	old := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	writeFormat1(t, path, 5, old)

	ro, err := OpenReadOnly(path, quietOptions())
	if err != nil {
		t.Fatalf("OpenReadOnly of a format-1 file: %v", err)
	}
	if got := allSeqs(t, ro); !slices.Equal(got, seqRange(1, 5)) {
		t.Errorf("read-only view of a format-1 file: %v, want 1..5", got)
	}
	mustClose(t, ro)

	opts := testOptions(t)
	opts.MaxAge = time.Hour
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	rs, err := b.Oldest(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	checkData(t, rs)
	if st.Quarantined != 0 || !slices.Equal(seqsOf(rs), seqRange(1, 5)) || st.NextSeq != 101 {
		t.Fatalf("after the upgrade: pending %v, next %d, quarantined %d; want 1..5, 101, 0", seqsOf(rs), st.NextSeq, st.Quarantined)
	}
	if !rs[0].Appended.Equal(old.Add(time.Second)) {
		t.Errorf("seq 1's time %v, want %v as format 1 stored it", rs[0].Appended, old.Add(time.Second))
	}
	// The caller's time an hour and three seconds on: records 1 and 2 are past MaxAge, 3..5 not.
	if _, err := b.Append(old.Add(time.Hour+3*time.Second), enc("new")); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if got := allSeqs(t, b); !slices.Equal(got, []uint64{3, 4, 5, 101}) {
		t.Errorf("after MaxAge on the upgraded file pending %v, want [3 4 5 101]", got)
	}
	mustClose(t, b)

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if f, _ := getU64(tx.Bucket(bucketMeta).Get(keyFormat)); f != formatVersion {
			t.Errorf("meta/format %d after the upgrade, want %d", f, formatVersion)
		}
		return nil
	})
}
