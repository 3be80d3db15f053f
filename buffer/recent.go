package buffer

import (
	"bytes"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// The committed records live in three places: records, the backlog of
// small commits; groups, one packed value per large commit (groups.go);
// and recent, the newest few, small enough for bbolt to store the bucket
// inline in the root page (format 3, FORMAT.md). Offline at 1 Hz a commit
// holds one record: put into records it rewrites the leaf, every branch
// above it, the root, the freelist and the meta page (six pages in a day's
// backlog); put into recent it rewrites only the root, the freelist and the
// meta page. Every fourth commit or so moves recent into records. Every key
// in recent is above every key elsewhere; records and groups interleave by
// runs, never overlapping.

// inlineLimit is the largest bucket bbolt stores inline, as
// Bucket.maxInlineBucketSize computes it.
func inlineLimit(tx *bolt.Tx) int { return tx.DB().Info().PageSize / 4 }

// inlineSize is a bucket's size as bbolt's inlineable() counts it: the
// page header plus each element with its key and value.
func inlineSize(bk *bolt.Bucket) int {
	size := pageHeaderSize
	c := bk.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		size += elementSize + len(k) + len(v)
	}
	return size
}

// stageOrMove writes the commit's records, encoded, ascending and all above
// every committed key: into recent while recent stays inline with them,
// else recent's records and then these, together, as one group when they
// pack into at least groupMin bytes, or into records when fewer, leaving
// recent empty. touch is called with every record key written or moved and
// the marker of every group written.
func stageOrMove(tx *bolt.Tx, keys, vals [][]byte, touch func([]byte)) error {
	bk, rc := tx.Bucket(bucketRecords), tx.Bucket(bucketRecent)
	if len(keys) == 0 {
		return nil
	}
	size := inlineSize(rc)
	for i := range keys {
		size += elementSize + len(keys[i]) + len(vals[i])
	}
	if size <= inlineLimit(tx) {
		for i := range keys {
			touch(keys[i])
			if err := rc.Put(keys[i], vals[i]); err != nil {
				return fmt.Errorf("put seq %x: %w", keys[i], err)
			}
		}
		return nil
	}
	var mk, mv [][]byte
	c := rc.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		mk, mv = append(mk, bytes.Clone(k)), append(mv, bytes.Clone(v))
	}
	for _, k := range mk {
		if err := rc.Delete(k); err != nil {
			return fmt.Errorf("move seq %x from recent: %w", k, err)
		}
	}
	mk, mv = append(mk, keys...), append(mv, vals...)
	for _, k := range mk {
		touch(k)
	}
	packed := 1
	for i := range mk {
		packed += 2 + len(mv[i])
	}
	if gs := tx.Bucket(bucketGroups); gs != nil && packed >= groupMin(tx) {
		// Group keys ascend too: full leaves (about 100 groups a leaf;
		// 60 at bbolt's default 0.5) keep the path down groups at two
		// levels for about 17,000 groups, 4.8 h at a commit a second.
		gs.FillPercent = 1.0
		// At most groupMax bytes a group: a delete rewrites its group.
		for len(mk) > 0 {
			n, size := 0, 1
			for n < len(mk) && (n == 0 || size+2+len(mv[n]) <= groupMax) {
				size += 2 + len(mv[n])
				n++
			}
			if n == len(mk) {
				k := spillCount(tx, mk, mv)
				for i := len(mk) - k; i < len(mk); i++ {
					if err := rc.Put(mk[i], mv[i]); err != nil {
						return fmt.Errorf("put seq %x: %w", mk[i], err)
					}
				}
				n -= k
				mk, mv = mk[:n], mv[:n]
			}
			touch(groupMarker(mk[0]))
			if err := putGroup(gs, mk[:n], mv[:n]); err != nil {
				return err
			}
			mk, mv = mk[n:], mv[n:]
		}
		return nil
	}
	// Keys arrive in ascending order, so a leaf is never split by an
	// insert in its middle: fill pages to the brim. Measured offline at
	// 100 fixes/s in a 100,000-record file: 590 B written per fix at 0.9,
	// 541 B at 1.0.
	bk.FillPercent = 1.0
	for i := range mk {
		if err := bk.Put(mk[i], mv[i]); err != nil {
			return fmt.Errorf("put seq %x: %w", mk[i], err)
		}
	}
	return nil
}

// recordLookup finds committed records in tx, keeping the group it decoded
// last: looking up an ack's worth of keys in ascending order decodes each
// group once, not once a record (a drain of groups of 250 spent its time
// decoding them).
type recordLookup struct {
	flat []*bolt.Bucket
	gs   *bolt.Bucket
	gk   []byte // the cached group's key, nil if none
	recs []groupRec
}

func newRecordLookup(tx *bolt.Tx) *recordLookup {
	return &recordLookup{flat: flatBuckets(tx), gs: tx.Bucket(bucketGroups)}
}

// get returns the value of the record of key k, nil if none. Valid while
// the transaction is and nothing in it changed.
func (l *recordLookup) get(k []byte) []byte {
	for _, bk := range l.flat {
		if v := bk.Get(k); v != nil {
			return v
		}
	}
	if l.gs == nil {
		return nil
	}
	// Groups do not overlap (Open's check): a key between the cached group's
	// key and its last record's is in it, or nowhere.
	if l.gk == nil || bytes.Compare(k, l.gk) < 0 || len(l.recs) == 0 || bytes.Compare(k, l.recs[len(l.recs)-1].key[:]) > 0 {
		gk, recs, _ := groupFind(l.gs, k)
		if gk == nil {
			return nil
		}
		l.gk, l.recs = gk, recs
	}
	if i, ok := findInGroup(l.recs, k); ok {
		return l.recs[i].v
	}
	return nil
}

// flatBuckets returns the buckets of one key per record: records, and
// recent, which a file of format 1 or 2 opened read-only lacks.
func flatBuckets(tx *bolt.Tx) []*bolt.Bucket {
	if rc := tx.Bucket(bucketRecent); rc != nil {
		return []*bolt.Bucket{tx.Bucket(bucketRecords), rc}
	}
	return []*bolt.Bucket{tx.Bucket(bucketRecords)}
}

// deleteRecord deletes a committed record from whichever bucket holds it.
func deleteRecord(tx *bolt.Tx, k []byte) error {
	return deleteRecords(tx, [][]byte{k}, func([]byte) {})
}

// deleteRecords deletes committed records, keys ascending, from whichever
// bucket holds them, rewriting each group they are in once. touch is
// called with the marker of every group changed.
func deleteRecords(tx *bolt.Tx, keys [][]byte, touch func([]byte)) error {
	for _, bk := range flatBuckets(tx) {
		for _, k := range keys {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
	}
	if gs := tx.Bucket(bucketGroups); gs != nil {
		return deleteFromGroups(gs, keys, touch)
	}
	return nil
}

// pairCursor walks the committed records of records, groups and recent as
// one ascending sequence. Their keys interleave by runs (records and
// groups), so each move seeks every source anew and takes the nearest key.
// A file of an older format opened read-only may lack recent or groups.
type pairCursor struct {
	srcs []recordSource
	cur  []byte // the key the cursor is at; nil: off either end
}

// recordSource is one bucket or the groups, read by key.
type recordSource interface {
	ge(k []byte) ([]byte, []byte) // the first record with key >= k
	lt(k []byte) ([]byte, []byte) // the last record with key < k; k nil: the last
}

// bucketSource reads a flat bucket of records.
type bucketSource struct{ bk *bolt.Bucket }

func (s bucketSource) ge(k []byte) ([]byte, []byte) { return s.bk.Cursor().Seek(k) }

func (s bucketSource) lt(k []byte) ([]byte, []byte) {
	c := s.bk.Cursor()
	if k == nil {
		return last(c)
	}
	if got, _ := c.Seek(k); got == nil {
		return last(c)
	}
	return c.Prev()
}

// last is c.Last(), safe on a bucket emptied in this transaction: bbolt
// 1.5.0's Cursor.Last never returns on a bucket of several pages whose keys
// were all deleted in the transaction (a drain acking the whole backlog,
// then evicting in the same commit, hung there), while First finds it empty.
// Only a writable transaction deletes: a read keeps to the pages Last reads
// (Open's quick check must not touch the file's first leaf).
func last(c *bolt.Cursor) ([]byte, []byte) {
	if c.Bucket().Tx().Writable() {
		if k, _ := c.First(); k == nil {
			return nil, nil
		}
	}
	return c.Last()
}

func newPairCursor(tx *bolt.Tx) *pairCursor {
	p := &pairCursor{srcs: []recordSource{bucketSource{tx.Bucket(bucketRecords)}}}
	if gs := tx.Bucket(bucketGroups); gs != nil {
		p.srcs = append(p.srcs, &groupSource{gs: gs})
	}
	if rc := tx.Bucket(bucketRecent); rc != nil {
		p.srcs = append(p.srcs, bucketSource{rc})
	}
	return p
}

// pick keeps the nearest of each source's answer: the lowest key when
// forward, the highest when not.
func (p *pairCursor) pick(forward bool, at func(recordSource) ([]byte, []byte)) ([]byte, []byte) {
	var bk, bv []byte
	for _, s := range p.srcs {
		k, v := at(s)
		if k == nil {
			continue
		}
		if c := bytes.Compare(k, bk); bk == nil || forward && c < 0 || !forward && c > 0 {
			bk, bv = k, v
		}
	}
	p.cur = bytes.Clone(bk)
	return bk, bv
}

// Seek moves to the first key >= k.
func (p *pairCursor) Seek(k []byte) ([]byte, []byte) {
	k = bytes.Clone(k)
	return p.pick(true, func(s recordSource) ([]byte, []byte) { return s.ge(k) })
}

// Next moves to the following key.
func (p *pairCursor) Next() ([]byte, []byte) {
	s, ok := keySeq(p.cur)
	if !ok || s == math.MaxUint64 {
		p.cur = nil
		return nil, nil
	}
	return p.Seek(seqKey(s + 1))
}

// Last moves to the newest key.
func (p *pairCursor) Last() ([]byte, []byte) {
	return p.pick(false, func(s recordSource) ([]byte, []byte) { return s.lt(nil) })
}

// Prev moves to the preceding key.
func (p *pairCursor) Prev() ([]byte, []byte) {
	if p.cur == nil {
		return nil, nil
	}
	cur := p.cur
	return p.pick(false, func(s recordSource) ([]byte, []byte) { return s.lt(cur) })
}

// groupPageOverhead is what a group's page holds besides the group value:
// the page header, and the element and key of groupValueKey.
const groupPageOverhead = pageHeaderSize + elementSize + 1

// spillCount returns how many of the last of a group's records (keys,
// vals) to keep in recent, empty at this point, instead: the fewest that
// make the group a page shorter, if they fit inline in recent and leave
// at least groupMin bytes in the group; else 0. A commit's group ends in a
// part-filled page as often as not, and recent is written anyway: at 100
// fixes/s a commit of 110 records takes seven pages instead of eight.
func spillCount(tx *bolt.Tx, keys, vals [][]byte) int {
	ps := tx.DB().Info().PageSize
	first, _ := keySeq(keys[0])
	recSize := func(i int) int {
		s, _ := keySeq(keys[i])
		return uvarintLen(s-first) + uvarintLen(uint64(len(vals[i]))) + len(vals[i])
	}
	size := groupPageOverhead + 1
	for i := range keys {
		size += recSize(i)
	}
	pages := (size + ps - 1) / ps
	inline := pageHeaderSize
	for k := 1; k < len(keys); k++ {
		i := len(keys) - k
		size -= recSize(i)
		inline += elementSize + len(keys[i]) + len(vals[i])
		if inline > inlineLimit(tx) || size-groupPageOverhead < groupMin(tx) {
			return 0
		}
		if (size+ps-1)/ps < pages {
			return k
		}
	}
	return 0
}

// uvarintLen is the length of v as a uvarint.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}
