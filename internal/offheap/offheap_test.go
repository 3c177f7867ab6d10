package offheap

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

type table struct{ slots []atomic.Uint64 }

// mapped reports whether [addr, addr+size) lies in one of this process's
// memory mappings. (Mappings are not counted: the kernel merges adjacent
// anonymous ones.)
func mapped(t *testing.T, addr, size uintptr) bool {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lo, hi, _ := strings.Cut(strings.Fields(sc.Text())[0], "-")
		a, _ := strconv.ParseUint(lo, 16, 64)
		b, _ := strconv.ParseUint(hi, 16, 64)
		if uint64(addr) >= a && uint64(addr+size) <= b {
			return true
		}
	}
	return false
}

// TestMake: a large table is zeroed, usable with atomics, outside the heap,
// and unmapped once its owner is gone; a small one is an ordinary slice.
func TestMake(t *testing.T) {
	small := &table{}
	small.slots = Make[atomic.Uint64](small, 16)
	if len(small.slots) != 16 {
		t.Fatalf("small table of %d slots", len(small.slots))
	}
	const slots, size = 3<<18 + 1, 8 * (3<<18 + 1) // an odd size: 6 MiB and a word
	var heap runtime.MemStats
	runtime.ReadMemStats(&heap)
	tb := &table{}
	tb.slots = Make[atomic.Uint64](tb, slots)
	for i := range tb.slots {
		if tb.slots[i].Load() != 0 {
			t.Fatal("a new table is not zeroed")
		}
		tb.slots[i].Add(uint64(i))
	}
	if tb.slots[12345].Load() != 12345 {
		t.Fatal("a write did not stick")
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.HeapAlloc - min(after.HeapAlloc, heap.HeapAlloc); grew > size/2 {
		t.Fatalf("the heap grew by %d bytes for a %d-byte table", grew, size)
	}
	addr := uintptr(unsafe.Pointer(&tb.slots[0]))
	if !mapped(t, addr, size) {
		t.Fatal("the table is not in a mapping")
	}
	runtime.KeepAlive(tb)
	tb = nil
	for i := 0; mapped(t, addr, size); i++ {
		if i == 100 {
			t.Fatal("the table of an unreachable owner stayed mapped")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTouched: the pages of a new table read as untouched until written,
// and all of them as touched once populated; a table on the heap cannot
// tell.
func TestTouched(t *testing.T) {
	tb := &table{}
	tb.slots = Make[atomic.Uint64](tb, 1<<16) // 512 KiB: 128 pages
	defer runtime.KeepAlive(tb)
	perPage := PageSize / 8
	touched := Touched(tb.slots)
	if touched == nil {
		t.Skip("mincore unavailable")
	}
	if len(touched) != len(tb.slots)/perPage {
		t.Fatalf("%d pages for %d slots", len(touched), len(tb.slots))
	}
	for p, ok := range touched {
		if ok {
			t.Fatalf("page %d of a new table is touched", p)
		}
	}
	tb.slots[3*perPage+5].Store(1)
	touched = Touched(tb.slots)
	for p, ok := range touched {
		if ok != (p == 3) {
			t.Fatalf("after a write to page 3: page %d touched = %v", p, ok)
		}
	}
	if Populate(tb.slots) {
		for p, ok := range Touched(tb.slots) {
			if !ok {
				t.Fatalf("page %d not allocated after Populate", p)
			}
		}
	}
	if tb.slots[3*perPage+5].Load() != 1 || tb.slots[0].Load() != 0 {
		t.Fatal("Populate changed the table")
	}
	small := &table{}
	small.slots = Make[atomic.Uint64](small, 16)
	if Touched(small.slots) != nil {
		t.Fatal("Touched of a table on the heap claims to know")
	}
}
