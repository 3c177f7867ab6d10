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
	"os"
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

// Populate has the kernel allocate every page of s at once, as a caller
// about to write most of them would fault them in one by one: on a
// virtual machine a fault cost about 12 us, 48 ms for a 16 MiB table.
// It is a hint, and reports whether it was taken: on a kernel without
// MADV_POPULATE_WRITE (before 5.14), or for a slice on the heap, the
// pages fault in as they are written.
func Populate[T any](s []T) bool {
	mem, ok := pages(s)
	return ok && PopulateRange(mem, 0, len(mem))
}

// PopulateRange is Populate for mem[lo:hi], rounded out to whole pages, of
// a writable mapping that starts on a page (a table from Make, or a shared
// mapping such as the hot tier's): the pages are allocated without being
// written, so what they hold stays as it is.
func PopulateRange(mem []byte, lo, hi int) bool {
	lo &^= pageSize - 1
	hi = min((hi+pageSize-1)&^(pageSize-1), len(mem))
	return lo < hi && unix.Madvise(mem[lo:hi], unix.MADV_POPULATE_WRITE) == nil
}

// Touched reports, for each page of s from its first, whether the page
// may hold anything but zeros: a page of a table from Make that was never
// written is not resident, and reading it would fault in a page of
// zeros. It returns nil when it cannot tell (a slice on the heap, or
// mincore failed): then every page may hold data.
func Touched[T any](s []T) []bool {
	mem, ok := pages(s)
	if !ok {
		return nil
	}
	vec := make([]byte, (len(mem)+pageSize-1)/pageSize)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(mem))), uintptr(len(mem)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if errno != 0 {
		return nil
	}
	touched := make([]bool, len(vec))
	for i, v := range vec {
		touched[i] = v&1 != 0
	}
	return touched
}

// CountTouched returns how many of s's pages Touched reports as possibly
// holding data, of how many; ok is false when it cannot tell.
func CountTouched[T any](s []T) (touched, pages int, ok bool) {
	in := Touched(s)
	for _, b := range in {
		if b {
			touched++
		}
	}
	return touched, len(in), in != nil
}

// PageSize is the unit of Touched.
const PageSize = pageSize

const pageSize = 4096

// pages returns the bytes of s when it is a table Make mapped: page
// aligned and at least MinBytes.
func pages[T any](s []T) ([]byte, bool) {
	var zero T
	size := len(s) * int(unsafe.Sizeof(zero))
	if size < MinBytes || os.Getpagesize() != pageSize {
		return nil, false
	}
	p := unsafe.Pointer(unsafe.SliceData(s))
	if uintptr(p)%pageSize != 0 {
		return nil, false
	}
	return unsafe.Slice((*byte)(p), size), true
}
