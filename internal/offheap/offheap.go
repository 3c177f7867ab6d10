// Package offheap allocates the cache's large tables of plain numbers (the
// access clock, the presence filter) outside the Go heap.
//
// A table on the heap counts as live data for the garbage collector, whose
// default target lets the heap grow to twice the live data before it
// collects: a 16 MiB clock and a 12 MB filter made a cache of 5M keys peak
// 56 MB above what the tables hold. Anonymous memory maps cost exactly
// their pages, and only the pages touched.
//
// Tables of HugePage or more are mapped at a HugePage boundary and marked
// for transparent huge pages (MADV_HUGEPAGE; the kernel's default policy,
// "madvise", backs no mapping that does not ask). Every Set and Get touches
// one random slot of the clock and one random block of the filter: in 4 KiB
// pages a 16 MiB clock is 4,096 pages, more than the CPU's TLB holds, so
// most touches paid a page walk on top of the cache miss; in 2 MiB pages it
// is 8.
package offheap

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MinBytes: smaller tables stay on the heap, where they cost less than a
// mapping of their own.
const MinBytes = 256 << 10

// HugePage is the size of a transparent huge page on x86-64 and arm64 with
// 4 KiB base pages. Only whole aligned huge pages of a mapping can be huge;
// a table's tail beyond its last whole one stays in small pages.
const HugePage = 2 << 20

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
	p := mapAligned(uintptr(size))
	if p == nil {
		return make([]T, n)
	}
	runtime.AddCleanup(owner, func(p unsafe.Pointer) { unix.MunmapPtr(p, uintptr(size)) }, p)
	return unsafe.Slice((*T)(p), n)
}

// mapAligned maps size bytes of zeroed anonymous memory, starting at a
// HugePage boundary and marked for huge pages when size is a HugePage or
// more, or returns nil. It maps a HugePage more than asked and unmaps what
// lies before the boundary and after the table.
func mapAligned(size uintptr) unsafe.Pointer {
	const prot, flags = unix.PROT_READ | unix.PROT_WRITE, unix.MAP_ANON | unix.MAP_PRIVATE
	if size < HugePage {
		p, err := unix.MmapPtr(-1, 0, nil, size, prot, flags)
		if err != nil {
			return nil
		}
		return p
	}
	p, err := unix.MmapPtr(-1, 0, nil, size+HugePage, prot, flags)
	if err != nil {
		return nil
	}
	start := uintptr(p)
	head := (HugePage - start%HugePage) % HugePage
	if head > 0 {
		unix.MunmapPtr(p, head)
	}
	if tail := HugePage - head; tail > 0 {
		unix.MunmapPtr(unsafe.Add(p, head+size), tail)
	}
	p = unsafe.Add(p, head)
	// Advice only: without it (no THP in this kernel) the table works in
	// small pages as before.
	unix.Madvise(unsafe.Slice((*byte)(p), size), unix.MADV_HUGEPAGE)
	return p
}
