package engine

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/diskcache-go/diskcache/lru"
)

// What a laneWriter writes, a laneReader reads back as it was, whatever
// the writes' sizes and however many blocks it takes; the bytes between
// them are regrouped within each block.
func TestLanesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 4, 8, accessBlock - 4, accessBlock, accessBlock + 8, 3*accessBlock + 12} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		var lanes bytes.Buffer
		lw := newLaneWriter(&lanes)
		for p := src; len(p) > 0; {
			k := min(len(p), 1+rng.IntN(3*accessBlock/2))
			if _, err := lw.Write(p[:k]); err != nil {
				t.Fatal(err)
			}
			p = p[k:]
		}
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if lanes.Len() != n {
			t.Fatalf("%d bytes written by lanes as %d", n, lanes.Len())
		}
		if n >= 8 && lanes.Bytes()[1] != src[4] {
			t.Fatalf("%d bytes: not regrouped by lane", n)
		}
		got, err := io.ReadAll(newLaneReader(&lanes))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d bytes read back as %d (%v), or differ", n, len(got), err)
		}
	}
}

// A block that is not whole slots is an error, on either side.
func TestLanesRefusePartialSlots(t *testing.T) {
	lw := newLaneWriter(io.Discard)
	lw.Write(make([]byte, 6))
	if err := lw.Close(); err == nil {
		t.Error("a laneWriter closed 6 bytes into a snapshot without an error")
	}
	_, err := io.ReadAll(newLaneReader(bytes.NewReader(make([]byte, 10))))
	if !errors.Is(err, lru.ErrBadSnapshot) {
		t.Errorf("10 bytes by lanes read with %v, want lru.ErrBadSnapshot", err)
	}
}
