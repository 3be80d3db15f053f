package buffer

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzDecodeGroup: a group value read from the file never panics the
// decoder, and whatever decodes ascends and decodes the same once encoded
// again (uvarints need not be minimal in v).
func FuzzDecodeGroup(f *testing.F) {
	keys := [][]byte{seqKey(10), seqKey(11), seqKey(13)}
	vals := [][]byte{encodeValue(clockFloor, []byte("a")), encodeValue(clockFloor, nil), encodeValue(clockFloor, []byte("ccc"))}
	f.Add(uint64(10), encodeGroup(10, keys, vals))
	f.Add(uint64(0), []byte{groupVersion})
	f.Add(uint64(maxSeq), []byte{groupVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0})
	f.Fuzz(func(t *testing.T, gk uint64, v []byte) {
		recs, err := decodeGroup(seqKey(gk), v)
		if err != nil {
			return
		}
		var ks, vs [][]byte
		for _, r := range recs {
			ks, vs = append(ks, slices.Clone(r.key[:])), append(vs, r.v)
		}
		if !slices.IsSortedFunc(ks, bytes.Compare) {
			t.Fatalf("decoded keys not ascending: %x", ks)
		}
		again, err := decodeGroup(seqKey(gk), encodeGroup(gk, ks, vs))
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-encoded group: %d records, %v; want %d", len(again), err, len(recs))
		}
		for i := range again {
			if again[i].key != recs[i].key || !bytes.Equal(again[i].v, recs[i].v) {
				t.Fatalf("record %d re-encoded as %x %x, read %x %x", i, again[i].key, again[i].v, recs[i].key, recs[i].v)
			}
		}
	})
}
