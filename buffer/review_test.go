package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestGroupsModel drives a buffer through random commits of a few or many
// records (recent, records and groups interleaved), acks of what it read,
// MaxBytes and MaxAge evictions, clean restarts and read-only opens, and
// after each step compares it with a model: the pending seqs ascend and are
// what was appended minus what was acked and what the drop counters say was
// evicted (oldest first, never an acked one read again), and Stats' pending
// count, bytes and oldest time agree with the records read.
func TestGroupsModel(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { groupsModel(t, seed) })
	}
}

type modelRec struct {
	at   time.Time
	size int
}

func groupsModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	path := filepath.Join(t.TempDir(), "buffer.db")
	opts := quietOptions()
	opts.MaxBytes = 400_000
	opts.MaxAge = 10 * time.Minute
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	model := map[uint64]modelRec{}
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var dropped uint64
	committed := true // Stats' oldest is exact from one commit to the next acks
	check := func(step int, what string) {
		t.Helper()
		rs, err := b.Oldest(0, 1<<30)
		if err != nil {
			t.Fatalf("step %d (%s): Oldest: %v", step, what, err)
		}
		checkData(t, rs)
		got := seqsOf(rs)
		if !slices.IsSorted(got) {
			t.Fatalf("step %d (%s): pending seqs out of order", step, what)
		}
		var bytes int64
		for _, r := range rs {
			m, ok := model[r.Seq]
			if !ok {
				t.Fatalf("step %d (%s): seq %d read, but it was acked or dropped", step, what, r.Seq)
			}
			if len(r.Data) != m.size || !r.Appended.Equal(m.at) {
				t.Fatalf("step %d (%s): seq %d has %d B at %v, want %d B at %v", step, what, r.Seq, len(r.Data), r.Appended, m.size, m.at)
			}
			bytes += int64(len(r.Data))
		}
		st := b.Stats()
		nowDropped := st.DroppedMaxBytes + st.DroppedMaxAge
		var gone []uint64
		for s := range model {
			if _, found := slices.BinarySearch(got, s); !found {
				gone = append(gone, s)
			}
		}
		slices.Sort(gone)
		if uint64(len(gone)) != nowDropped-dropped {
			t.Fatalf("step %d (%s): %d records vanished (%v...), drop counters moved by %d", step, what, len(gone), gone[:min(len(gone), 5)], nowDropped-dropped)
		}
		if len(gone) > 0 && len(got) > 0 && gone[len(gone)-1] > got[0] && st.DroppedMaxAge == 0 {
			t.Fatalf("step %d (%s): seq %d dropped while %d, older, is kept", step, what, gone[len(gone)-1], got[0])
		}
		for _, s := range gone {
			delete(model, s)
		}
		dropped = nowDropped
		if st.Pending != len(got) || st.PendingBytes != bytes {
			t.Fatalf("step %d (%s): Stats pending %d (%d B), read %d (%d B)", step, what, st.Pending, st.PendingBytes, len(got), bytes)
		}
		if committed && len(rs) > 0 && !st.OldestAppended.Equal(rs[0].Appended) {
			t.Fatalf("step %d (%s): Stats oldest %v, oldest read %v (seq %d)", step, what, st.OldestAppended, rs[0].Appended, rs[0].Seq)
		}
	}
	for step := range 300 {
		what := ""
		switch r := rng.IntN(20); {
		case r < 8: // a commit of a few or of many records
			n := 1 + rng.IntN(4)
			switch rng.IntN(6) {
			case 0, 1, 2:
				n = 20 + rng.IntN(300)
			case 3: // more than groupMax: several groups in one commit
				n = 400 + rng.IntN(800)
			}
			what = fmt.Sprintf("commit %d", n)
			for range n {
				at = at.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
				size := 20 + rng.IntN(300)
				seq, err := b.Append(at, func(s uint64) ([]byte, error) {
					d := fmt.Sprintf("%d:", s)
					return []byte(d + strings.Repeat("x", max(size-len(d), 0))), nil
				})
				if err != nil {
					t.Fatal(err)
				}
				d := fmt.Sprintf("%d:", seq)
				model[seq] = modelRec{at: at, size: len(d) + max(size-len(d), 0)}
			}
			commit(t, b)
		case r < 14: // ack some of what a read returns
			rs, err := b.Oldest(uint64(rng.IntN(int(b.Stats().NextSeq))), 1+rng.IntN(400))
			if err != nil {
				t.Fatal(err)
			}
			var acks []uint64
			for _, r := range rs {
				if rng.IntN(3) > 0 {
					acks = append(acks, r.Seq)
					delete(model, r.Seq)
				}
			}
			what = fmt.Sprintf("ack %d of %d", len(acks), len(rs))
			if err := b.Ack(acks...); err != nil {
				t.Fatal(err)
			}
			committed = rng.IntN(2) == 0
			if committed {
				commit(t, b)
			}
		case r < 16: // a clean restart
			what = "restart"
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			ro, err := OpenReadOnly(path, opts)
			if err != nil {
				t.Fatalf("step %d: OpenReadOnly: %v", step, err)
			}
			rs, err := ro.Oldest(0, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			if st := ro.Stats(); st.Pending != len(rs) || len(rs) != len(model) {
				t.Fatalf("step %d: read-only open: Stats pending %d, read %d, model %d", step, st.Pending, len(rs), len(model))
			}
			ro.Close()
			if b, err = Open(path, opts); err != nil {
				t.Fatal(err)
			}
			dropped = 0
		case r < 18: // a crash right after a commit (nothing in the tail)
			what = "crash after commit"
			commit(t, b)
			crash(t, b)
			if b, err = Open(path, opts); err != nil {
				t.Fatal(err)
			}
			dropped = 0
		case r < 19: // a compaction, with a commit of acks and a group during its copy
			rs, err := b.Oldest(0, 200)
			if err != nil {
				t.Fatal(err)
			}
			var acks []uint64
			for _, r := range rs {
				if rng.IntN(4) == 0 {
					acks = append(acks, r.Seq)
				}
			}
			n := 1 + rng.IntN(200)
			what = fmt.Sprintf("compaction, %d acks and %d appends during its copy", len(acks), n)
			type appended struct {
				seq uint64
				at  time.Time
			}
			var during []appended
			done := make(chan error, 1)
			var once bool
			b.compactHook = func() {
				if once {
					return
				}
				once = true
				go func() {
					if err := b.Ack(acks...); err != nil {
						done <- err
						return
					}
					for range n {
						at = at.Add(10 * time.Millisecond)
						s, err := b.Append(at, enc("during"))
						if err != nil {
							done <- err
							return
						}
						during = append(during, appended{s, at})
					}
					done <- b.Commit()
				}()
			}
			if err := b.compact(context.Background()); err != nil {
				t.Fatalf("step %d: compact: %v", step, err)
			}
			b.compactHook = nil
			if !once {
				t.Fatalf("step %d: the compaction's copy never called its hook", step)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for _, s := range acks {
				delete(model, s)
			}
			for _, d := range during {
				model[d.seq] = modelRec{at: d.at, size: len(fmt.Sprintf("%d:during", d.seq))}
			}
		default: // time jumps: MaxAge evicts the oldest
			what = "age"
			at = at.Add(time.Duration(rng.IntN(8)) * time.Minute)
			seq, err := b.Append(at, enc("age"))
			if err != nil {
				t.Fatal(err)
			}
			model[seq] = modelRec{at: at, size: len(fmt.Sprintf("%d:age", seq))}
			commit(t, b)
		}
		check(step, what)
		committed = true
		if st := b.Stats(); st.Quarantined != 0 || st.DroppedInvalid != 0 {
			t.Fatalf("step %d (%s): quarantined %d, invalid %d", step, what, st.Quarantined, st.DroppedInvalid)
		}
	}
}

// groupBacklogFile writes n fixes of 250 B to a new buffer at path in
// commits of 100 (groups) and 2 more (recent), and stops it cleanly.
func groupBacklogFile(t *testing.T, path string, n int) {
	t.Helper()
	b, err := Open(path, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n + 2 {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 || i == n+1 {
			commit(t, b)
		}
	}
	if len(recentSeqs(t, b)) != 2 || len(groupSeqs(t, b)) != n/100 {
		t.Fatalf("backlog: %d in recent, %d groups; want 2, %d", len(recentSeqs(t, b)), len(groupSeqs(t, b)), n/100)
	}
	mustClose(t, b)
}

// TestBackgroundCheckGroups: a backlog of groups is checked in the
// background while this run commits a group (taking the backlog's recent
// records with it) and acks it; once the check ends, the whole backlog is
// pending and read in order, and the count is exact.
func TestBackgroundCheckGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	const n = 3000
	groupBacklogFile(t, path, n)
	opts, held, release, _ := gatedCheck(t)
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b)
	waitHeld(t, held)
	live := appendFixes(t, b, 100)
	commit(t, b)
	if rs, err := b.Oldest(0, 1000); err != nil || !slices.Equal(seqsOf(rs), live) {
		t.Fatalf("Oldest during the check = %d records, %v; want this run's %d", len(rs), err, len(live))
	}
	if err := b.Ack(live[:60]...); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	close(release)
	waitCheck(t, b)
	want := append(seqRange(1, n+2), live[60:]...)
	if got := allSeqs(t, b); !slices.Equal(got, want) {
		t.Fatalf("after the check: %d pending, want %d in order", len(got), len(want))
	}
	if st := b.Stats(); st.Pending != len(want) || st.Quarantined != 0 || st.Checking {
		t.Errorf("after the check: Stats pending %d, quarantined %d, checking %v; want %d, 0, false", st.Pending, st.Quarantined, st.Checking, len(want))
	}
}

// TestBackgroundCheckDamagedGroup: a group value that does not decode, in a
// file checked in the background, is found by the check: the file is moved
// aside and this run's records are kept.
func TestBackgroundCheckDamagedGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	groupBacklogFile(t, path, 3000)
	breakGroup(t, path, 0)
	opts, held, release, _ := gatedCheck(t)
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b)
	if st := b.Stats(); st.Quarantined != 0 || !st.Checking {
		t.Fatalf("Open: quarantined %d, checking %v; want the damage left to the check", st.Quarantined, st.Checking)
	}
	waitHeld(t, held)
	mine := []uint64{mustAppend(t, b, "a"), mustAppend(t, b, "b")}
	commit(t, b)
	close(release)
	waitCheck(t, b)
	if st := b.Stats(); st.Quarantined != 1 {
		t.Fatalf("quarantined %d after the check, want 1", st.Quarantined)
	}
	if got := allSeqs(t, b); !slices.Equal(got, mine) {
		t.Errorf("after the check moved the file aside: pending %v, want this run's %v", got, mine)
	}
}

// TestDamagedGroupSeqs: a group value that decodes but whose seqs leave
// its place (a record at or past the next group's key, or past recent's
// first key, or a group key beyond the seq range) is damage: Open moves the
// file aside. Before, Open kept it: reads skipped the 200 records of the
// groups it overlapped (a read seeks to a key's group, and the damaged one
// answered first), and an ack of the misplaced record never deleted it
// (an ack looks in the group a key's place names), so it was read again
// after every restart.
func TestDamagedGroupSeqs(t *testing.T) {
	for _, tt := range []struct {
		name string
		seq  uint64 // the first group's last record gets this seq
	}{
		{"into the next group", 150},
		{"past the last group", 290 + 1000},
		{"at the next group's key", 101},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			groupBacklogFile(t, path, 300) // groups 1-100, 101-200, 201-300; recent 301, 302
			rewriteGroup(t, path, 1, func(recs []groupRec) {
				binary.BigEndian.PutUint64(recs[len(recs)-1].key[:], tt.seq)
			})
			b, err := Open(path, testOptions(t))
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, b)
			if st := b.Stats(); st.Quarantined != 1 {
				got := allSeqs(t, b)
				t.Fatalf("quarantined %d, want 1; pending %d records: %v...", st.Quarantined, len(got), got[max(len(got)-5, 0):])
			}
		})
	}
	t.Run("group key beyond the seq range", func(t *testing.T) {
		v := encodeGroup(0, [][]byte{seqKey(1)}, [][]byte{encodeValue(time.Time{}, []byte("x"))})
		// Seq delta 2^63+2 from key 2^63: the record's seq wraps to 2.
		v = append(v[:1], binary.AppendUvarint(nil, 1<<63+2)...)
		v = append(v, 10)
		v = append(v, encodeValue(time.Time{}, []byte("x"))...)
		if recs, err := decodeGroup(seqKey(1<<63), v); err == nil {
			t.Errorf("decodeGroup of key 2^63 = record seq %x, want an error", recs[0].key)
		}
	})
}

// rewriteGroup rewrites group gk of the closed file at path through bbolt,
// after fn has changed its records.
func rewriteGroup(t *testing.T, path string, gk uint64, fn func([]groupRec)) {
	t.Helper()
	updateFile(t, path, func(tx *bolt.Tx) error {
		gs := tx.Bucket(bucketGroups)
		recs, err := decodeGroup(seqKey(gk), groupValue(gs, seqKey(gk)))
		if err != nil {
			return err
		}
		fn(recs)
		var ks, vs [][]byte
		for _, r := range recs {
			ks, vs = append(ks, bytes.Clone(r.key[:])), append(vs, bytes.Clone(r.v))
		}
		return gs.Bucket(seqKey(gk)).Put(groupValueKey, encodeGroup(gk, ks, vs))
	})
}

// TestQuickOpenDamagedRecentKey: a file checked in the background whose
// recent holds a key that is not a seq (damage in the root page Open
// proved). The next commit of many records takes recent's records into a
// group: the damaged key must not go with them. Before, it did, and the
// group (this run's 100 records) did not decode: reads skipped them, and
// the next start moved the file aside with them and the backlog. Now Open
// deletes recent's undecodable records in the quick path too.
func TestQuickOpenDamagedRecentKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	groupBacklogFile(t, path, 300)
	updateFile(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecent).Put([]byte("ab"), encodeValue(time.Time{}, []byte("x")))
	})
	opts := testOptions(t)
	opts.bgCheckFrom = 1
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); !st.Checking || st.DroppedInvalid != 1 {
		t.Errorf("Open: checking %v, %d invalid deleted; want true, 1 (recent's)", st.Checking, st.DroppedInvalid)
	}
	live := appendFixes(t, b, 100)
	commit(t, b)
	waitCheck(t, b)
	want := append(seqRange(1, 302), live...)
	if got := allSeqs(t, b); !slices.Equal(got, want) {
		t.Errorf("after the check: %d pending, want %d", len(got), len(want))
	}
	mustClose(t, b)
	b, err = Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b)
	if b.checkDone != nil {
		waitCheck(t, b)
	}
	if got, st := allSeqs(t, b), b.Stats(); !slices.Equal(got, want) || st.Quarantined != 0 {
		t.Errorf("restarted: %d pending, quarantined %d; want %d, 0", len(got), st.Quarantined, len(want))
	}
}

// appendFixes appends n bench-sized fixes (a commit of 100 packs into a group) and returns their seqs.
func appendFixes(t *testing.T, b *Buffer, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	for range n {
		s, err := b.Append(b.now(), fixEncoder)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	return seqs
}
