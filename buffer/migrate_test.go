package buffer

import (
	"bytes"
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
	writeOldFormat(t, path, 1, n, at)
}

// writeOldFormat is writeFormat1 for format 1 or 2, which share a layout (all records in bucket records).
func writeOldFormat(t *testing.T, path string, format uint64, n int, at time.Time) {
	t.Helper()
	updateFile(t, path, func(tx *bolt.Tx) error {
		m, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		rec, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		for k, v := range map[string]uint64{"format": format, "seq_reserved": 100_000, "seq_committed": uint64(n) + 1} {
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
	if st.Quarantined != 0 || !slices.Equal(seqsOf(rs), seqRange(1, 5)) || st.NextSeq != 100_001 {
		t.Fatalf("after the upgrade: pending %v, next %d, quarantined %d; want 1..5, 100001, 0", seqsOf(rs), st.NextSeq, st.Quarantined)
	}
	if !rs[0].Appended.Equal(old.Add(time.Second)) {
		t.Errorf("seq 1's time %v, want %v as format 1 stored it", rs[0].Appended, old.Add(time.Second))
	}
	// The caller's time an hour and three seconds on: records 1 and 2 are past MaxAge, 3..5 not.
	if _, err := b.Append(old.Add(time.Hour+3*time.Second), enc("new")); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if got := allSeqs(t, b); !slices.Equal(got, []uint64{3, 4, 5, 100_001}) {
		t.Errorf("after MaxAge on the upgraded file pending %v, want [3 4 5 100001]", got)
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

// TestUpgradeFromFormat2 opens a format-2 file holding a backlog of 3,000 records in bucket records (a tree
// of many pages): the backlog survives the upgrade to format 3, the commits that follow stage their records in
// bucket recent and move them on, and reads, acks and a restart see one ordered sequence across both buckets.
func TestUpgradeFromFormat2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	old := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 3000
	writeOldFormat(t, path, 2, n, old)

	b, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Quarantined != 0 || st.Pending != n || st.NextSeq != 100_001 {
		t.Fatalf("after the upgrade: pending %d, next %d, quarantined %d; want %d, 100001, 0", st.Pending, st.NextSeq, st.Quarantined, n)
	}
	// One record a commit: the first few stay in recent, later ones move it into records.
	var want []uint64
	for i := range 10 {
		s, err := b.Append(old.Add(time.Duration(n+i)*time.Second), fixEncoder) // 250 B: three fit inline
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
		commit(t, b)
	}
	inRecent := recentSeqs(t, b)
	if len(inRecent) == 0 || len(inRecent) == 10 {
		t.Errorf("bucket recent holds %v after 10 one-record commits: want some, not all (staged, then moved on)", inRecent)
	}
	all := append(seqRange(1, n), want...)
	if got := allSeqs(t, b); !slices.Equal(got, all) {
		t.Fatalf("pending after the upgrade and 10 commits: %d seqs, want %d in order", len(got), len(all))
	}
	newest, err := b.Newest(12)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(seqsOf(newest))); !slices.Equal(got, all[len(all)-12:]) {
		t.Errorf("Newest(12) = %v, want the last 12 of %v", got, all[len(all)-12:])
	}
	// Ack one from records and the newest, in recent; a restart sees the rest.
	b, _ = ackAndRestart(t, b, path, all, []uint64{7, want[9]})
	defer mustClose(t, b)
	if rs, err := b.Oldest(0, 3); err != nil || !slices.Equal(seqsOf(rs), []uint64{1, 2, 3}) {
		t.Errorf("Oldest(0, 3) = %v, %v; want 1 2 3", seqsOf(rs), err)
	} else {
		checkData(t, rs)
	}
}

// recentSeqs lists the seqs in bucket recent.
func recentSeqs(t *testing.T, b *Buffer) []uint64 {
	t.Helper()
	var out []uint64
	err := b.view(func(tx *bolt.Tx) error {
		rc := tx.Bucket(bucketRecent)
		if rc == nil {
			return fmt.Errorf("no bucket %q", bucketRecent)
		}
		return rc.ForEach(func(k, _ []byte) error {
			s, _ := keySeq(k)
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeFormat3 builds a format-3 file: records 1..n, the last two in bucket
// recent (inline), the rest in bucket records, no bucket groups.
func writeFormat3(t *testing.T, path string, n int, at time.Time) {
	t.Helper()
	writeOldFormat(t, path, 3, n, at)
	updateFile(t, path, func(tx *bolt.Tx) error {
		rc, err := tx.CreateBucket([]byte("recent"))
		if err != nil {
			return err
		}
		rec := tx.Bucket([]byte("records"))
		for s := n - 1; s <= n; s++ {
			k := binary.BigEndian.AppendUint64(nil, uint64(s))
			if err := rc.Put(k, bytes.Clone(rec.Get(k))); err != nil {
				return err
			}
			if err := rec.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// ackAndRestart acks gone, commits, closes b and opens path again: the
// seqs of want but gone are pending, in order. It returns the new buffer
// and those seqs.
func ackAndRestart(t *testing.T, b *Buffer, path string, want, gone []uint64) (*Buffer, []uint64) {
	t.Helper()
	if err := b.Ack(gone...); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	mustClose(t, b)
	b, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	left := slices.DeleteFunc(slices.Clone(want), func(s uint64) bool { return slices.Contains(gone, s) })
	if got := allSeqs(t, b); !slices.Equal(got, left) {
		t.Errorf("after acks and a restart: %d seqs pending, want %d", len(got), len(left))
	}
	return b, left
}

// groupSeqs lists the seqs of each group, in key order.
func groupSeqs(t *testing.T, b *Buffer) [][]uint64 {
	t.Helper()
	var out [][]uint64
	err := b.view(func(tx *bolt.Tx) error {
		gs := tx.Bucket(bucketGroups)
		if gs == nil {
			return fmt.Errorf("no bucket %q", bucketGroups)
		}
		return gs.ForEach(func(gk, _ []byte) error {
			recs, err := decodeGroup(gk, groupValue(gs, gk))
			if err != nil {
				return err
			}
			var g []uint64
			for _, r := range recs {
				s, _ := keySeq(r.key[:])
				g = append(g, s)
			}
			out = append(out, g)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUpgradeFromFormat3 opens a format-3 file with its backlog in records
// and recent: the backlog survives the upgrade to format 4; a commit of many
// records becomes a group (taking recent's records with it), a few records a
// commit go to recent and records as before, so records and groups
// interleave; reads, acks in all three places and a restart see one ordered
// sequence, and a group whose records are all acked is deleted.
func TestUpgradeFromFormat3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	old := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 3000
	writeFormat3(t, path, n, old)

	b, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Quarantined != 0 || st.Pending != n || st.NextSeq != 100_001 {
		t.Fatalf("after the upgrade: pending %d, next %d, quarantined %d; want %d, 100001, 0", st.Pending, st.NextSeq, st.Quarantined, n)
	}
	at := old.Add(n * time.Second)
	appendN := func(k int) []uint64 {
		var s []uint64
		for range k {
			at = at.Add(10 * time.Millisecond)
			seq, err := b.Append(at, fixEncoder)
			if err != nil {
				t.Fatal(err)
			}
			s = append(s, seq)
		}
		commit(t, b)
		return s
	}
	big := appendN(100)                        // a group, with recent's 2999 and 3000
	small := append(appendN(1), appendN(4)...) // recent, then moved into records
	big2 := appendN(100)                       // a group again
	want := append(append(append(seqRange(1, n), big...), small...), big2...)
	gs := groupSeqs(t, b)
	if len(gs) != 2 || !slices.Equal(gs[0], append([]uint64{n - 1, n}, big...)) || !slices.Equal(gs[1], big2) {
		t.Fatalf("groups after the commits: %v; want two: recent's 2 with the first 100, then the second 100", gs)
	}
	if got := allSeqs(t, b); !slices.Equal(got, want) {
		t.Fatalf("pending after the upgrade: %d seqs, want %d in order", len(got), len(want))
	}
	newest, err := b.Newest(110)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(seqsOf(newest))); !slices.Equal(got, want[len(want)-110:]) {
		t.Errorf("Newest(110) = %v, want the last 110", got)
	}
	checkData(t, newest)
	// Ack one in records, one in recent's old records (now the first
	// group), one in the middle of a group and one from records again.
	b, left := ackAndRestart(t, b, path, want, []uint64{7, n, big[50], small[3]})
	defer mustClose(t, b)
	if rs, err := b.Oldest(n-2, 3); err != nil || !slices.Equal(seqsOf(rs), []uint64{n - 1, big[0], big[1]}) {
		t.Errorf("Oldest(%d, 3) = %v, %v; want %d %d %d, across records and a group", n-2, seqsOf(rs), err, n-1, big[0], big[1])
	} else {
		checkData(t, rs)
	}
	// Ack the whole first group: its bucket goes.
	var rest []uint64
	for _, s := range left {
		if s >= n-1 && s <= big[len(big)-1] {
			rest = append(rest, s)
		}
	}
	if err := b.Ack(rest...); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if gs := groupSeqs(t, b); len(gs) != 1 || !slices.Equal(gs[0], big2) {
		t.Errorf("groups after acking all of the first: %d groups, want only the second", len(gs))
	}
}
