// Package offheap allocates the cache's large tables of plain numbers (the
// access clock, the presence filter) outside the Go heap.
//
// A table on the heap counts as live data for the garbage collector, whose
// default target lets the heap grow to twice the live data before it
// collects: a 16 MiB clock and a 12 MB filter made a cache of 5M keys peak
// 56 MB above what the tables hold. Anonymous memory maps cost exactly
// their pages, and only the pages touched.
package offheap

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MinBytes: smaller tables stay on the heap, where they cost less than a
// mapping of their own.
const MinBytes = 256 << 10

// Make returns a zeroed slice of n values of T, outside the Go heap when it
// is MinBytes or more (and the mapping succeeds). The memory is unmapped once
// owner is unreachable, so the slice must be reached only through owner,
// and every function that uses it must keep owner alive past its last use
// (runtime.KeepAlive): the collector does not see the slice itself. T must
// hold no Go pointers.
func Make[T any, O any](owner *O, n int) []T {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size < MinBytes {
		return make([]T, n)
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]T, n)
	}
	runtime.AddCleanup(owner, func(mem []byte) { unix.Munmap(mem) }, mem)
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(mem))), n)
}
