package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Format 4 keeps a large commit's records as one value, a group, in a
// bucket of its own under bucket groups (FORMAT.md). Why: in one bucket
// with a key per record, a commit of 100 fixes of 250 B writes eight leaves
// (the last one again, partly full, each time), the branch above them, the
// root, the freelist and the meta page, and every record carries 33 bytes
// of bbolt element, key and value header: 12 pages, about 500 B a fix.
// As one value in a bucket of its own it writes that bucket's page and its
// overflow pages (12 bytes of overhead a record; seven pages for 100 fixes),
// one leaf of groups, the root, the freelist and the meta page: 11 pages,
// 12 once groups has a branch. A group's bucket is
// needed because bbolt never splits a leaf of four elements or fewer, so
// big values side by side in one bucket would be rewritten with their
// neighbours at every commit.

// groupValueKey is the one key inside a group's bucket.
var groupValueKey = []byte("r")

// groupVersion is the first byte of a group value.
const groupVersion = 1

// groupMin is the smallest packed group, in bytes, written as a group:
// smaller commits go to records, where they share leaves with their
// neighbours instead of taking a page of their own.
func groupMin(tx *bolt.Tx) int { return tx.DB().Info().PageSize / 2 }

// groupMax bounds a group's packed size: acking or evicting one of its
// records rewrites the group, so a large commit (a Close after a long
// tail) is cut into groups of at most this. A commit of a second at 100
// fixes/s of 250 B packs into about 26 KB.
const groupMax = 64 << 10

// errGroup marks a group value that does not decode: damage, not a cut.
var errGroup = errors.New("undecodable group")

// groupRec is one record of a group: its key and its record value (value
// version 1, as in bucket records), aliasing the group value.
type groupRec struct {
	key [8]byte
	v   []byte
}

// encodeGroup packs records, ascending and all at or above the group key
// gk: the version byte, then per record the uvarint of its seq minus gk's,
// the uvarint length of its value, and the value.
func encodeGroup(gk uint64, keys, vals [][]byte) []byte {
	n := 1
	for i := range keys {
		n += 2*binary.MaxVarintLen64 + len(vals[i])
	}
	out := make([]byte, 1, n)
	out[0] = groupVersion
	for i := range keys {
		s, _ := keySeq(keys[i])
		out = binary.AppendUvarint(out, s-gk)
		out = binary.AppendUvarint(out, uint64(len(vals[i])))
		out = append(out, vals[i]...)
	}
	return out
}

// decodeGroup unpacks a group value of group key gk. Records must ascend.
func decodeGroup(gk []byte, v []byte) ([]groupRec, error) {
	base, ok := keySeq(gk)
	if !ok || base > maxSeq { // beyond the range, base+d could wrap below gk
		return nil, fmt.Errorf("%w: key %x", errGroup, gk)
	}
	if len(v) < 1 || v[0] != groupVersion {
		return nil, fmt.Errorf("%w %x: version", errGroup, gk)
	}
	var out []groupRec
	var last uint64
	for p := v[1:]; len(p) > 0; {
		d, n := binary.Uvarint(p)
		if n <= 0 || d > maxSeq-base {
			return nil, fmt.Errorf("%w %x: seq", errGroup, gk)
		}
		p = p[n:]
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return nil, fmt.Errorf("%w %x: length", errGroup, gk)
		}
		s := base + d
		if len(out) > 0 && s <= last {
			return nil, fmt.Errorf("%w %x: seq %d out of order", errGroup, gk, s)
		}
		last = s
		var r groupRec
		binary.BigEndian.PutUint64(r.key[:], s)
		r.v = p[n : n+int(l)]
		out = append(out, r)
		p = p[n+int(l):]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %x: empty", errGroup, gk)
	}
	return out, nil
}

// putGroup writes a new group of the given records under key keys[0].
func putGroup(gs *bolt.Bucket, keys, vals [][]byte) error {
	gk, _ := keySeq(keys[0])
	g, err := gs.CreateBucket(keys[0])
	if err != nil {
		return fmt.Errorf("create group %x: %w", keys[0], err)
	}
	return g.Put(groupValueKey, encodeGroup(gk, keys, vals))
}

// groupValue returns the packed value of group gk in gs, nil if none.
func groupValue(gs *bolt.Bucket, gk []byte) []byte {
	g := gs.Bucket(gk)
	if g == nil {
		return nil
	}
	return g.Get(groupValueKey)
}

// floorGroup returns the key of the group that may hold k: the last group
// key <= k, or nil.
func floorGroup(gs *bolt.Bucket, k []byte) []byte {
	c := gs.Cursor()
	gk, _ := c.Seek(k)
	if gk != nil && bytes.Equal(gk, k) {
		return gk
	}
	if gk == nil {
		gk, _ = last(c)
	} else {
		gk, _ = c.Prev()
	}
	return gk
}

// groupFind returns the group key and the records of the group holding k,
// and k's index in them (-1 if k is not there). An undecodable group reads
// as holding nothing.
func groupFind(gs *bolt.Bucket, k []byte) ([]byte, []groupRec, int) {
	gk := floorGroup(gs, k)
	if gk == nil {
		return nil, nil, -1
	}
	recs, err := decodeGroup(gk, groupValue(gs, gk))
	if err != nil {
		return gk, nil, -1
	}
	if i, ok := findInGroup(recs, k); ok {
		return gk, recs, i
	}
	return gk, recs, -1
}

// findInGroup returns the index of the first record of recs (ascending) with
// key >= k, and whether its key is k.
func findInGroup(recs []groupRec, k []byte) (int, bool) {
	return slices.BinarySearchFunc(recs, k, func(r groupRec, k []byte) int { return bytes.Compare(r.key[:], k) })
}

// deleteFromGroups deletes keys (ascending) from the groups holding them:
// each group touched is rewritten once without them, or deleted once
// empty. touch is called with the group marker of every group changed.
func deleteFromGroups(gs *bolt.Bucket, keys [][]byte, touch func([]byte)) error {
	for i := 0; i < len(keys); {
		gk, recs, at := groupFind(gs, keys[i])
		if at < 0 {
			i++
			continue
		}
		gk = bytes.Clone(gk)
		drop := make(map[int]bool)
		for ; i < len(keys); i++ {
			j := at
			for j < len(recs) && bytes.Compare(recs[j].key[:], keys[i]) < 0 {
				j++
			}
			if j == len(recs) {
				break
			}
			if bytes.Equal(recs[j].key[:], keys[i]) {
				drop[j] = true
			}
			at = j
		}
		var ks, vs [][]byte
		for j := range recs {
			if !drop[j] {
				ks, vs = append(ks, bytes.Clone(recs[j].key[:])), append(vs, recs[j].v)
			}
		}
		touch(groupMarker(gk))
		if len(ks) == 0 {
			if err := gs.DeleteBucket(gk); err != nil {
				return fmt.Errorf("delete group %x: %w", gk, err)
			}
			continue
		}
		base, _ := keySeq(gk)
		if err := gs.Bucket(gk).Put(groupValueKey, encodeGroup(base, ks, vs)); err != nil {
			return fmt.Errorf("rewrite group %x: %w", gk, err)
		}
	}
	return nil
}

// groupMarker is how a compaction's journal names a group: its key behind
// a 'g', nine bytes, apart from the eight of a record key.
func groupMarker(gk []byte) []byte { return append([]byte{'g'}, gk...) }

// groupSource reads the records of all groups in key order, for pairCursor.
// It keeps the last group it decoded.
type groupSource struct {
	gs     *bolt.Bucket
	gk     []byte
	recs   []groupRec
	cached bool
}

// load decodes group gk (a key from gs's cursor), or reports false.
func (g *groupSource) load(gk []byte) bool {
	if g.cached && bytes.Equal(g.gk, gk) {
		return len(g.recs) > 0
	}
	recs, err := decodeGroup(gk, groupValue(g.gs, gk))
	if err != nil {
		recs = nil // damage: Open's scan quarantines the file; reads skip it
	}
	g.gk, g.recs, g.cached = bytes.Clone(gk), recs, true
	return len(recs) > 0
}

// ge returns the first record with key >= k.
func (g *groupSource) ge(k []byte) ([]byte, []byte) {
	c := g.gs.Cursor()
	gk := floorGroup(g.gs, k)
	if gk == nil {
		gk, _ = c.First()
	} else {
		c.Seek(gk)
	}
	for ; gk != nil; gk, _ = c.Next() {
		if !g.load(gk) {
			continue
		}
		if i, _ := findInGroup(g.recs, k); i < len(g.recs) {
			return g.recs[i].key[:], g.recs[i].v
		}
	}
	return nil, nil
}

// lt returns the last record with key < k; k nil: the last record.
func (g *groupSource) lt(k []byte) ([]byte, []byte) {
	c := g.gs.Cursor()
	var gk []byte
	if k == nil {
		gk, _ = last(c)
	} else if gk = floorGroup(g.gs, k); gk != nil {
		c.Seek(gk)
	}
	for ; gk != nil; gk, _ = c.Prev() {
		if !g.load(gk) {
			continue
		}
		i := len(g.recs)
		if k != nil {
			i, _ = findInGroup(g.recs, k) // the first at or past k: the one before it is the last below
		}
		if i > 0 {
			return g.recs[i-1].key[:], g.recs[i-1].v
		}
	}
	return nil, nil
}
